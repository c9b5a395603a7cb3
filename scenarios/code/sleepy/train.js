// Sleeps for argv[2] milliseconds (default 1000), then logs one metric.
const { Run } = require('@amlsim/run');
const ms = Number(process.argv[2] ?? 1000);
setTimeout(() => {
  Run.getContext().log('slept_ms', ms);
}, ms);
