import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform } from '@amlsim/platform';
import { tempDir, isRunning } from './helpers';

/** A script that leaves a grandchild behind: a sleep it starts and never waits for. */
const SPAWNER = `
const { spawn } = require('node:child_process');
const { Run } = require('@amlsim/run');
const child = spawn('sleep', ['600'], { stdio: 'ignore' });
child.unref();
Run.getContext().log('grandchild_pid', child.pid);
`;


describe('process driver: a run is its process group (S8.3)', () => {
  it("a script's grandchildren die with the run, and no process of it is left", async () => {
    using tmp = tempDir();
    const source = join(tmp.dir, 'code');
    mkdirSync(source);
    writeFileSync(join(source, 'train.js'), SPAWNER);
    const platform = await createPlatform({
      store: createMemoryEventStore(),
      dataDir: join(tmp.dir, 'data'),
      driver: 'process',
      tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
    });
    let pid = 0;
    try {
      const token = await platform.directory.signIn('alice', { mfa: false });
      await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
      const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source, script: 'train.js' });
      expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
      pid = Number((await platform.ml.getMetrics(token, { runId })).metrics.grandchild_pid);
      expect(pid).toBeGreaterThan(0);
      // The run ended when its management code did: its group went with it.
      for (let i = 0; i < 50 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(isRunning(pid)).toBe(false);
      expect((await platform.driverIfStarted()!.leftovers(platform.session)).filter((l) => l.startsWith('process'))).toEqual([]);
    } finally {
      if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL');
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });
});
