import { describe, expect, it } from 'vitest';
import { SimError } from '../errors/sim-error';
import { requiredIdentityGrants } from '../workspace/identity-grants';
import { authorize } from './authorize';
import { actionMatches, BUILT_IN_ROLES, validateCustomRole, type RoleDefinition } from './role-definitions';
import { computeScope, resourceGroupScope, subscriptionScope, workspaceScope } from './scope';

/** Custom roles (S2.3), authorization's reasons (S2.1) and a workspace identity's grants (S2.5). */
const P = 'Microsoft.MachineLearningServices/workspaces';
const ws = workspaceScope('sub-1', 'rg1', 'ws1');
const refusal = (fn: () => unknown): SimError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error('expected a refusal');
};
const role = (overrides: Partial<Parameters<typeof validateCustomRole>[0]> = {}) => ({ name: 'Runner', actions: [`${P}/experiments/runs/*`], assignableScopes: [ws], ...overrides });

describe('custom roles (S2.3)', () => {
  it('returns its own copy of a valid definition, with no NotActions by default', () => {
    const input = role();
    const def = validateCustomRole(input);
    expect(def).toEqual({ name: 'Runner', builtIn: false, actions: [`${P}/experiments/runs/*`], notActions: [], assignableScopes: [ws] });
    (input.actions as string[]).push(`${P}/delete`);
    expect(def.actions).toHaveLength(1);
    expect(validateCustomRole(role({ notActions: [`${P}/delete`] })).notActions).toEqual([`${P}/delete`]);
  });

  it.each(['Owner', 'Contributor', 'Reader'])('refuses the built-in name %s as a Conflict', (name) => {
    const err = refusal(() => validateCustomRole(role({ name })));
    expect(err.code).toBe('Conflict');
    expect(err.details).toEqual({ role: name });
  });

  it('refuses a role with no actions', () => {
    const err = refusal(() => validateCustomRole(role({ actions: [] })));
    expect([err.code, err.details]).toEqual(['BadRequest', { role: 'Runner' }]);
    expect(err.message).toContain('grants no actions');
  });

  it.each([
    ['another provider', 'Microsoft.Storage/storageAccounts/read'],
    ['everything', '*'],
    ['a name that only starts like the provider', `${P}Evil/read`],
  ])('refuses an action of %s, in actions and in notActions', (_, action) => {
    const err = refusal(() => validateCustomRole(role({ actions: [action] })));
    expect([err.code, err.details]).toEqual(['BadRequest', { role: 'Runner', action }]);
    expect(err.message).toContain(`action '${action}' is not allowed`);
    expect(refusal(() => validateCustomRole(role({ notActions: [action] }))).details).toEqual({ role: 'Runner', action });
  });

  it('accepts the provider itself and anything under it, in any case', () => {
    expect(validateCustomRole(role({ actions: [P, `${P.toUpperCase()}/READ`] })).actions).toHaveLength(2);
  });

  it('refuses a role with no assignable scopes, or one that is not a subscription, resource group or workspace', () => {
    expect(refusal(() => validateCustomRole(role({ assignableScopes: [] }))).message).toContain('has no assignable scopes');
    for (const scope of [computeScope(ws, 'cpu'), '/tenants/t1', 'sub-1']) {
      const err = refusal(() => validateCustomRole(role({ assignableScopes: [ws, scope] })));
      expect([err.code, err.details]).toEqual(['BadRequest', { role: 'Runner', scope }]);
    }
    expect(validateCustomRole(role({ assignableScopes: [subscriptionScope('sub-1'), resourceGroupScope('sub-1', 'rg1'), ws] })).assignableScopes).toHaveLength(3);
  });

  it('action patterns: * spans any characters, matching is case-insensitive and anchored, other regex characters are literal', () => {
    expect(actionMatches(`${P}/*`, `${P}/computes/write`)).toBe(true);
    expect(actionMatches(`${P}/*/read`, `${P.toLowerCase()}/a/b/READ`)).toBe(true);
    expect(actionMatches(`${P}/read`, `${P}/read/more`)).toBe(false);
    expect(actionMatches(`${P}/read`, `x${P}/read`)).toBe(false);
    expect(actionMatches('a.b', 'axb')).toBe(false);
    expect(actionMatches('a.b', 'a.b')).toBe(true);
    expect(actionMatches('a.b', 'a.b')).toBe(true); // from the cache
  });
});

describe('authorize explains itself (S2.1)', () => {
  const runner: RoleDefinition = validateCustomRole(role({ actions: [`${P}/*`], notActions: [`${P}/delete`] }));
  const roles = (name: string) => (name === 'Runner' ? runner : (BUILT_IN_ROLES as Record<string, RoleDefinition>)[name]);

  it("ignores other principals' assignments and roles that no longer exist", () => {
    const decision = authorize(
      [
        { principalId: 'bob', role: 'Owner', scope: ws },
        { principalId: 'alice', role: 'Gone', scope: ws },
        { principalId: 'alice', role: 'Reader', scope: ws },
      ],
      roles,
      'alice',
      `${P}/write`,
      ws,
    );
    expect(decision).toEqual({ allowed: false, why: `no assigned role grants the action (holds: Gone at '${ws}', Reader at '${ws}')`, evaluation: expect.any(Object) });
    expect(authorize([{ principalId: 'bob', role: 'Owner', scope: ws }], roles, 'alice', `${P}/read`, ws)).toEqual({
      allowed: false,
      why: 'the principal has no role assignment at this scope or above it',
      evaluation: { action: `${P}/read`, scope: ws, considered: [], outcome: 'noAssignment' },
    });
  });

  it('names every NotAction that excluded the action, and allows via the first role that grants it', () => {
    const excluded = authorize([{ principalId: 'alice', role: 'Runner', scope: ws }, { principalId: 'alice', role: 'Runner', scope: resourceGroupScope('sub-1', 'rg1') }], roles, 'alice', `${P}/delete`, ws);
    expect(excluded).toEqual({
      allowed: false,
      why: `role 'Runner' at '${ws}' excludes it by NotAction '${P}/delete'; role 'Runner' at '${resourceGroupScope('sub-1', 'rg1')}' excludes it by NotAction '${P}/delete'`,
      evaluation: expect.any(Object),
    });
    expect(authorize([{ principalId: 'alice', role: 'Runner', scope: ws }, { principalId: 'alice', role: 'Owner', scope: ws }], roles, 'alice', `${P}/delete`, ws)).toEqual({
      allowed: true,
      via: { role: 'Owner', scope: ws },
      evaluation: expect.any(Object),
    });
  });

  it('records what it weighed: every assignment of the principal, whether it applies, grants or is excluded, and which decided', () => {
    const rg = resourceGroupScope('sub-1', 'rg1');
    const other = resourceGroupScope('sub-1', 'rg2');
    const assignments = [
      { principalId: 'alice', role: 'Reader', scope: other },
      { principalId: 'bob', role: 'Owner', scope: ws },
      { principalId: 'alice', role: 'Reader', scope: ws },
      { principalId: 'alice', role: 'Runner', scope: rg },
    ];
    const refused = authorize(assignments, roles, 'alice', `${P}/delete`, ws);
    expect(refused.evaluation).toEqual({
      action: `${P}/delete`,
      scope: ws,
      considered: [
        { role: 'Reader', scope: other, applies: false, grants: false },
        { role: 'Reader', scope: ws, applies: true, grants: false },
        { role: 'Runner', scope: rg, applies: true, grants: true, excludedBy: `${P}/delete` },
      ],
      decidedBy: 2,
      outcome: 'excludedByNotAction',
    });
    const granted = authorize(assignments, roles, 'alice', `${P}/read`, ws);
    expect(granted.evaluation).toMatchObject({ outcome: 'granted', decidedBy: 1 });
    expect(authorize(assignments, roles, 'alice', 'Microsoft.Storage/storageAccounts/write', ws).evaluation).toMatchObject({ outcome: 'notGranted' });
    expect(authorize(assignments, roles, 'alice', 'Microsoft.Storage/storageAccounts/write', ws).evaluation?.decidedBy).toBeUndefined();
  });
});

describe("a workspace identity's grants (S2.5)", () => {
  const base = { subscription: 'sub-1', resourceGroup: 'rg1', keyVaultResourceGroup: 'rg1', scope: ws, keyVault: 'kv1', storageAccount: 'st1', registry: 'cr1' };
  it('five grants, each at its exact scope, when the key vault shares the resource group (in any case)', () => {
    const rg = resourceGroupScope('sub-1', 'rg1');
    const expected = [
      { target: 'workspace', role: 'Contributor', scope: ws },
      { target: 'storage', role: 'Storage Blob Data Contributor', scope: `${rg}/providers/Microsoft.Storage/storageAccounts/st1` },
      { target: 'keyVault', role: 'Key Vault access policy: all keys, secrets, certificates', scope: `${rg}/providers/Microsoft.KeyVault/vaults/kv1` },
      { target: 'registry', role: 'Contributor', scope: `${rg}/providers/Microsoft.ContainerRegistry/registries/cr1` },
      { target: 'resourceGroup', role: 'Contributor', scope: rg },
    ];
    expect(requiredIdentityGrants(base)).toEqual(expected);
    expect(requiredIdentityGrants({ ...base, keyVaultResourceGroup: 'RG1' }).map((g) => g.target)).toEqual(expected.map((g) => g.target));
  });

  it('a sixth, Contributor on the key vault resource group, when it differs', () => {
    const grants = requiredIdentityGrants({ ...base, keyVaultResourceGroup: 'rg-kv' });
    expect(grants.at(-1)).toEqual({ target: 'keyVaultResourceGroup', role: 'Contributor', scope: resourceGroupScope('sub-1', 'rg-kv') });
    expect(grants.find((g) => g.target === 'keyVault')?.scope).toBe(`${resourceGroupScope('sub-1', 'rg-kv')}/providers/Microsoft.KeyVault/vaults/kv1`);
  });
});

describe('SimError', () => {
  it('carries code, status, retryable, details and cause; serializes without the cause', () => {
    const cause = new Error('disk');
    const e = new SimError('Conflict', 'taken', { status: 409, retryable: true, details: { a: 1 }, cause });
    expect([e.name, e.code, e.status, e.retryable, e.details, e.cause, e.message]).toEqual(['SimError', 'Conflict', 409, true, { a: 1 }, cause, 'taken']);
    expect(e.toJSON()).toEqual({ code: 'Conflict', message: 'taken', status: 409, details: { a: 1 } });
    const plain = new SimError('BadRequest', 'no');
    expect([plain.status, plain.retryable, plain.details, 'cause' in plain]).toEqual([400, false, {}, false]);
    expect(new SimError('X', 'y', { retryable: false }).retryable).toBe(false);
  });
});
