import { describe, expect, it } from 'vitest';
import { SimError } from '../errors/sim-error';
import { authorize } from './authorize';
import { actionMatches, BUILT_IN_ROLES, validateCustomRole, type RoleDefinition } from './role-definitions';
import { isWithinScope, scopeKind, workspaceScope } from './scope';

const ws1 = workspaceScope('sub-1', 'rg1', 'ws1');
const ws2 = workspaceScope('sub-1', 'rg2', 'ws2');

describe('actionMatches', () => {
  it('treats * as any run of characters, case-insensitively', () => {
    expect(actionMatches('*/read', 'Microsoft.MachineLearningServices/workspaces/models/read')).toBe(true);
    expect(actionMatches('Microsoft.Authorization/*/Write', 'microsoft.authorization/roleAssignments/write')).toBe(true);
    expect(actionMatches('*/read', 'Microsoft.MachineLearningServices/workspaces/models/write')).toBe(false);
  });
});

describe('scopes', () => {
  it('inherit downward only', () => {
    expect(isWithinScope(ws1, '/subscriptions/sub-1')).toBe(true);
    expect(isWithinScope('/subscriptions/sub-1', ws1)).toBe(false);
    expect(isWithinScope('/subscriptions/sub-10', '/subscriptions/sub-1')).toBe(false);
    expect(scopeKind(ws1)).toBe('workspace');
    expect(scopeKind(`${ws1}/computes/cpu`)).toBe('compute');
    expect(scopeKind('/providers/foo')).toBeUndefined();
  });
});

describe('authorize', () => {
  const roles = (n: string) => BUILT_IN_ROLES[n as 'Owner'];

  it('says when the principal has no assignment at or above the scope', () => {
    const d = authorize([{ principalId: 'p', role: 'Owner', scope: ws2 }], roles, 'p', 'x/write', ws1);
    expect(d).toEqual({ allowed: false, why: expect.stringContaining('no role assignment'), evaluation: expect.objectContaining({ outcome: 'noAssignment' }) });
  });

  it('names the NotAction that excludes an action', () => {
    const d = authorize([{ principalId: 'p', role: 'Contributor', scope: '/subscriptions/sub-1' }], roles, 'p', 'Microsoft.Authorization/roleAssignments/write', ws1);
    expect(d.allowed).toBe(false);
    expect(!d.allowed && d.why).toContain("NotAction 'Microsoft.Authorization/*/Write'");
  });

  it('allows through an assignment above the scope', () => {
    const d = authorize([{ principalId: 'p', role: 'Reader', scope: '/subscriptions/sub-1' }], roles, 'p', 'Microsoft.MachineLearningServices/workspaces/read', ws1);
    expect(d).toEqual({ allowed: true, via: { role: 'Reader', scope: '/subscriptions/sub-1' }, evaluation: expect.objectContaining({ outcome: 'granted', decidedBy: 0 }) });
  });
});

describe('custom roles (S2.3)', () => {
  it('accept workspace and compute actions with wildcards', () => {
    const role = validateCustomRole({
      name: 'Data Scientist',
      actions: ['Microsoft.MachineLearningServices/workspaces/*/read', 'Microsoft.MachineLearningServices/workspaces/computes/*'],
      notActions: ['Microsoft.MachineLearningServices/workspaces/computes/delete'],
      assignableScopes: [ws1],
    });
    const lookup = (n: string): RoleDefinition | undefined => (n === role.name ? role : undefined);
    const a = [{ principalId: 'p', role: role.name, scope: ws1 }];
    expect(authorize(a, lookup, 'p', 'Microsoft.MachineLearningServices/workspaces/computes/write', ws1).allowed).toBe(true);
    expect(authorize(a, lookup, 'p', 'Microsoft.MachineLearningServices/workspaces/computes/delete', ws1).allowed).toBe(false);
  });

  it.each([
    ['*', 'not allowed'],
    ['Microsoft.Storage/storageAccounts/*', 'not allowed'],
    ['Microsoft.Authorization/roleAssignments/write', 'not allowed'],
  ])('refuse action %s', (action, message) => {
    expect(() => validateCustomRole({ name: 'X', actions: [action], assignableScopes: [ws1] })).toThrow(message);
  });

  it('refuse a scope that is not a subscription, group or workspace, and a built-in name', () => {
    expect(() => validateCustomRole({ name: 'X', actions: ['Microsoft.MachineLearningServices/workspaces/read'], assignableScopes: ['/'] })).toThrow(SimError);
    expect(() => validateCustomRole({ name: 'Owner', actions: ['Microsoft.MachineLearningServices/workspaces/read'], assignableScopes: [ws1] })).toThrow(
      /built-in/,
    );
  });
});
