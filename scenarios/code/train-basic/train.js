// A training script for amlsim: logs metrics through the run context, as SDK v1's
// Run.get_context() would, and writes a model file to ./outputs.
const fs = require('node:fs');
const { Run } = require('@amlsim/run');
const { scale } = require('./lib/scale');

const run = Run.getContext();
const epochs = Number(process.argv[2] ?? 5);
let loss = 1;
for (let epoch = 0; epoch < epochs; epoch++) {
  loss = scale(loss, 0.5);
  run.log('loss', loss);
}
run.log('accuracy', 0.9);
run.logList('learning_rates', [0.1, 0.05, 0.01]);
run.logRow('confusion', { tp: 90, fp: 10 });
run.tag('framework', 'none');
fs.mkdirSync('outputs', { recursive: true });
fs.writeFileSync('outputs/model.json', JSON.stringify({ weights: [1, 2, 3], loss }));
console.log(`trained ${epochs} epochs, loss ${loss}`);
