// ESM script: logs 600 loss values, written back in batches of at most 250 rows (S8.4).
import { Run } from '@amlsim/run';
const run = Run.getContext();
for (let step = 0; step < 600; step++) run.log('loss', 1 / (step + 1));
run.log('final_loss', 1 / 600);
