import { createRequire } from 'node:module';
import { join } from 'node:path';
import { benchPlatform } from './bench-platform';
import { connectDocker } from '../packages/docker/src/index';

// dockerode is a dependency of packages/docker only; the baseline borrows it from there.
const requireFromDocker = createRequire(join(import.meta.dirname, '..', 'packages', 'docker', 'package.json'));
type RawContainer = { start(): Promise<unknown>; wait(): Promise<unknown>; remove(o: object): Promise<unknown> };
const Docker = requireFromDocker('dockerode') as new () => { createContainer(o: object): Promise<RawContainer> };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (msg: string) => process.stderr.write(`  [bench] ${msg}\n`);
const SOURCE = join(import.meta.dirname, '..', 'scenarios', 'code', 'noop');

export type TrainingBench = {
  runMs: number;
  rawMs: number;
  ratio: number;
  concurrent: { runs: number; nodes: number; seconds: number; runsPerSecond: number };
};

/**
 * Submit -> Completed of a no-op script through the whole platform (token, image check,
 * management code, node, container, control-plane calls, write-back) against raw dockerode
 * create/start/wait/remove of the same image running `node -e 0`, in the same process run;
 * then 20 concurrent runs on a 4-node cluster.
 */
export async function benchTraining(samples = 10): Promise<TrainingBench> {
  const { platform, token, dispose } = await benchPlatform('amlsim-bench-train-');
  try {
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'one', type: 'AmlCompute', maxNodes: 1 });
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'four', type: 'AmlCompute', maxNodes: 4 });
    const { snapshotId } = await platform.ml.snapshot(token, { workspace: 'ws1', experiment: 'bench', source: SOURCE });
    // Submit -> Completed is the time until the run's RunCompleted fact; the run is then waited
    // for in full (token revoked, container gone, node back) outside the timed part.
    const completedAt = new Map<string, number>();
    platform.context.store.subscribe((events) => {
      for (const e of events) if (e.type === 'RunCompleted') completedAt.set(String(e.data.runId), performance.now());
    });
    const run = async (compute: string): Promise<number> => {
      const t0 = performance.now();
      const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'bench', compute, snapshotId, script: 'train.js' });
      const { status } = await platform.ml.waitForRun(token, { runId, timeoutMs: 120_000 });
      if (status !== 'Completed') throw new Error(`bench run ${runId} ended ${status}`);
      return completedAt.get(runId)! - t0;
    };

    // Warm up: the node is provisioned and the base image exists before timing.
    await run('one');
    const engine = await connectDocker();
    const base = await engine.ensureNodeBaseImage();
    await engine.close();
    const docker = new Docker();
    const raw = async () => {
      const c = await docker.createContainer({ Image: base.tag, Cmd: ['/usr/bin/node', '-e', '0'], HostConfig: { NetworkMode: 'none', Memory: 512 * 2 ** 20 } });
      await c.start();
      await c.wait();
      await c.remove({ force: true });
    };
    await raw();

    const runTimes: number[] = [];
    const rawTimes: number[] = [];
    for (let i = 0; i < samples; i++) {
      runTimes.push(await run('one'));
      const t = performance.now();
      await raw();
      rawTimes.push(performance.now() - t);
      progress(`run ${i + 1}/${samples}: platform ${runTimes.at(-1)!.toFixed(0)} ms, raw ${rawTimes.at(-1)!.toFixed(0)} ms`);
    }

    progress('20 concurrent runs on a 4-node cluster…');
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 20 }, () => run('four')));
    const seconds = (performance.now() - t0) / 1000;

    const runMs = median(runTimes);
    const rawMs = median(rawTimes);
    return { runMs, rawMs, ratio: runMs / rawMs, concurrent: { runs: 20, nodes: 4, seconds, runsPerSecond: 20 / seconds } };
  } finally {
    await dispose();
  }
}
