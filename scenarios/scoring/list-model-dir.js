// A scoring script that answers with what init() found under AZUREML_MODEL_DIR (S8.5): for an
// image with one model, that model's files; with several, one sub-directory per model name.
const fs = require('node:fs');
const path = require('node:path');
let files = [];
const walk = (dir, prefix) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]));
exports.init = () => {
  files = walk(process.env.AZUREML_MODEL_DIR, '').sort();
};
exports.run = () => ({ files });
