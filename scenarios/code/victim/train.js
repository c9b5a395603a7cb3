// The victim in workspace ws2 (scenarios/hostile-run.yaml): it reads the secret in its own
// snapshot, works for a while (so it runs while the hostile script does) and logs one metric.
const fs = require('node:fs');
const { Run } = require('@amlsim/run');

const secret = fs.readFileSync('secret.txt', 'utf8').trim();
setTimeout(() => {
  Run.getContext().log('secret_length', secret.length);
}, Number(process.argv[2] ?? 3000));
