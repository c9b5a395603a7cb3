// A long synchronous training loop: it computes for argv[2] milliseconds (default 4000) without
// ever yielding to the event loop, then logs how many iterations it made.
const { Run } = require('@amlsim/run');
const ms = Number(process.argv[2] ?? 4000);
const until = Date.now() + ms;
let iterations = 0;
while (Date.now() < until) iterations++;
Run.getContext().log('iterations', iterations);
