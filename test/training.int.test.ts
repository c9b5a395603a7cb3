import { request } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform, virtualClock, type Platform } from '@amlsim/platform';
import { callControlPlane, SCENARIO_DIR, tempDir } from './helpers';

/** A platform with alice (Owner) and a workspace with a small cluster, on the docker driver. */
const trainingPlatform = async (dir: string, options: { clock?: 'virtual'; dependencies?: boolean } = {}) => {
  const store = createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver: 'docker',
    ...(options.clock ? { clock: virtualClock() } : {}),
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1, idleSecondsBeforeScaledown: 60 });
  const submit = (extra: { dependencies?: string[]; script?: string; source?: string } = {}) =>
    platform.ml.submitRun(token, {
      workspace: 'ws1',
      experiment: 'exp',
      compute: 'cpu',
      source: extra.source ?? join(SCENARIO_DIR, 'code', 'train-basic'),
      script: extra.script ?? 'train.js',
      ...(extra.dependencies ? { dependencies: extra.dependencies } : {}),
    });
  return { platform, store, token, submit };
};

/** The host path of a run's own control-plane socket, from its RunChannelOpened fact. */
const channelSocketOf = (store: ReturnType<typeof createMemoryEventStore>, runId: string): string => {
  const opened = [...store.readAll()].find((e) => e.type === 'RunChannelOpened' && e.data.runId === runId);
  if (!opened) throw new Error(`run ${runId} has no channel yet`);
  return String(opened.data.socket);
};

describe('training on docker compute (S1.3, S8.3, S4.6)', () => {
  it("one channel per run: a run's token is refused on another run's channel, and its own channel closes with it", async () => {
    using tmp = tempDir();
    const { platform, store, token, submit } = await trainingPlatform(tmp.dir);
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu2', type: 'AmlCompute', maxNodes: 1 });
    try {
      const { runId: a } = await submit();
      expect(await platform.ml.waitForRun(token, { runId: a, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
      const tokenA = platform.runs.tokenOf(a).token!;
      const socketA = channelSocketOf(store, a);
      // A's channel went with A: its socket is gone.
      expect(existsSync(socketA)).toBe(false);
      // B, a sibling in the same workspace, works for a while on its own channel.
      const { runId: b } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu2', source: join(SCENARIO_DIR, 'code', 'sleepy'), script: 'train.js', args: ['4000'] });
      await platform.runs.waitFor(b, 60_000, 'Running');
      const socketB = channelSocketOf(store, b);
      expect(socketB).not.toBe(socketA);
      // A's token relayed onto B's channel, for A and for B: refused, recorded on A (whose token acted).
      for (const target of [a, b]) {
        const answer = await callControlPlane(socketB, `/workspaces/ws1/runs/${target}/metrics`, tokenA);
        expect(answer.status).toBe(403);
        expect(answer.body.error?.code).toBe('AuthorizationFailed');
      }
      const refused = [...store.readAll()].filter((e) => e.type === 'RunCallRefused');
      expect(refused.map((e) => e.data)).toEqual([
        expect.objectContaining({ runId: a, tokenRun: a, code: 'AuthorizationFailed', reason: expect.stringContaining('bound to channel') }),
        expect.objectContaining({ runId: a, tokenRun: a, code: 'AuthorizationFailed', reason: expect.stringContaining(`scoped to run '${a}'`) }),
      ]);
      // A forged token (signed by someone else) is refused too, and the log never holds a real one.
      const tokenB = platform.runs.tokenOf(b).token!;
      const forged = await callControlPlane(socketB, `/workspaces/ws1/runs/${b}/metrics`, `${tokenB.slice(0, -4)}AAAA`);
      expect(forged.body.error?.code).toBe('InvalidAuthenticationToken');
      // Deny first: a caller with no valid token is answered without its body being read (it
      // announces 100 MB and sends none; a server that read first would never answer).
      const unread = await new Promise<number>((resolve, reject) => {
        const req = request({ socketPath: socketB, path: `/workspaces/ws1/runs/${b}/metrics`, method: 'POST', headers: { authorization: 'Bearer not-a-token', 'content-length': String(100_000_000) } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
        req.flushHeaders();
      });
      expect(unread).toBe(401);
      // B ends untouched: nothing was recorded on it but its own facts.
      expect(await platform.ml.waitForRun(token, { runId: b, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
      expect(store.readStream(`run-${b}`).filter((e) => e.type === 'RunCallRefused').map((e) => e.data.tokenRun)).toEqual([undefined, undefined]);
      expect(JSON.stringify([...store.readAll()])).not.toContain(tokenA);
      expect(JSON.stringify([...store.readAll()])).not.toContain(tokenB);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });

  it('scale-down deprovisions an idle node and deletes its OS disk; nothing of the session remains after close', async () => {
    using tmp = tempDir();
    const { platform, store, token, submit } = await trainingPlatform(tmp.dir, { clock: 'virtual' });
    const { runId } = await submit();
    await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 });
    const provisioned = [...store.readAll()].find((e) => e.type === 'NodeProvisioned')!;
    const driver = platform.driverIfStarted()!;
    const osDisk = String(provisioned.data.osDisk);
    expect(await driver.diskExists(osDisk)).toBe(true);
    await platform.advanceClock(30_000);
    expect(await driver.diskExists(osDisk)).toBe(true); // not idle long enough
    await platform.advanceClock(31_000);
    expect(await driver.diskExists(osDisk)).toBe(false);
    expect(await driver.diskExists(String(provisioned.data.tempDisk))).toBe(false);
    expect([...store.readAll()].map((e) => e.type)).toContain('NodeDeprovisioned');
    expect((await platform.close()).leftovers).toEqual([]);
  });

  it('a run whose environment names dependencies gets a layered image, reused by the next identical environment', async () => {
    using tmp = tempDir();
    const { platform, store, token, submit } = await trainingPlatform(tmp.dir);
    try {
      const deps = ['ms@2.1.3', 'is-number@7.0.0'];
      const first = await submit({ dependencies: deps });
      await platform.ml.waitForRun(token, { runId: first.runId, timeoutMs: 60_000 });
      const second = await submit({ dependencies: [...deps].reverse() });
      await platform.ml.waitForRun(token, { runId: second.runId, timeoutMs: 60_000 });
      const prepared = [...store.readAll()].filter((e) => e.type === 'RunImagePrepared').map((e) => e.data);
      expect(prepared).toHaveLength(2);
      expect(prepared[0]).toMatchObject({ reused: false });
      expect(prepared[1]).toMatchObject({ reused: true, image: prepared[0]!.image });
      expect(String(prepared[0]!.image)).toMatch(/^amlsim\/layer:/);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });
});
