/** Runs only the training rows of `pnpm bench` (bench/training-bench.ts), for iterating on the run path. */
import { benchTraining, CLUSTER_TARGET, SUBMIT_TARGET, formatCpu } from './training-bench';

const t = await benchTraining();
console.log(`submit -> Completed (median)  ${t.runMs.toFixed(0)} ms  raw ${t.rawMs.toFixed(0)} ms  ${t.ratio.toFixed(2)}x  (<= ${SUBMIT_TARGET}x)`);
console.log(`${t.cluster.runs} runs on ${t.cluster.nodes} nodes (median of ${t.cluster.rounds})  ${t.cluster.seconds.toFixed(2)} s  raw ${t.cluster.rawSeconds.toFixed(2)} s  ${t.cluster.ratio.toFixed(2)}x  (<= ${CLUSTER_TARGET}x)`);
console.log(`${t.concurrent.runs} concurrent runs, scaling up from none: ${t.concurrent.seconds.toFixed(1)} s`);
console.log(`CPU a run, in the cluster rounds: ${formatCpu(t.cpu.run)}; a raw container: ${formatCpu(t.cpu.raw)}`);
