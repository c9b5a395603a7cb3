// A scoring script (S8.5): init() loads the model from AZUREML_MODEL_DIR, run(input) scores.
const fs = require('node:fs');
const path = require('node:path');
let model;
exports.init = () => {
  model = JSON.parse(fs.readFileSync(path.join(process.env.AZUREML_MODEL_DIR, 'sentiment.json'), 'utf8'));
};
exports.run = (input) => {
  const score = input.features.reduce((sum, x, i) => sum + x * (model.weights[i] ?? 0), model.bias);
  return { score, label: score > 0 ? 'positive' : 'negative' };
};
