import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { actions } from '../rbac/operations';
import { activityLogProjection } from './activity-log';
import { directoryProjection } from './directory';
import { modelsProjection } from './models';
import { applyProjection, type Projection } from './projection';
import { workspaceMetricsProjection } from './workspace-metrics';

/** The activity log (S7.2), workspace metrics (S7.1), the directory (S1.1) and the model registry (S8.5) read models. */
let n = 0;
const ev = (type: string, data: Record<string, unknown>, principal?: string, at = `2025-01-01T09:00:0${n % 10}.000Z`): StoredEvent =>
  ({ position: ++n, stream: 's', version: n, type, data, meta: { at, correlationId: 'c', causationId: 'c', session: 's', ...(principal ? { principal } : {}) } }) as StoredEvent;
const fold = <S>(p: Projection<S>, events: StoredEvent[]): S => events.reduce((s, e) => applyProjection(p, s, e), p.initial());
const ws = { workspaceId: 'w1', workspace: 'ws1' };
const scope = '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1';

describe('activity log (S7.2)', () => {
  it('records ARM writes with operation, initiator, time, status, scope and workspace; data-plane facts are absent', () => {
    const events = [
      ev('WorkspaceCreationRequested', { ...ws, scope }, 'alice'),
      ev('WorkspaceCreated', { ...ws, scope }, 'alice', '2025-01-01T09:00:01.000Z'),
      ev('WorkspaceUpgraded', ws, 'alice', '2025-01-01T09:00:02.000Z'),
      ev('KeysResynced', ws, 'bob', '2025-01-01T09:00:03.000Z'),
      ev('StorageKeyRegenerated', ws, 'bob', '2025-01-01T09:00:04.000Z'),
      ev('DatastoreAttached', ws, 'bob', '2025-01-01T09:00:05.000Z'),
      ev('IdentityAccessRevoked', { ...ws, scope: `${scope}/kv` }, 'alice', '2025-01-01T09:00:06.000Z'),
      ev('RunSubmitted', { ...ws, runId: 'r1' }, 'alice'),
      ev('ModelRegistered', { ...ws, modelId: 'm1' }, 'alice'),
    ];
    const entry = (operation: string, initiator: string, second: number, entryScope = scope) => ({ operation, initiator, at: `2025-01-01T09:00:0${second}.000Z`, status: 'Succeeded', scope: entryScope, workspace: 'ws1' });
    expect(fold(activityLogProjection, events).entries).toEqual([
      entry(actions.createWorkspace, 'alice', 1),
      entry(actions.upgradeWorkspace, 'alice', 2),
      entry(actions.resyncKeys, 'bob', 3),
      entry(actions.regenerateStorageKey, 'bob', 4),
      entry(actions.attachDatastore, 'bob', 5),
      entry(actions.revokeIdentityAccess, 'alice', 6, `${scope}/kv`),
    ]);
  });

  it('a failed creation is Failed at the requested scope; an unknown workspace has no scope; the system is the initiator without a principal', () => {
    const entries = fold(activityLogProjection, [
      ev('WorkspaceCreationRequested', { ...ws, scope }, 'alice'),
      ev('WorkspaceCreationFailed', ws, 'alice', '2025-01-01T09:00:07.000Z'),
      ev('WorkspaceUpgraded', { workspaceId: 'w9', workspace: 'ws9' }, undefined, '2025-01-01T09:00:08.000Z'),
    ]).entries;
    expect(entries).toEqual([
      { operation: actions.createWorkspace, initiator: 'alice', at: '2025-01-01T09:00:07.000Z', status: 'Failed', scope, workspace: 'ws1' },
      { operation: actions.upgradeWorkspace, initiator: 'system', at: '2025-01-01T09:00:08.000Z', status: 'Succeeded', scope: '', workspace: 'ws9' },
    ]);
  });

  it("the platform's own resource groups and role assignments are not user activity; a user's are", () => {
    const entries = fold(activityLogProjection, [
      ev('ResourceGroupCreated', { scope: '/subscriptions/sub-1/resourceGroups/platform' }),
      ev('RoleAssigned', { scope }),
      ev('ResourceGroupCreated', { scope: '/subscriptions/sub-1/resourceGroups/rg1' }, 'alice', '2025-01-01T09:00:01.000Z'),
      ev('RoleAssigned', { scope }, 'alice', '2025-01-01T09:00:02.000Z'),
      ev('RoleDefined', { assignableScopes: [scope, '/x'] }, 'alice', '2025-01-01T09:00:03.000Z'),
      ev('RoleDefined', { assignableScopes: [] }, 'alice', '2025-01-01T09:00:04.000Z'),
    ]).entries;
    expect(entries.map((e) => [e.operation, e.scope, 'workspace' in e])).toEqual([
      [actions.createResourceGroup, '/subscriptions/sub-1/resourceGroups/rg1', false],
      [actions.shareWorkspace, scope, false],
      [actions.defineRole, scope, false],
      [actions.defineRole, '', false],
    ]);
  });

  it('a refused ARM call is Failed; a rejection without an action or scope is not an ARM call', () => {
    const entries = fold(activityLogProjection, [
      ev('CommandRejected', { action: actions.shareWorkspace, scope }, 'bob', '2025-01-01T09:00:09.000Z'),
      ev('CommandRejected', { action: actions.shareWorkspace }, 'bob'),
      ev('CommandRejected', { scope }, 'bob'),
    ]).entries;
    expect(entries).toEqual([{ operation: actions.shareWorkspace, initiator: 'bob', at: '2025-01-01T09:00:09.000Z', status: 'Failed', scope }]);
  });
});

describe('workspace metrics (S7.1)', () => {
  it('counts runs, deployments and registrations of known workspaces only', () => {
    const s = fold(workspaceMetricsProjection, [
      ev('WorkspaceCreated', ws),
      ev('RunSubmitted', ws),
      ev('RunSubmitted', ws),
      ev('ModelRegistered', ws),
      ev('WebserviceDeploymentRequested', ws),
      ev('RunSubmitted', { workspaceId: 'w9' }),
      ev('ModelRegistered', { workspaceId: 'w9' }),
      ev('WebserviceDeploymentRequested', { workspaceId: 'w9' }),
    ]);
    expect(s).toEqual({ w1: { runs: 2, deployments: 1, registrations: 1 } });
  });
});

describe('directory (S1.1)', () => {
  it('keeps the tenant and its MFA policy, principals by name and by id, and counts sign-ins and tokens', () => {
    const s = fold(directoryProjection, [
      ev('TenantCreated', { tenantId: 't1', issuer: 'https://sts/t1/', mfa: 'required' }),
      ev('PrincipalRegistered', { principal: 'alice', principalId: 'p1', kind: 'user' }),
      ev('PrincipalRegistered', { principal: 'ci', principalId: 'p2', kind: 'servicePrincipal', appId: 'app-1' }),
      ev('SignInSucceeded', {}),
      ev('SignInSucceeded', {}),
      ev('SignInFailed', {}),
      ev('ArmTokenIssued', {}),
    ]);
    const alice = { principal: 'alice', principalId: 'p1', kind: 'user' };
    const ci = { principal: 'ci', principalId: 'p2', kind: 'servicePrincipal', appId: 'app-1' };
    // A service principal's client id finds it (the token endpoint's client_id).
    expect(s).toEqual({ tenantId: 't1', issuer: 'https://sts/t1/', mfa: 'required', byName: { alice, ci }, byId: { p1: alice, p2: ci }, byAppId: { 'app-1': ci }, signIns: 2, failedSignIns: 1, tokensIssued: 1 });
    expect(directoryProjection.initial().mfa).toBe('optional');
  });
});

describe('model registry (S8.5)', () => {
  it('keeps every version by workspace and name, oldest first, with when it was registered', () => {
    const reg = (model: string, version: number, at: string) => ev('ModelRegistered', { ...ws, modelId: `${model}:${version}`, model, version, files: [{ path: 'm.json', bytes: 2, sha256: 'x' }], tags: { v: String(version) } }, 'alice', at);
    const s = fold(modelsProjection, [reg('sentiment', 1, '2025-01-01T09:00:01.000Z'), reg('digits', 1, '2025-01-01T09:00:02.000Z'), reg('sentiment', 2, '2025-01-01T09:00:03.000Z')]);
    expect(Object.keys(s.w1!)).toEqual(['sentiment', 'digits']);
    expect(s.w1!.sentiment!.map((m) => [m.modelId, m.version, m.registeredAt, m.tags.v])).toEqual([
      ['sentiment:1', 1, '2025-01-01T09:00:01.000Z', '1'],
      ['sentiment:2', 2, '2025-01-01T09:00:03.000Z', '2'],
    ]);
    expect(s.w1!.digits![0]).toEqual({ modelId: 'digits:1', model: 'digits', version: 1, files: [{ path: 'm.json', bytes: 2, sha256: 'x' }], tags: { v: '1' }, registeredAt: '2025-01-01T09:00:02.000Z' });
  });
});
