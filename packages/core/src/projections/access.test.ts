import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { accessProjection, assignmentsOf, type AccessState } from './access';
import { applyProjection } from './projection';

/** The RBAC read model every authorization reads (S2): grants appear and disappear with their events, per principal. */
let n = 0;
const ev = (type: string, data: Record<string, unknown>): StoredEvent =>
  ({ position: ++n, stream: 's', version: n, type, data, meta: { at: 'x', correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;
const fold = (events: StoredEvent[]): AccessState => events.reduce((s, e) => applyProjection(accessProjection, s, e), accessProjection.initial());
const ws = '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1';

describe('access read model', () => {
  it('indexes role assignments by principal and removes exactly the one named', () => {
    const s = fold([
      ev('RoleAssigned', { assignmentId: 'a1', principalId: 'p1', role: 'Reader', scope: ws }),
      ev('RoleAssigned', { assignmentId: 'a2', principalId: 'p1', role: 'Contributor', scope: ws }),
      ev('RoleAssigned', { assignmentId: 'a3', principalId: 'p2', role: 'Owner', scope: ws }),
      ev('RoleAssignmentRemoved', { assignmentId: 'a1', principalId: 'p1' }),
      ev('RoleAssignmentRemoved', { assignmentId: 'a9', principalId: 'p3' }),
    ]);
    expect(assignmentsOf(s, 'p1')).toEqual([{ assignmentId: 'a2', principalId: 'p1', role: 'Contributor', scope: ws }]);
    expect(assignmentsOf(s, 'p2').map((a) => a.role)).toEqual(['Owner']);
    expect(assignmentsOf(s, 'p3')).toEqual([]);
  });

  it("a managed identity's grant is revoked by identity and target, leaving its other grants", () => {
    const s = fold([
      ev('IdentityAccessGranted', { principalId: 'mi', target: 'keyVault', role: 'Key Vault Secrets Officer', scope: `${ws}/kv` }),
      ev('IdentityAccessGranted', { principalId: 'mi', target: 'storage', role: 'Storage Blob Data Contributor', scope: `${ws}/st` }),
      ev('IdentityAccessRevoked', { principalId: 'mi', target: 'keyVault' }),
    ]);
    expect(assignmentsOf(s, 'mi')).toEqual([{ assignmentId: 'mi:storage', principalId: 'mi', role: 'Storage Blob Data Contributor', scope: `${ws}/st` }]);
    const again = fold([ev('IdentityAccessGranted', { principalId: 'mi', target: 'keyVault', role: 'r', scope: 'x' }), ev('IdentityAccessRevoked', { principalId: 'mi', target: 'storage' })]);
    expect(assignmentsOf(again, 'mi').map((a) => a.assignmentId)).toEqual(['mi:keyVault']);
  });

  it('keeps subscriptions, resource groups (by lower-cased scope), custom roles and support applications; counts violations and rejections', () => {
    const s = fold([
      ev('SubscriptionCreated', { subscription: 'sub-1', scope: '/subscriptions/sub-1' }),
      ev('ResourceGroupCreated', { subscription: 'sub-1', resourceGroup: 'RG1', scope: '/subscriptions/sub-1/resourceGroups/RG1' }),
      ev('RoleDefined', { role: 'Runner', actions: ['a/*'], notActions: ['a/delete'], assignableScopes: [ws] }),
      ev('SupportApplicationCreated', { subscription: 'sub-1', region: 'eastus', application: 'app', principalId: 'sp' }),
      ev('AuthorizationViolationRecorded', {}),
      ev('CommandRejected', {}),
      ev('CommandRejected', {}),
      ev('SomethingElse', {}),
    ]);
    expect(s.subscriptions).toEqual({ 'sub-1': { scope: '/subscriptions/sub-1' } });
    expect(s.resourceGroups).toEqual({ '/subscriptions/sub-1/resourcegroups/rg1': { subscription: 'sub-1', resourceGroup: 'RG1', scope: '/subscriptions/sub-1/resourceGroups/RG1' } });
    expect(s.customRoles.Runner).toEqual({ name: 'Runner', builtIn: false, actions: ['a/*'], notActions: ['a/delete'], assignableScopes: [ws] });
    expect(s.supportApplications).toEqual({ 'sub-1/eastus': { application: 'app', principalId: 'sp' } });
    expect([s.violations, s.rejections]).toEqual([1, 2]);
  });
});
