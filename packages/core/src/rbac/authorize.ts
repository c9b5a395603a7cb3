import { actionMatches, type RoleDefinition } from './role-definitions';
import { isWithinScope } from './scope';

export type RoleAssignment = {
  principalId: string;
  role: string;
  scope: string;
};

export type AuthorizationDecision =
  | { allowed: true; via: { role: string; scope: string } }
  | { allowed: false; why: string };

/**
 * Pure RBAC evaluation (S2.1–S2.4): allowed when some role assigned to the principal at the
 * target scope or above has an Action matching and no NotAction excluding it.
 * A denial explains itself: no assignment at all, no role granting the action, or a
 * NotAction excluding it — the lesson is in the reason.
 */
export const authorize = (
  assignments: readonly RoleAssignment[],
  roles: (name: string) => RoleDefinition | undefined,
  principalId: string,
  action: string,
  scope: string,
): AuthorizationDecision => {
  const applicable = assignments.filter((a) => a.principalId === principalId && isWithinScope(scope, a.scope));
  if (applicable.length === 0) {
    return { allowed: false, why: 'the principal has no role assignment at this scope or above it' };
  }
  const exclusions: string[] = [];
  for (const assignment of applicable) {
    const role = roles(assignment.role);
    if (!role) continue;
    if (!role.actions.some((p) => actionMatches(p, action))) continue;
    const excludedBy = role.notActions.find((p) => actionMatches(p, action));
    if (excludedBy) {
      exclusions.push(`role '${role.name}' at '${assignment.scope}' excludes it by NotAction '${excludedBy}'`);
      continue;
    }
    return { allowed: true, via: { role: role.name, scope: assignment.scope } };
  }
  if (exclusions.length > 0) return { allowed: false, why: exclusions.join('; ') };
  const held = applicable.map((a) => `${a.role} at '${a.scope}'`).join(', ');
  return { allowed: false, why: `no assigned role grants the action (holds: ${held})` };
};
