// S4.2: a training script that reads its data from the datastore input its run mounted. The
// platform gives the input's path in AZUREML_DATAREFERENCE_<name> (here: data); the files are
// not in the code snapshot. It logs what it read, then tries to change the mount: a `mount`
// input is read-only, so the write is refused (EROFS in a container).
const fs = require('node:fs');
const path = require('node:path');
const { Run } = require('@amlsim/run');

const run = Run.getContext();
const dir = process.env.AZUREML_DATAREFERENCE_data;
if (!dir) throw new Error('AZUREML_DATAREFERENCE_data is not set: the run has no input named data');
const rows = fs.readFileSync(path.join(dir, 'iris.csv'), 'utf8').trim().split('\n').slice(1);
const sepal = rows.map((line) => Number(line.split(',')[0]));
const mean = sepal.reduce((a, b) => a + b, 0) / sepal.length;
const labels = JSON.parse(fs.readFileSync(path.join(dir, 'meta', 'labels.json'), 'utf8')).species;
run.log('rows', rows.length);
run.log('classes', labels.length);
run.log('mean_sepal_length', Math.round(mean * 1000) / 1000);
// The data reached the script through the mount only, never through the snapshot.
run.log('data_in_snapshot', fs.existsSync('iris.csv') ? 1 : 0);
let writable = 1;
try {
  fs.writeFileSync(path.join(dir, 'iris.csv'), 'tampered\n');
} catch (error) {
  writable = 0;
  console.log(`writing to the input was refused: ${error.code}`);
}
run.log('input_writable', writable);
console.log(`read ${rows.length} rows of ${labels.length} classes from ${dir}; mean sepal length ${mean.toFixed(3)}`);
