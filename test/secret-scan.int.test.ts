import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore } from '@amlsim/core';
import { createPlatform, STORAGE_CONNECTION_SECRET, type Platform } from '@amlsim/platform';
import { parseScenario, runScenario, secretShapesIn } from '@amlsim/scenario';
import { createMemoryEventStore, openEventStore } from '@amlsim/store';
import { SCENARIO_DIR, tempDir } from './helpers';

/**
 * Secret scans that do not trust the code under test to say what its secrets are: the values
 * come from what the APIs handed out (keys before and after regeneration, tokens, passwords),
 * and anything JWT- or key-shaped counts too. Both the events as read back and the raw bytes
 * of the SQLite files (db, -wal) are scanned, so a secret that reached the log by a path the
 * secret registry never saw is still found.
 */

type Secret = { what: string; value: string };

const logFiles = (dir: string) => ['events.sqlite', 'events.sqlite-wal'].map((f) => join(dir, f)).filter(existsSync);

/** Each secret, and each JWT- or key-shaped string, found in the log; empty when it holds none. */
const scan = (store: EventStore, dir: string, secrets: Secret[]): string[] => {
  const events = JSON.stringify([...store.readAll()]);
  const files = logFiles(dir).map((path) => ({ path, bytes: readFileSync(path) }));
  expect(files.length).toBeGreaterThan(0);
  const found: string[] = [];
  for (const { what, value } of secrets) {
    expect(value.length, what).toBeGreaterThanOrEqual(8);
    if (events.includes(value)) found.push(`${what} in the events`);
    for (const { path, bytes } of files) if (bytes.includes(Buffer.from(value))) found.push(`${what} in ${path}`);
    // A key is base64 of random bytes: those bytes, decoded, must not be there either.
    if (/^[A-Za-z0-9+/]+=*$/.test(value) && value.length >= 40) {
      for (const { path, bytes } of files) if (bytes.includes(Buffer.from(value, 'base64'))) found.push(`${what} (decoded) in ${path}`);
    }
  }
  for (const s of secretShapesIn(events)) found.push(`${s.kind} string in the events: ${s.value.slice(0, 12)}…`);
  for (const { path, bytes } of files) for (const s of secretShapesIn(bytes.toString('latin1'))) found.push(`${s.kind} string in ${path}: ${s.value.slice(0, 12)}…`);
  return found;
};

const keyOf = (connection: string) => /AccountKey=([^;]+)/.exec(connection)![1]!;

const platformOn = async (dir: string, driver: 'docker' | 'process'): Promise<{ platform: Platform; store: EventStore }> => {
  const store = openEventStore('sqlite', dir);
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver,
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  return { platform, store };
};

describe('secret scan of the event log (values from API outputs, and anything token- or key-shaped)', () => {
  it('workspace keys before and after regeneration, ARM and run tokens, VM passwords: none in the events or the SQLite bytes', async () => {
    using tmp = tempDir();
    const { platform, store } = await platformOn(tmp.dir, 'process');
    const secrets: Secret[] = [];
    try {
      const token = await platform.directory.signIn('alice', { mfa: false });
      secrets.push({ what: 'ARM token', value: token });
      const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
      const identity = { principalId: ws.identity!.principalId, name: 'ws1' };
      const before = platform.context.storage.listKeys(ws.storageAccount!);
      const connectionBefore = platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET);
      secrets.push({ what: 'storage key1', value: before.key1 }, { what: 'storage key2', value: before.key2 }, { what: 'storage connection string', value: connectionBefore });

      await platform.arm.regenerateStorageKey(token, { workspace: 'ws1', key: 'key1' });
      await platform.arm.regenerateStorageKey(token, { workspace: 'ws1', key: 'key2' });
      const after = platform.context.storage.listKeys(ws.storageAccount!);
      expect(after.key1).not.toBe(before.key1);
      expect(after.key2).not.toBe(before.key2);
      const connectionAfter = platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET);
      expect(keyOf(connectionAfter)).toBe(after.key1);
      secrets.push({ what: 'regenerated storage key1', value: after.key1 }, { what: 'regenerated storage key2', value: after.key2 }, { what: 'regenerated connection string', value: connectionAfter });

      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
      const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: join(SCENARIO_DIR, 'code', 'train-basic'), script: 'train.js' });
      for (let i = 0; i < 200 && !platform.runs.tokenOf(runId).token; i++) await new Promise((r) => setTimeout(r, 25));
      const runToken = platform.runs.tokenOf(runId).token;
      expect(runToken).toBeDefined();
      secrets.push({ what: 'run token', value: runToken! }, { what: 'run token signature', value: runToken!.split('.')[2]! });
      expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });

      const password = 'Correct-Horse-Battery-42';
      await platform.vms.createVm(token, { name: 'dsvm', username: 'azureuser', password });
      await platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm1', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password });
      await expect(platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm2', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password: 'Wrong-Horse-Battery-43' })).rejects.toThrow();
      secrets.push({ what: 'VM password', value: password }, { what: 'wrong VM password', value: 'Wrong-Horse-Battery-43' });

      expect(scan(store, tmp.dir, secrets)).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
    // Closed: the WAL is folded into the database file; scan that too.
    expect(scan(store, tmp.dir, secrets)).toEqual([]);
    store.close();
  });

  it('catches what the registry never saw: a key or token pasted into an event is found in the events and the file', async () => {
    using tmp = tempDir();
    const { platform, store } = await platformOn(tmp.dir, 'process');
    try {
      const token = await platform.directory.signIn('alice', { mfa: false });
      const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
      const { key1 } = platform.context.storage.listKeys(ws.storageAccount!);
      // Stands in for a service that forgot the rule; nothing registers these values.
      store.append('workspace-leak', 'no-stream', [{ type: 'StorageKeyRegenerated', data: { value: key1 }, meta: { at: new Date().toISOString(), correlationId: 'x', causationId: 'x', session: platform.session } }]);
      store.append('run-leak', 'no-stream', [{ type: 'RunLogsUploaded', data: { tail: `AZUREML_RUN_TOKEN=${token}` }, meta: { at: new Date().toISOString(), correlationId: 'y', causationId: 'y', session: platform.session } }]);
      const found = scan(store, tmp.dir, [{ what: 'storage key1', value: key1 }]);
      expect(found).toEqual(expect.arrayContaining(['storage key1 in the events', `storage key1 in ${join(tmp.dir, 'events.sqlite-wal')}`]));
      expect(found.filter((f) => f.startsWith('key-shaped string in the events'))).toHaveLength(1);
      expect(found.filter((f) => f.startsWith('JWT-shaped string in the events'))).toHaveLength(1);
      expect(found.some((f) => f.startsWith('JWT-shaped string in') && f.includes('events.sqlite'))).toBe(true);
    } finally {
      await platform.close();
      store.close();
    }
  });

  it('web service keys before and after regeneration and service tokens (docker): none in the events or the SQLite bytes', async () => {
    using tmp = tempDir();
    const { platform, store } = await platformOn(tmp.dir, 'docker');
    const secrets: Secret[] = [];
    try {
      const token = await platform.directory.signIn('alice', { mfa: false });
      await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
      const { modelId } = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIO_DIR, 'models', 'sentiment.json') });
      const { imageId } = await platform.images.createImage(token, { workspace: 'ws1', name: 'sentiment-img', models: [modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'keyed', imageId, target: 'ACI', authEnabled: true });
      const before = await platform.webservices.getKeys(token, { service: 'keyed' });
      await platform.webservices.regenKey(token, { service: 'keyed', key: 'Primary' });
      await platform.webservices.regenKey(token, { service: 'keyed', key: 'Secondary' });
      const after = await platform.webservices.getKeys(token, { service: 'keyed' });
      expect(after.primaryKey).not.toBe(before.primaryKey);
      expect((await platform.callWebservice('keyed', { data: { features: [1, 0, 1] }, authorization: `Bearer ${after.primaryKey}` })).httpStatus).toBe(200);
      secrets.push(
        { what: 'primary key', value: before.primaryKey },
        { what: 'secondary key', value: before.secondaryKey },
        { what: 'regenerated primary key', value: after.primaryKey },
        { what: 'regenerated secondary key', value: after.secondaryKey },
      );

      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'aks1', type: 'AKS', agentCount: 1 });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'tokened', imageId, target: 'AKS', compute: 'aks1', tokenAuthEnabled: true });
      const first = await platform.webservices.getToken(token, { service: 'tokened' });
      const second = await platform.webservices.getToken(token, { service: 'tokened' });
      expect((await platform.callWebservice('tokened', { data: { features: [0, 1, 0] }, authorization: `Bearer ${first.token}` })).httpStatus).toBe(200);
      secrets.push({ what: 'service token', value: first.token }, { what: 'second service token', value: second.token }, { what: 'ARM token', value: token });

      expect(scan(store, tmp.dir, secrets)).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
    expect(scan(store, tmp.dir, secrets)).toEqual([]);
    store.close();
  }, 180_000);
});

describe('end to end: a leaked token fails the scenario', () => {
  // A script that prints its run token base64-encoded: the platform redacts the token's own
  // value from the uploaded log tail, not an encoding of it, so the leak reaches RunLogsUploaded.
  const LEAKY = `const t = process.env.AZUREML_RUN_TOKEN;\nconsole.log('debug: ' + Buffer.from(t).toString('base64'));\nconsole.log('plain: ' + t);\n`;
  const SCENARIO = [
    'name: A script leaks its run token',
    'tenant:',
    '  principals:',
    '    alice: { kind: user }',
    'steps:',
    '  - signIn: alice',
    '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
    '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, maxNodes: 1 }',
    '  - id: leak',
    '    submitRun: { workspace: ws1, experiment: leak, compute: cpu, source: code/leaky, script: train.js }',
    '  - waitForRun: { run: leak, timeout: 1m }',
    '    expect: { status: Completed }',
    '',
  ].join('\n');

  it('runScenario reports no-secret-in-log on the RunLogsUploaded that carries it, and the scenario does not pass', async () => {
    using tmp = tempDir();
    mkdirSync(join(tmp.dir, 'code', 'leaky'), { recursive: true });
    writeFileSync(join(tmp.dir, 'code', 'leaky', 'train.js'), LEAKY);
    const file = join(tmp.dir, 'leak.yaml');
    writeFileSync(file, SCENARIO);
    const dataDir = join(tmp.dir, 'data');
    const result = await runScenario(parseScenario(SCENARIO, file), { store: createMemoryEventStore(), dataDir, driver: 'process' });
    expect(result.failures).toEqual([]); // every step did what it said ...
    expect(result.passed).toBe(false); // ... and still the scenario fails, on the invariant
    const leaks = result.invariantViolations.filter((v) => v.invariant === 'no-secret-in-log');
    expect(leaks.map((v) => v.events.map((e) => e.type))).toEqual([['RunLogsUploaded']]);
    expect(leaks[0]!.message).toMatch(/RunLogsUploaded contains a key-shaped value/);
    // The plain value was redacted; only the encoded one got through.
    expect(JSON.stringify(leaks[0]!.events)).toContain('[redacted run token]');
  });
});
