import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeKey, type EventStore, type StoredEvent } from '@amlsim/core';
import { alicePlatform, SCENARIO_DIR, tempDir } from './helpers';

/**
 * The platform carrying out the AmlCompute cluster workflow (packages/core/src/compute/
 * cluster.workflow.ts) on the process driver: what the workflow decides reaches the log in
 * order, through real runs.
 */
const platformIn = (dir: string) => alicePlatform(dir, 'process');

const events = (store: EventStore): StoredEvent[] => [...store.readAll()];
const source = join(SCENARIO_DIR, 'code', 'train-basic');

describe('AmlCompute cluster on the platform (S8.3, S4.6)', () => {
  it('a node whose provisioning fails is removed and the run it was for fails with the reason; the next run gets the next node', async () => {
    using tmp = tempDir();
    const { platform, store, token } = await platformIn(tmp.dir);
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
    // The process driver keeps node disks below <data dir>/compute: a file there makes provisioning fail.
    writeFileSync(join(tmp.dir, 'compute'), 'not a directory');
    const first = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source, script: 'train.js' });
    expect(await platform.ml.waitForRun(token, { runId: first.runId, timeoutMs: 30_000 })).toMatchObject({
      status: 'Failed',
      reason: expect.stringContaining('node provisioning failed'),
    });
    const seen = events(store).map((e) => [e.type, e.data.node ?? e.data.runId, e.data.reason ?? ''] as const);
    const from = seen.findIndex(([t]) => t === 'RunQueued');
    expect(seen.slice(from).filter(([t]) => t.startsWith('Node') || t === 'RunFailed' || t === 'RunQueued').map(([t, n, r]) => `${t} ${n}${t === 'NodeDeprovisioned' ? ` ${r}` : ''}`)).toEqual([
      `RunQueued ${first.runId}`,
      'NodeProvisioningStarted node-1',
      'NodeProvisioningFailed node-1',
      'NodeDeprovisioned node-1 provisioning failed',
      `RunFailed ${first.runId}`,
    ]);

    rmSync(join(tmp.dir, 'compute'));
    const second = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source, script: 'train.js' });
    expect(await platform.ml.waitForRun(token, { runId: second.runId, timeoutMs: 30_000 })).toMatchObject({ status: 'Completed' });
    const assigned = events(store).filter((e) => e.type === 'NodeAssigned');
    expect(assigned.map((e) => [e.data.node, e.data.runId])).toEqual([['node-2', second.runId]]);
    const cluster = platform.world.computes.byKey[computeKey(String(assigned[0]!.data.workspaceId), 'cpu')]!;
    expect([cluster.queue, cluster.anomalies]).toEqual([[], []]);
    expect((await platform.close()).leftovers).toEqual([]);
  });

  it('five runs on two nodes: every run gets one node, a node carries one run at a time, and the queue drains', async () => {
    using tmp = tempDir();
    const { platform, store, token } = await platformIn(tmp.dir);
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 2 });
    const runs = await Promise.all(
      Array.from({ length: 5 }, () => platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source, script: 'train.js' })),
    );
    for (const { runId } of runs) expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
    const log = events(store);
    const assigned = log.filter((e) => e.type === 'NodeAssigned');
    expect(assigned.map((e) => e.data.runId).sort()).toEqual(runs.map((r) => r.runId).sort());
    expect(log.filter((e) => e.type === 'NodeProvisioned')).toHaveLength(2);
    // Between a node's assignment and its release, it is given to nobody else.
    const onNode = new Map<string, string>();
    for (const e of log) {
      const node = String(e.data.node);
      if (e.type === 'NodeAssigned') {
        expect(onNode.get(node), `${node} given to ${String(e.data.runId)} while it runs ${onNode.get(node)}`).toBeUndefined();
        onNode.set(node, String(e.data.runId));
      }
      if (e.type === 'NodeReleased') onNode.delete(node);
    }
    const cluster = platform.world.computes.byKey[computeKey(String(assigned[0]!.data.workspaceId), 'cpu')]!;
    expect([cluster.queue, cluster.anomalies]).toEqual([[], []]);
    expect((await platform.close()).leftovers).toEqual([]);
  });
});
