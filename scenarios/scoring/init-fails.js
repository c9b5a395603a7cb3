// A scoring script that loads, so the image builds, but whose init() fails in the replica:
// it looks for a model file the image does not hold. The deployment ends Failed (S8.5).
const fs = require('node:fs');
const path = require('node:path');
let model;
exports.init = () => {
  model = JSON.parse(fs.readFileSync(path.join(process.env.AZUREML_MODEL_DIR, 'weights.bin'), 'utf8'));
};
exports.run = (input) => ({ model: Boolean(model), input });
