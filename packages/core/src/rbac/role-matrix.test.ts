import { describe, expect, it } from 'vitest';
import { authorize } from './authorize';
import { S2_2_OPERATIONS, type Role } from './operations';
import { BUILT_IN_ROLES } from './role-definitions';
import { resourceGroupScope, workspaceScope } from './scope';

/**
 * S2.2 holds exactly: every row of the table × Owner, Contributor, Reader, evaluated against
 * the built-in role definitions, with the role assigned at the resource group (as a team
 * would) so that inheritance down to the workspace is part of what is checked.
 */
const ROLES: Role[] = ['Owner', 'Contributor', 'Reader'];
const rg = resourceGroupScope('sub-1', 'rg1');
const ws = workspaceScope('sub-1', 'rg1', 'ws1');
const rows = S2_2_OPERATIONS.flatMap((row) => ROLES.map((role) => [row.operation, row.action, role, row.allowed.includes(role), row.scopeLevel] as const));

describe('S2.2 role matrix', () => {
  it('covers all thirteen rows of the table', () => {
    expect(new Set(S2_2_OPERATIONS.map((r) => r.operation)).size).toBe(13);
  });

  it.each(rows)('%s (%s) as %s: allowed=%s', (_op, action, role, allowed, level) => {
    const decision = authorize([{ principalId: 'p', role, scope: rg }], (n) => BUILT_IN_ROLES[n as Role], 'p', action, level === 'workspace' ? ws : rg);
    expect(decision.allowed).toBe(allowed);
    if (!decision.allowed) expect(decision.why).toMatch(/NotAction|no assigned role grants/);
  });
});
