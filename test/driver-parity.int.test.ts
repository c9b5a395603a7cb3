import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform, virtualClock, type Platform } from '@amlsim/platform';
import { SCENARIO_DIR, tempDir, callControlPlane } from './helpers';

/**
 * Rules that were once caught only by Docker-only tests, run through both compute drivers:
 * a node's disks go with the node on scale-down, a run token is dead once its run ended, and
 * one run's token does not act on a sibling run of the same workspace.
 */

const platformWith = async (dir: string, driver: 'docker' | 'process', options: { clock?: 'virtual' } = {}) => {
  const store = createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver,
    ...(options.clock ? { clock: virtualClock() } : {}),
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  return { platform, store, token };
};

const events = (store: EventStore, type?: string): StoredEvent[] => [...store.readAll()].filter((e) => !type || e.type === type);

/** The run token, read while the run holds it (the platform keeps it in memory only). */
const runTokenOf = async (platform: Platform, runId: string): Promise<string> => {
  for (let i = 0; i < 400 && !platform.runs.tokenOf(runId).token; i++) await new Promise((r) => setTimeout(r, 25));
  const token = platform.runs.tokenOf(runId).token;
  expect(token, `run ${runId} got no token`).toBeDefined();
  return token!;
};

/** The control-plane socket a run was given: its channel's when the log names one, else the session's. */
const socketOf = (platform: Platform, store: EventStore, runId: string): string => {
  const opened = events(store, 'RunChannelOpened').findLast((e) => e.data.runId === runId);
  return opened ? String(opened.data.socket) : join(tmpdir(), `amlsim-${platform.session}`, 'control.sock');
};

/** A script that writes a metric into the run named in argv[2] with its own token, and says how it was answered. */
const SIBLING_WRITER = `
const http = require('node:http');
const socketPath = process.env.AZUREML_SERVICE_ENDPOINT.replace('unix://', '');
const path = '/workspaces/ws1/runs/' + process.argv[2] + '/metrics';
const rows = [{ kind: 'scalar', name: 'stolen', value: 1, step: 0, at: new Date().toISOString() }];
const req = http.request({ socketPath, path, method: 'POST', headers: { authorization: 'Bearer ' + process.env.AZUREML_RUN_TOKEN, 'content-type': 'application/json' } }, (res) => {
  let body = '';
  res.on('data', (c) => (body += c));
  res.on('end', () => {
    console.log('writing into run ' + process.argv[2] + ' was answered ' + res.statusCode);
    process.exit(res.statusCode === 200 ? 1 : 0);
  });
});
req.on('error', (e) => { console.log('no answer: ' + e.message); process.exit(2); });
req.end(JSON.stringify({ batch: 1, rows }));
`;
const SLEEPER = `setTimeout(() => {}, Number(process.argv[2] ?? 4000));\n`;

describe.each(['docker', 'process'] as const)('on the %s driver', (driver) => {
  it('scale-down deprovisions an idle node and deletes its OS and temp disks; nothing of the session remains after close', async () => {
    using tmp = tempDir();
    const { platform, store, token } = await platformWith(tmp.dir, driver, { clock: 'virtual' });
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1, idleSecondsBeforeScaledown: 60 });
    const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: join(SCENARIO_DIR, 'code', 'train-basic'), script: 'train.js' });
    expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
    const provisioned = events(store, 'NodeProvisioned')[0]!;
    const disk = platform.driverIfStarted()!;
    const osDisk = String(provisioned.data.osDisk);
    const tempDisk = String(provisioned.data.tempDisk);
    expect(await disk.diskExists(osDisk)).toBe(true);
    await platform.advanceClock(30_000);
    expect(await disk.diskExists(osDisk)).toBe(true); // not idle long enough
    await platform.advanceClock(31_000);
    expect(events(store).map((e) => e.type)).toContain('NodeDeprovisioned');
    expect(await disk.diskExists(osDisk)).toBe(false);
    expect(await disk.diskExists(tempDisk)).toBe(false);
    expect((await platform.close()).leftovers).toEqual([]);
  });

  it('a run token is dead once the run ended: the same call on the channel it used is refused as revoked, and recorded', async () => {
    using tmp = tempDir();
    const { platform, store, token } = await platformWith(tmp.dir, driver);
    try {
      // An attached VM keeps its channel across runs, so the ended run's token can still be presented on it.
      await platform.vms.createVm(token, { name: 'dsvm', username: 'azureuser', password: 'Correct-Horse-42' });
      await platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm1', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password: 'Correct-Horse-42' });
      const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'vm1', source: join(SCENARIO_DIR, 'code', 'train-basic'), script: 'train.js' });
      const runToken = await runTokenOf(platform, runId);
      expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 90_000 })).toMatchObject({ status: 'Completed' });
      expect(events(store, 'RunTokenRevoked').map((e) => e.data.runId)).toContain(runId);

      const answer = await callControlPlane(socketOf(platform, store, runId), `/workspaces/ws1/runs/${runId}/metrics`, runToken);
      expect(answer.status).toBe(401);
      expect(answer.body.error?.code).toBe('InvalidAuthenticationToken');
      expect(answer.body.error?.message).toContain('revoked');
      const refused = events(store, 'RunCallRefused').at(-1);
      expect(refused?.data).toMatchObject({ runId, code: 'InvalidAuthenticationToken', reason: expect.stringContaining('revoked') });
      expect(events(store, 'MetricsWrittenBack').filter((e) => e.data.batch === 9)).toEqual([]);
      // The end it reported while its token was alive, sent again (as when the platform went
      // before answering), is answered as before and records nothing: only new acts are refused.
      const ofRun = () => events(store).filter((e) => e.data.runId === runId).length;
      const before = ofRun();
      const again = await callControlPlane(socketOf(platform, store, runId), `/workspaces/ws1/runs/${runId}/complete`, runToken);
      expect(again.status).toBe(200);
      expect(ofRun()).toBe(before);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  }, 180_000);

  // On managed compute each run has a channel of its own; on an attached VM the runs on it share
  // the VM's channel, so there the token's run scope alone keeps one run out of the other.
  it.each(['managed cluster', 'attached VM'] as const)(
    "a run's token cannot write into a sibling run of the same workspace (%s): refused (AuthorizationFailed), recorded, the sibling untouched",
    async (target) => {
      using tmp = tempDir();
      const code = join(tmp.dir, 'code');
      mkdirSync(join(code, 'writer'), { recursive: true });
      mkdirSync(join(code, 'sleeper'), { recursive: true });
      writeFileSync(join(code, 'writer', 'train.js'), SIBLING_WRITER);
      writeFileSync(join(code, 'sleeper', 'train.js'), SLEEPER);
      const { platform, store, token } = await platformWith(join(tmp.dir, 'data'), driver);
      try {
        if (target === 'managed cluster') {
          await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 2 });
        } else {
          await platform.vms.createVm(token, { name: 'dsvm', username: 'azureuser', password: 'Correct-Horse-42' });
          await platform.vms.attachCompute(token, { workspace: 'ws1', name: 'cpu', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password: 'Correct-Horse-42' });
        }
        const sibling = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: join(code, 'sleeper'), script: 'train.js', args: ['8000'] });
        expect(await platform.ml.waitForRun(token, { runId: sibling.runId, timeoutMs: 60_000, until: 'Running' })).toMatchObject({ status: 'Running' });
        const writer = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: join(code, 'writer'), script: 'train.js', args: [sibling.runId] });

        // The writer's script exits 0 only when its call was refused.
        expect(await platform.ml.waitForRun(token, { runId: writer.runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
        const refusals = events(store, 'RunCallRefused').filter((e) => e.data.code === 'AuthorizationFailed');
        expect(refusals.length).toBeGreaterThan(0);
        expect(refusals.map((e) => e.data.runId)).toEqual(refusals.map(() => expect.stringMatching(new RegExp(`^(${writer.runId}|${sibling.runId})$`))));
        expect(JSON.stringify(refusals.map((e) => e.data))).toContain(sibling.runId);
        // The sibling was still running when the writer called (else the refusal proves nothing about scope).
        const completed = events(store, 'RunCompleted');
        expect(completed.map((e) => e.data.runId)).not.toContain(sibling.runId);
        expect(await platform.ml.waitForRun(token, { runId: sibling.runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
        expect(events(store, 'MetricsWrittenBack').filter((e) => e.data.runId === sibling.runId)).toEqual([]);
      } finally {
        expect((await platform.close()).leftovers).toEqual([]);
      }
    },
    180_000,
  );
});
