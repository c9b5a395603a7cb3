import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimError } from '@amlsim/core';
import type { Platform } from '@amlsim/platform';
import { REPO, tempDir, testPlatform } from './helpers';

const PLATFORM_SRC = join(REPO, 'packages', 'platform', 'src');
const BUS = join(PLATFORM_SRC, 'runtime', 'command-bus.ts');

/** The platform's source files (tests aside), with their lines. */
const sources = (): Array<{ file: string; lines: string[] }> =>
  readdirSync(PLATFORM_SRC, { recursive: true, withFileTypes: true })
    .map((d) => join(d.parentPath, d.name))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((file) => ({ file, lines: readFileSync(file, 'utf8').split('\n') }));

const offending = (pattern: RegExp, allowed: (file: string, line: string) => boolean): string[] =>
  sources().flatMap(({ file, lines }) =>
    lines
      .map((line, i) => ({ line, at: `${relative(REPO, file)}:${i + 1}` }))
      .filter(({ line }) => pattern.test(line) && !line.trim().startsWith('//') && !line.trim().startsWith('*') && !allowed(file, line))
      .map(({ at, line }) => `${at}: ${line.trim()}`),
  );

/** Commands that present no ARM token: the directory's own (a tenant is created, a token is got) and the platform's. */
// ReattachVm: a resumed session takes back its own VMs (packages/platform/src/resume.ts); no caller sends it.
const TOKENLESS = new Set(['CreateTenant', 'SignIn', 'SweepOrphans', 'AdvanceClock', 'InjectFault', 'InterruptSession', 'ReattachVm']);

const t = undefined;
/** Every command a caller sends, called without a token (arguments are only what the types ask). */
const calls: Array<[string, (p: Platform) => Promise<unknown>]> = [
  ['CreateWorkspace', (p) => p.arm.createWorkspace(t, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' })],
  ['AssignRole', (p) => p.arm.assignRole(t, { principal: 'bob', role: 'Reader', scope: { workspace: 'ws1' } })],
  ['DefineRole', (p) => p.arm.defineRole(t, { name: 'r', actions: [], assignableScopes: ['/subscriptions/sub-1'] })],
  ['UpgradeWorkspace', (p) => p.arm.upgradeWorkspace(t, { workspace: 'ws1', edition: 'enterprise' })],
  ['RevokeIdentityAccess', (p) => p.arm.revokeIdentityAccess(t, { workspace: 'ws1', resource: 'storage' })],
  ['ResyncKeys', (p) => p.arm.resyncKeys(t, { workspace: 'ws1' })],
  ['RegenerateStorageKey', (p) => p.arm.regenerateStorageKey(t, { workspace: 'ws1', key: 'key1' })],
  ['AttachDatastore', (p) => p.arm.attachDatastore(t, { workspace: 'ws1', name: 'd', container: 'c' })],
  ['UploadToDatastore', (p) => p.ml.uploadToDatastore(t, { workspace: 'ws1', datastore: 'd', source: '/nonexistent' })],
  ['QueryActivityLog', (p) => p.arm.queryActivityLog(t, { workspace: 'ws1' })],
  ['QueryWorkspaceMetrics', (p) => p.arm.queryWorkspaceMetrics(t, { workspace: 'ws1' })],
  ['CreateCompute', (p) => p.ml.createCompute(t, { workspace: 'ws1', name: 'c', type: 'AmlCompute' })],
  ['Snapshot', (p) => p.ml.snapshot(t, { workspace: 'ws1', experiment: 'e', source: '.' })],
  ['SubmitRun', (p) => p.ml.submitRun(t, { workspace: 'ws1', experiment: 'e', compute: 'c', script: 'train.py' })],
  ['CancelRun', (p) => p.ml.cancelRun(t, { runId: 'no-such-run' })],
  ['WaitForRun', (p) => p.ml.waitForRun(t, { runId: 'no-such-run', timeoutMs: 1 })],
  ['GetRunStatusHistory', (p) => p.ml.getRunStatusHistory(t, { runId: 'no-such-run' })],
  ['GetMetrics', (p) => p.ml.getMetrics(t, { runId: 'no-such-run' })],
  ['RegisterModel', (p) => p.models.registerModel(t, { workspace: 'ws1', name: 'm', path: '.' })],
  ['GetModel', (p) => p.models.getModel(t, { workspace: 'ws1', name: 'm' })],
  ['CreateImage', (p) => p.images.createImage(t, { workspace: 'ws1', name: 'i', models: [], scoringScript: 'score.js' })],
  ['DeployWebservice', (p) => p.webservices.deploy(t, { workspace: 'ws1', name: 's', imageId: 'img', target: 'ACI' })],
  ['GetToken', (p) => p.webservices.getToken(t, { service: 's' })],
  ['GetKeys', (p) => p.webservices.getKeys(t, { service: 's' })],
  ['RegenKey', (p) => p.webservices.regenKey(t, { service: 's', key: 'Primary' })],
  ['DeleteWebservice', (p) => p.webservices.delete(t, { service: 's' })],
  ['QueryAppInsights', (p) => p.webservices.queryAppInsights(t, { workspace: 'ws1' })],
  ['CreateVm', (p) => p.vms.createVm(t, { name: 'vm1' })],
  ['ReadWorkspace', (p) => p.arm.readWorkspace(t, { workspace: 'ws1' })],
  ['ListWorkspaces', (p) => p.arm.listWorkspaces(t, { subscription: 'sub-1' })],
  ['ListWorkspaceKeys', (p) => p.arm.listWorkspaceKeys(t, { workspace: 'ws1' })],
  ['ListStorageKeys', (p) => p.arm.listStorageKeys(t, { workspace: 'ws1' })],
  ['ListRoleAssignments', (p) => p.arm.listRoleAssignments(t, { scope: '/subscriptions/sub-1' })],
  ['ListRoleDefinitions', (p) => p.arm.listRoleDefinitions(t, { scope: '/subscriptions/sub-1' })],
  ['GetCompute', (p) => p.ml.getCompute(t, { workspace: 'ws1', compute: 'c' })],
  ['DeleteCompute', (p) => p.ml.deleteCompute(t, { workspace: 'ws1', compute: 'c' })],
  ['DeleteWorkspace', (p) => p.ml.deleteWorkspace(t, { workspace: 'ws1' })],
  ['RemoveRoleAssignment', (p) => p.arm.removeRoleAssignment(t, { scope: '/subscriptions/sub-1', assignmentId: 'ra' })],
  ['AttachCompute', (p) => p.vms.attachCompute(t, { workspace: 'ws1', name: 'c', type: 'VirtualMachine', vm: 'vm1', username: 'u', password: 'pw-1' })],
];

describe('every command a caller sends goes through the bus pipeline (packages/platform/src/runtime/command-bus.ts)', () => {
  it('no service checks a token, decides RBAC or applies the RBAC mode itself', () => {
    // The token check has one caller: the gate the bus is given (ArmService.commandGate).
    expect(offending(/\.verifyToken\(|\bauthenticate\(ctx\b|directory\.authenticate\(/, (_f, line) => line.includes('verify: (token) => this.directory.verifyToken(token)'))).toEqual([]);
    // RBAC's decision and the enforcement mode are read by the bus alone (through that gate);
    // ArmDeps only names the mode as what the gate reads.
    const gate = (line: string) => line.includes('mode: () => this.p.rbacMode') || line.includes('decide: (who, action, scope) => authorize(assignmentsOf(');
    expect(offending(/\bauthorize\(assignmentsOf|rbacMode\b/, (file, line) => file === BUS || gate(line) || /rbacMode(\?)?: RbacMode|rbacMode: options\.rbacMode/.test(line) || /^export type ArmDeps = /.test(line.trim()))).toEqual([]);
    expect(offending(/AuthorizationViolationRecorded/, (file) => file === BUS)).toEqual([]);
    // Per-service helpers of the old kind are gone.
    expect(offending(/\b(authorized|authorizedOn)\(|\barm\.check\(/, () => false)).toEqual([]);
  });

  it('only commands without a token use bus.run; the others are declared and run with bus.execute', () => {
    const runs = sources().flatMap(({ file, lines }) =>
      lines.flatMap((line) => [...line.matchAll(/bus\.run\('([A-Za-z]+)'/g)].map((m) => `${relative(REPO, file)}: ${m[1]}`)),
    );
    expect(runs.filter((r) => !TOKENLESS.has(r.split(': ')[1]!))).toEqual([]);
    const executes = sources().flatMap(({ lines }) => lines.filter((l) => l.includes('bus.execute(')));
    for (const line of executes) expect(line).toMatch(/bus\.execute\(this\.commands\.[a-zA-Z]+, token, args,/);
    // Each declared command is one call (and the test below calls every one of them).
    const declared = sources().flatMap(({ lines }) => [...lines.join('\n').matchAll(/declareCommand\(\{\s*name: '([A-Za-z]+)'/g)].map((m) => m[1]!));
    expect(declared.sort()).toEqual(calls.map(([command]) => command).sort());
    expect(executes).toHaveLength(declared.length);
  });

  it('refuses every command presented without a token first, as one CommandRejected naming it', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir);
    const before = [...store.readAll()].length;
    for (const [command, call] of calls) {
      const code = await call(platform).then(
        () => 'success',
        (e: SimError) => e.code,
      );
      expect({ command, code }).toEqual({ command, code: 'AuthenticationFailed' });
    }
    const after = [...store.readAll()].slice(before);
    // Nothing but the refusals, one per command, in order; none names a principal (none was verified).
    expect(after.map((e) => [e.type, e.data.command, e.data.code, e.data.principal])).toEqual(calls.map(([command]) => ['CommandRejected', command, 'AuthenticationFailed', undefined]));
  });
});
