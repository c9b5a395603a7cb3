// Works longer than its run token lives, then logs: the write-back is refused (S1.3).
const { Run } = require('@amlsim/run');
setTimeout(() => Run.getContext().log('late_metric', 1), Number(process.argv[2] ?? 3000));
