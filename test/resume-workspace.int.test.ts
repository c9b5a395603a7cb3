import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STREAMS, type EventStore, type StoredEvent } from '@amlsim/core';
import { createPlatform, SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { createMemoryEventStore } from '@amlsim/store';
import { aliceScenarioYaml, logOf as logIn, privateLeaseHome, REPO, runCliAndKill, tempDir } from './helpers';

/**
 * A workspace whose simulator died while it was being created (S8.1) is reconciled by the
 * session that goes on with it (packages/platform/src/resume.ts): killed while a resource was
 * under way, it is rolled back — that resource's half-made remains and every resource made
 * before it removed — and ends CreationFailed PlatformRestarted; killed past its last resource
 * (granting the identity access), it is completed, each grant given once.
 *
 * The crash is made exact: a real creation's log is cut after the fact where the simulator is
 * to have died, and a new platform resumes that log's session on the same data dir.
 */

const TENANT = { mfa: 'optional' as const, principals: { alice: { kind: 'user' as const } }, subscriptions: { 'sub-1': { owners: ['alice'] } } };

/** Create ws1 in a data dir; the session's log, cut after the first fact `cutAt` takes, and the session. */
const creationCutAt = async (dataDir: string, cutAt: (e: StoredEvent) => boolean): Promise<{ prefix: StoredEvent[]; session: string; workspaceId: string }> => {
  const store = createMemoryEventStore();
  const platform = await createPlatform({ store, dataDir, driver: 'process', tenant: TENANT });
  const token = await platform.directory.signIn('alice', { mfa: false });
  const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  const events = [...store.readAll()];
  const cut = events.findIndex(cutAt);
  expect(cut).toBeGreaterThan(0);
  // What a simulator that died saves stays: keep it past this one's clean close.
  const saved = join(dataDir, 'platform', 'sessions', `${platform.session}.sealed`);
  copyFileSync(saved, `${saved}.keep`);
  await platform.close();
  copyFileSync(`${saved}.keep`, saved);
  return { prefix: events.slice(0, cut + 1), session: platform.session, workspaceId: String((ws as { workspaceId: string }).workspaceId) };
};

/** A log holding exactly `events` (their streams, versions and meta). */
const logOf = (events: readonly StoredEvent[]): EventStore => {
  const store = createMemoryEventStore();
  for (const e of events) store.append(e.stream, e.version - 1 === 0 ? 'no-stream' : e.version - 1, [{ type: e.type, data: e.data, meta: e.meta }]);
  return store;
};

const workspaceFacts = (store: EventStore, workspaceId: string) => store.readStream(STREAMS.workspace(workspaceId));

describe('a workspace left mid-creation by a dead simulator', () => {
  it('killed while its storage account was under way: rolled back, the half-made account and the key vault removed, CreationFailed PlatformRestarted', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const { prefix, session, workspaceId } = await creationCutAt(dataDir, (e) => e.type === 'EffectStarted' && (e.data as { params?: { resource?: string } }).params?.resource === 'storage');
    const keyVault = String(prefix.find((e) => e.type === 'KeyVaultProvisioned')!.data.keyVault);
    expect(existsSync(join(dataDir, 'keyvaults', keyVault))).toBe(true);
    const accountsBefore = readdirSync(join(dataDir, 'storage'));
    expect(accountsBefore.length).toBeGreaterThan(0); // made (fully, here) by the run the log was cut from

    const store = logOf(prefix);
    const resumed = await createPlatform({ store, dataDir, driver: 'process', resume: session });
    try {
      expect(await resumed.reconcileWorkspaces()).toEqual([{ workspaceId, outcome: 'rolledBack' }]);
    } finally {
      await resumed.close();
    }
    const after = workspaceFacts(store, workspaceId).slice(prefix.filter((e) => e.stream === STREAMS.workspace(workspaceId)).length);
    expect(after.map((e) => e.type)).toEqual(['ProvisioningFailed', 'EffectStarted', 'ResourceDeprovisioned', 'WorkspaceCreationFailed']);
    expect(after[0]!.data).toMatchObject({ resource: 'storage' });
    expect(String(after[0]!.data.reason)).toMatch(/^PlatformRestarted/);
    expect(after[2]!.data).toMatchObject({ resource: 'keyVault', name: keyVault });
    expect(after.every((e) => e.meta.session === session)).toBe(true);
    // Nothing of it is left on disk: neither the vault it made nor the account under way.
    expect(existsSync(join(dataDir, 'keyvaults', keyVault))).toBe(false);
    expect(readdirSync(join(dataDir, 'storage')).filter((a) => accountsBefore.includes(a))).toEqual([]);
    expect(checkInvariants([...store.readAll()], { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers')).toEqual([]);
  });

  it('killed while granting its identity access: the grants not given yet are given, once each, and it is created', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const { prefix, session, workspaceId } = await creationCutAt(dataDir, (e) => e.type === 'IdentityAccessGranted');
    const store = logOf(prefix);
    const resumed = await createPlatform({ store, dataDir, driver: 'process', resume: session });
    try {
      expect(await resumed.reconcileWorkspaces()).toEqual([{ workspaceId, outcome: 'completed' }]);
      // Reconciled once is reconciled: nothing is left unfinished.
      expect(await resumed.reconcileWorkspaces()).toEqual([]);
    } finally {
      await resumed.close();
    }
    const facts = workspaceFacts(store, workspaceId);
    const targets = facts.filter((e) => e.type === 'IdentityAccessGranted').map((e) => String(e.data.target));
    expect(new Set(targets).size).toBe(targets.length);
    expect(targets.length).toBeGreaterThanOrEqual(5);
    expect(facts.at(-1)!.type).toBe('WorkspaceCreated');
    expect(checkInvariants([...store.readAll()], { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers')).toEqual([]);
  });

  it('a session that closed cleanly cannot be resumed, and says so', async () => {
    using tmp = tempDir();
    const store = createMemoryEventStore();
    const platform = await createPlatform({ store, dataDir: tmp.dir, driver: 'process', tenant: TENANT });
    await platform.close();
    await expect(createPlatform({ store, dataDir: tmp.dir, driver: 'process', resume: platform.session })).rejects.toThrow(`session ${platform.session} cannot be resumed`);
  });

  it('a scenario killed while it created its workspace goes on when resumed: the rolled-back creation is sent again, and the rest of its steps pass', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const file = join(tmp.dir, 'make-ws.yaml');
    writeFileSync(file, aliceScenarioYaml('Make a workspace', '{ driver: process }', ['  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, maxNodes: 1 }']));
    const { killedAt } = await runCliAndKill(file, dataDir, (e) => e.type === 'KeyVaultProvisioned', { ...process.env, TMPDIR: home });
    expect(killedAt, 'the scenario never reached the key vault').toBeDefined();
    const bin = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
    const resume = spawnSync(process.execPath, [bin, 'resume', '--data-dir', dataDir, '--json'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });
    const lines = resume.stdout.split('\n').filter((l) => l.startsWith('{"kind":')).map((l) => JSON.parse(l) as { kind: string; outcome?: string; passed?: boolean });
    expect(lines.find((l) => l.kind === 'resumedWorkspace')).toMatchObject({ outcome: 'rolledBack' });
    expect(lines.find((l) => l.kind === 'continued')).toMatchObject({ passed: true });
    expect(resume.status, resume.stderr).toBe(0);
    const session = killedAt!.meta.session;
    const own = logIn(dataDir).filter((e) => e.meta.session === session);
    expect(own.filter((e) => e.type === 'WorkspaceCreationRequested')).toHaveLength(2);
    expect(own.filter((e) => e.type === 'WorkspaceCreationFailed')).toHaveLength(1);
    expect(own.filter((e) => e.type === 'WorkspaceCreated')).toHaveLength(1);
  }, 120_000);
});
