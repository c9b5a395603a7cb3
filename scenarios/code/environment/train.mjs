// The same as train.js as an ES module: `import` finds the environment's packages too.
import ms from 'ms';
import isNumber from 'is-number';
import { Run } from '@amlsim/run';

const run = Run.getContext();
run.log('one_day_ms', ms('1d'));
run.log('is_number', isNumber('x') ? 1 : 0);
console.log(`ms('1d') = ${ms('1d')}`);
