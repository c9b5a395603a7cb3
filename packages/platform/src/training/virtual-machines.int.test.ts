import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_DIR } from '@amlsim/agent';
import { connectDocker } from '@amlsim/docker';
import { createMemoryEventStore } from '@amlsim/store';
import { vmHostDir } from '../compute/compute-driver';
import { createPlatform, type Platform } from '../platform';
import { PLATFORM_PRINCIPAL } from '../platform-context';
import { computeKeySecretName, sshFingerprint, sshPublicKey } from './virtual-machines';

const PASSWORD = 'Correct-Horse-42';
const WRONG = 'not-the-password';
const TRAIN_BASIC = join(AGENT_DIR, '..', '..', 'scenarios', 'code', 'train-basic');

/** alice (Owner of sub-1) with workspace ws1 and her VM `dsvm`, on the docker driver. */
const vmPlatform = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amlsim-vm-test-'));
  const store = createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver: 'docker',
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  await platform.vms.createVm(token, { name: 'dsvm', password: PASSWORD });
  const attach = (password: string) =>
    platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm1', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password });
  const submit = () => platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'vm1', source: TRAIN_BASIC, script: 'train.js', args: ['3'] });
  const events = () => [...store.readAll()];
  const ws = () => platform.world.workspaces.byId[platform.world.workspaces.byName['ws1']!]!;
  return { dir, platform, store, token, attach, submit, events, ws };
};

/** A control-plane call on a socket, as a compute target would make it. */
const callSocket = (socketPath: string, path: string, token: string): Promise<{ status: number; code?: string }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error?: { code?: string } }).error?.code }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ batch: 9, rows: [] }));
  });

const opened: Array<{ platform: Platform; dir: string; closed: boolean }> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    if (!o.closed) await o.platform.close();
    rmSync(o.dir, { recursive: true, force: true });
  }
});

const open = async () => {
  const p = await vmPlatform();
  const entry = { platform: p.platform, dir: p.dir, closed: false };
  opened.push(entry);
  return { ...p, close: async () => ((entry.closed = true), p.platform.close()) };
};

describe('attached VMs (S8.3 unmanaged compute, S6.2)', () => {
  it('keeps the private key in the platform vault, not the workspace vault; the password in no vault and no event', async () => {
    const { platform, attach, events, ws } = await open();
    await expect(attach(WRONG)).rejects.toMatchObject({ code: 'AuthenticationFailed' });
    // A refused attach generated, stored and recorded nothing but its rejection.
    expect(events().filter((e) => e.type === 'PlatformKeyPairGenerated' || e.type === 'ComputeAttached')).toEqual([]);
    expect(platform.context.vaults.exists(platform.vms.platformVault)).toBe(false);

    await attach(PASSWORD);
    const attached = events().find((e) => e.type === 'ComputeAttached')!;
    const secret = computeKeySecretName('ws1', 'vm1');
    expect(attached.data).toMatchObject({ vault: platform.vms.platformVault, secret, vm: 'dsvm', username: 'azureuser' });

    // The platform vault holds the private key, and it is the key the VM authorized.
    const vaults = platform.context.vaults;
    const pem = vaults.getSecret(PLATFORM_PRINCIPAL, platform.vms.platformVault, secret);
    expect(pem).toContain('PRIVATE KEY');
    expect(sshFingerprint(sshPublicKey(createPublicKey(createPrivateKey(pem))))).toBe(attached.data.fingerprint);
    expect(vaults.scopeOf(platform.vms.platformVault)).toMatch(/^\/subscriptions\/azureml-platform\//);

    // The workspace vault has no key; the workspace identity (S6.3: all of its own vault) cannot read the platform's.
    const all = vaults.listAllLatestSecrets(PLATFORM_PRINCIPAL);
    const inWorkspaceVault = all.filter((s) => s.vault === ws().keyVault);
    expect(inWorkspaceVault.length).toBeGreaterThan(0);
    expect(inWorkspaceVault.filter((s) => s.value.includes('PRIVATE KEY') || s.value === pem)).toEqual([]);
    const identity = { principalId: ws().identity!.principalId, name: 'ws1' };
    expect(() => vaults.getSecret(identity, platform.vms.platformVault, secret)).toThrow(expect.objectContaining({ code: 'Forbidden' }));

    // S6.2: the password, right or wrong, is in no vault and no event; nor is the private key.
    expect(all.filter((s) => s.value.includes(PASSWORD) || s.value.includes(WRONG))).toEqual([]);
    const log = JSON.stringify(events());
    expect(log).not.toContain(PASSWORD);
    expect(log).not.toContain(WRONG);
    expect(log).not.toContain(pem.split('\n')[1]);
  });

  it('runs on the VM with the platform key: login, the four steps, write-back, token revoked; nothing left after close', async () => {
    const { platform, token, attach, submit, events, close } = await open();
    await attach(PASSWORD);
    const { runId } = await submit();
    expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toEqual({ status: 'Completed' });
    const metrics = await platform.ml.getMetrics(token, { runId });
    expect(metrics.metrics.accuracy).toBe(0.9);
    const types = events()
      .filter((e) => e.data.runId === runId)
      .map((e) => (e.type === 'ManagementStepCompleted' ? `${e.type}:${String(e.data.step)}` : e.type));
    const order = [
      'RunTokenIssued',
      'VmLoginSucceeded',
      'ManagementCodeStarted',
      'ManagementStepCompleted:prepareEnvironment',
      'ManagementStepCompleted:downloadCode',
      'ManagementStepCompleted:setEnvironment',
      'ManagementStepCompleted:runScript',
      'MetricsWrittenBack',
      'RunScriptEnded',
      'RunCompleted',
      'RunTokenRevoked',
    ];
    expect(types.filter((t) => order.includes(t))).toEqual(order);
    expect(types).not.toContain('ContainerStarted');
    expect((await platform.ml.getRunStatusHistory(token, { runId })).statuses).toEqual(['NotStarted', 'Starting', 'Preparing', 'Running', 'Finalizing', 'Completed']);

    // The VM's channel outlives the run; the run's token is dead on it: the same call is refused as revoked.
    const channel = events().find((e) => e.type === 'RunChannelOpened' && e.data.runId === runId)!;
    expect(channel.data).toMatchObject({ kind: 'vm' });
    const runToken = platform.runs.tokenOf(runId).token!;
    const answer = await callSocket(String(channel.data.socket), `/workspaces/ws1/runs/${runId}/metrics`, runToken);
    expect(answer).toEqual({ status: 401, code: 'InvalidAuthenticationToken' });
    expect(events().filter((e) => e.type === 'RunCallRefused').at(-1)?.data).toMatchObject({ runId, tokenRun: runId, code: 'InvalidAuthenticationToken', reason: expect.stringContaining('revoked') });

    const session = platform.session;
    const engine = await connectDocker();
    try {
      expect((await engine.listSessionObjects(session)).containers).toHaveLength(1); // the VM, still up
      const { leftovers } = await close();
      expect(leftovers).toEqual([]);
      expect(await engine.listSessionObjects(session)).toEqual({ containers: [], volumes: [] });
      expect(existsSync(vmHostDir(session, 'dsvm'))).toBe(false);
    } finally {
      await engine.close();
    }
  });

  it('a login with a key not in the VM authorized keys is refused: VmLoginRefused, the run fails, its token dies', async () => {
    const { platform, token, attach, submit, events } = await open();
    await attach(PASSWORD);
    // Someone swaps the key in the platform vault for one the VM never authorized.
    const stranger = generateKeyPairSync('ed25519');
    const secret = computeKeySecretName('ws1', 'vm1');
    platform.context.vaults.setSecret(PLATFORM_PRINCIPAL, platform.vms.platformVault, secret, stranger.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const { runId } = await submit();
    const result = await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 });
    expect(result.status).toBe('Failed');
    expect(result.reason).toContain("refused the platform's login");
    const runEvents = events().filter((e) => e.data.runId === runId);
    const refused = runEvents.find((e) => e.type === 'VmLoginRefused');
    expect(refused?.data).toMatchObject({ vm: 'dsvm', username: 'azureuser', fingerprint: sshFingerprint(sshPublicKey(stranger.publicKey)) });
    expect(String(refused?.data.reason)).toContain('not in azureuser');
    expect(runEvents.map((e) => e.type)).not.toContain('ManagementCodeStarted');
    expect(runEvents.map((e) => e.type)).toEqual(expect.arrayContaining(['RunFailed', 'RunTokenRevoked']));
  });
});
