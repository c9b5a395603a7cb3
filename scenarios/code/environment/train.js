// S8.3 managed step 1: a script that needs npm packages. Submitted with
// `environment: { dependencies: [ms@2.1.3, is-number@7.0.0] }` they were installed into the
// image's /node_modules when it was built, and require() finds them with no network; submitted
// without, the run fails with "ModuleNotFoundError: No module named 'ms'".
const ms = require('ms');
const isNumber = require('is-number');
const { Run } = require('@amlsim/run');

const run = Run.getContext();
run.log('two_hours_ms', ms('2h'));
run.log('is_number', isNumber('42') ? 1 : 0);
console.log(`ms('2h') = ${ms('2h')}, isNumber('42') = ${isNumber('42')}`);
