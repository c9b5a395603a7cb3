import { actionMatches, type RoleDefinition } from './role-definitions';
import { isWithinScope } from './scope';

export type RoleAssignment = {
  principalId: string;
  role: string;
  scope: string;
};

/** One role assignment of the principal, as the evaluation saw it. */
export type ConsideredAssignment = {
  role: string;
  scope: string;
  /** The assignment's scope is the target scope or above it, so the assignment applies. */
  applies: boolean;
  /** One of the role's Actions matches the action (false for a role the platform does not know). */
  grants: boolean;
  /** The role's NotAction that takes the action out again, when one does. */
  excludedBy?: string;
};

/**
 * How a decision was reached (S2.2-S2.4), for the reader of a refusal: every role assignment the
 * principal holds, whether it applies at the scope, grants the action or excludes it; and which
 * one decided (`decidedBy`, an index into `considered`), or why none could.
 */
export type AuthorizationEvaluation = {
  action: string;
  scope: string;
  considered: ConsideredAssignment[];
  decidedBy?: number;
  outcome: 'granted' | 'noAssignment' | 'notGranted' | 'excludedByNotAction';
};

export type AuthorizationDecision =
  | { allowed: true; via: { role: string; scope: string }; evaluation?: AuthorizationEvaluation }
  | { allowed: false; why: string; evaluation?: AuthorizationEvaluation };

/**
 * Pure RBAC evaluation (S2.1–S2.4): allowed when some role assigned to the principal at the
 * target scope or above has an Action matching and no NotAction excluding it.
 * A denial explains itself: no assignment at all, no role granting the action, or a
 * NotAction excluding it — the lesson is in the reason, and in the evaluation beside it.
 */
export const authorize = (
  assignments: readonly RoleAssignment[],
  roles: (name: string) => RoleDefinition | undefined,
  principalId: string,
  action: string,
  scope: string,
): AuthorizationDecision => {
  const considered: ConsideredAssignment[] = [];
  let decidedBy: number | undefined;
  let firstExclusion: number | undefined;
  for (const assignment of assignments) {
    if (assignment.principalId !== principalId) continue;
    const applies = isWithinScope(scope, assignment.scope);
    const role = roles(assignment.role);
    const grants = role !== undefined && role.actions.some((p) => actionMatches(p, action));
    const excludedBy = grants ? role.notActions.find((p) => actionMatches(p, action)) : undefined;
    considered.push({ role: role?.name ?? assignment.role, scope: assignment.scope, applies, grants, ...(excludedBy ? { excludedBy } : {}) });
    if (!applies || !grants) continue;
    if (excludedBy) firstExclusion ??= considered.length - 1;
    else decidedBy ??= considered.length - 1;
  }
  const evaluation = (outcome: AuthorizationEvaluation['outcome'], by?: number): AuthorizationEvaluation => ({
    action,
    scope,
    considered,
    ...(by !== undefined ? { decidedBy: by } : {}),
    outcome,
  });
  if (decidedBy !== undefined) {
    const via = considered[decidedBy]!;
    return { allowed: true, via: { role: via.role, scope: via.scope }, evaluation: evaluation('granted', decidedBy) };
  }
  const applicable = considered.filter((c) => c.applies);
  if (applicable.length === 0) {
    return { allowed: false, why: 'the principal has no role assignment at this scope or above it', evaluation: evaluation('noAssignment') };
  }
  if (firstExclusion !== undefined) {
    const why = applicable
      .filter((c) => c.excludedBy)
      .map((c) => `role '${c.role}' at '${c.scope}' excludes it by NotAction '${c.excludedBy}'`)
      .join('; ');
    return { allowed: false, why, evaluation: evaluation('excludedByNotAction', firstExclusion) };
  }
  const held = applicable.map((c) => `${c.role} at '${c.scope}'`).join(', ');
  return { allowed: false, why: `no assigned role grants the action (holds: ${held})`, evaluation: evaluation('notGranted') };
};
