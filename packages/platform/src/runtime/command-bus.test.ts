import { actions, type PrincipalRecord, type SimError, type StoredEvent, type WorkspaceRecord } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { describe, expect, it } from 'vitest';
import { virtualClock } from './clock';
import { CommandBus, declareCommand, type CommandGate, type RbacMode } from './command-bus';
import { nanoIds } from './ids';

const alice: PrincipalRecord = { principal: 'alice', principalId: 'p-alice', kind: 'user' };
const ws = (revoked: WorkspaceRecord['revoked'] = []): WorkspaceRecord => ({
  workspaceId: 'ws_1',
  workspace: 'ws1',
  subscription: 'sub-1',
  resourceGroup: 'rg1',
  keyVaultResourceGroup: 'rg1',
  region: 'eastus',
  scope: '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1',
  edition: 'basic',
  customerManagedKey: false,
  status: 'Succeeded',
  grants: [],
  revoked,
  datastores: {},
  storageKeyGenerations: { key1: 1, key2: 1 },
});

/** A bus over an in-memory log, with a gate that knows one token and allows what `allowed` names. */
const setUp = (options: { mode?: RbacMode; allowed?: string[] } = {}) => {
  const store = createMemoryEventStore();
  const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
  const decided: string[] = [];
  const gate: CommandGate = {
    verify: (token) => {
      if (token !== 'good') throw new Error('bad token');
      return alice;
    },
    decide: (_who, action, scope) => {
      decided.push(`${action} @ ${scope}`);
      return options.allowed?.includes(action) ? { allowed: true, via: { role: 'Owner', scope } } : { allowed: false, why: 'no role here' };
    },
    mode: () => options.mode ?? 'enforce',
  };
  bus.guardWith(gate);
  const events = (): StoredEvent[] => [...store.readAll()];
  return { bus, decided, events };
};

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'success',
    (e: SimError) => e.code,
  );

const upgrade = (target: WorkspaceRecord) =>
  declareCommand({ name: 'UpgradeWorkspace', verb: 'upgradeWorkspace', action: actions.upgradeWorkspace, target: (_args: { workspace: string }) => ({ scope: target.scope, ws: target }) });

describe('the command pipeline (bus.execute)', () => {
  it('refuses to declare a command without an RBAC action, or with one the catalog does not know', () => {
    // @ts-expect-error a command names its action (or says it needs authentication only)
    expect(() => declareCommand({ name: 'NewCommand', verb: 'newCommand', target: () => ({ scope: '/' }) })).toThrow(/NewCommand declares no RBAC action/);
    // @ts-expect-error the action is one of packages/core/src/rbac/operations.ts
    expect(() => declareCommand({ name: 'NewCommand', verb: 'newCommand', action: 'Microsoft.Made/up/action', target: () => ({ scope: '/' }) })).toThrow(
      /unknown action 'Microsoft.Made\/up\/action'/,
    );
    // @ts-expect-error and says how its scope is found from its arguments
    expect(() => declareCommand({ name: 'NewCommand', verb: 'newCommand', action: actions.createCompute })).toThrow(/how its scope is found/);
    expect(declareCommand({ name: 'CreateVm', verb: 'createVm', authenticationOnly: true }).authenticationOnly).toBe(true);
  });

  it('authenticates first: no token is one CommandRejected naming the call, and the handler never runs', async () => {
    const { bus, decided, events } = setUp({ allowed: [actions.upgradeWorkspace] });
    let ran = false;
    expect(await codeOf(bus.execute(upgrade(ws()), undefined, { workspace: 'ws1' }, () => (ran = true)))).toBe('AuthenticationFailed');
    expect(ran).toBe(false);
    expect(decided).toEqual([]);
    expect(events().map((e) => [e.type, e.data.command, e.data.code])).toEqual([['CommandRejected', 'UpgradeWorkspace', 'AuthenticationFailed']]);
    expect(String(events()[0]!.data.reason)).toContain('upgradeWorkspace');
  });

  it('enforce: authorizes the declared action at the scope found from the arguments; a refusal is recorded with principal, action and scope', async () => {
    const { bus, events } = setUp();
    const target = ws();
    let ran = false;
    expect(await codeOf(bus.execute(upgrade(target), 'good', { workspace: 'ws1' }, () => (ran = true)))).toBe('AuthorizationFailed');
    expect(ran).toBe(false);
    expect(events().map((e) => e.data)).toEqual([
      expect.objectContaining({ command: 'UpgradeWorkspace', code: 'AuthorizationFailed', principal: 'alice', action: actions.upgradeWorkspace, scope: target.scope }),
    ]);
  });

  it('hands the handler the verified principal and the workspace, and events it appends name the principal', async () => {
    const { bus, events } = setUp({ allowed: [actions.upgradeWorkspace] });
    const target = ws();
    const seen = await bus.execute(upgrade(target), 'good', { workspace: 'ws1' }, (ctx, caller) => {
      ctx.emit('test-1', 'any', [{ type: 'ClockAdvanced', data: { byMs: 1, to: 'then' } }]);
      return { principal: caller.principal.principal, workspace: caller.ws.workspace };
    });
    expect(seen).toEqual({ principal: 'alice', workspace: 'ws1' });
    expect(events().map((e) => [e.type, e.meta.principal])).toEqual([['ClockAdvanced', 'alice']]);
  });

  it('checks what a command requires besides its action first, then the action at each of its scopes', async () => {
    const { bus, decided } = setUp({ allowed: [actions.createResourceGroup, actions.defineRole] });
    const define = declareCommand({
      name: 'DefineRole',
      verb: 'defineRole',
      action: actions.defineRole,
      target: () => ({ scope: ['/subscriptions/a', '/subscriptions/b'] }),
      requires: () => [{ action: actions.createResourceGroup, scope: '/subscriptions/a' }],
    });
    expect(await codeOf(bus.execute(define, 'good', {}, () => undefined))).toBe('success');
    expect(decided).toEqual([
      `${actions.createResourceGroup} @ /subscriptions/a`,
      `${actions.defineRole} @ /subscriptions/a`,
      `${actions.defineRole} @ /subscriptions/b`,
    ]);
  });

  it('soft: a refusal is recorded as AuthorizationViolationRecorded and the command goes on; off: RBAC is not asked', async () => {
    const soft = setUp({ mode: 'soft' });
    expect(await codeOf(soft.bus.execute(upgrade(ws()), 'good', { workspace: 'ws1' }, () => undefined))).toBe('success');
    expect(soft.events().map((e) => [e.type, e.data.mode, e.data.action])).toEqual([['AuthorizationViolationRecorded', 'soft', actions.upgradeWorkspace]]);
    const off = setUp({ mode: 'off' });
    expect(await codeOf(off.bus.execute(upgrade(ws()), 'good', { workspace: 'ws1' }, () => undefined))).toBe('success');
    expect(off.decided).toEqual([]);
    expect(off.events()).toEqual([]);
  });

  it('S2.5: a command that goes through a revoked grant of the workspace identity is refused before its handler runs', async () => {
    const { bus, events } = setUp({ allowed: [actions.runExperiment] });
    const target = ws(['workspace']);
    const submit = declareCommand({
      name: 'SubmitRun',
      verb: 'submitRun',
      action: actions.runExperiment,
      target: () => ({ scope: target.scope, ws: target }),
      identity: ['storage', 'workspace'],
    });
    let ran = false;
    await expect(bus.execute(submit, 'good', {}, () => (ran = true))).rejects.toThrow(/workspace 'ws1' has no access to its workspace \(compute access\).*'submitRun'/);
    expect(ran).toBe(false);
    expect(events().map((e) => [e.data.command, e.data.code])).toEqual([['SubmitRun', 'ManagedIdentityAccessDenied']]);
  });

  it('authentication only: no RBAC asked, the handler gets the principal', async () => {
    const { bus, decided } = setUp();
    const createVm = declareCommand({ name: 'CreateVm', verb: 'createVm', authenticationOnly: true });
    expect(await bus.execute(createVm, 'good', {}, (_ctx, { principal }) => principal.principal)).toBe('alice');
    expect(decided).toEqual([]);
  });
});
