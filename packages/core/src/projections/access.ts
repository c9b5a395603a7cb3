import type { RoleAssignment } from '../rbac/authorize';
import type { RoleDefinition } from '../rbac/role-definitions';
import { defineProjection } from './projection';

/** ARM's view (S2): subscriptions, resource groups, custom roles and role assignments. */
export type AccessState = {
  subscriptions: Record<string, { scope: string }>;
  /** Keyed by resource-group scope, lower-cased. */
  resourceGroups: Record<string, { subscription: string; resourceGroup: string; scope: string }>;
  customRoles: Record<string, RoleDefinition>;
  /**
   * Role assignments by principal id: every check asks about one principal, so the index keeps
   * authorization and replay independent of how many assignments the directory holds.
   */
  assignmentsByPrincipal: Record<string, Array<RoleAssignment & { assignmentId: string }>>;
  /** S2.6: support applications by `subscription/region`. */
  supportApplications: Record<string, { application: string; principalId: string }>;
  violations: number;
  rejections: number;
};

const addAssignment = (s: AccessState, a: RoleAssignment & { assignmentId: string }): void => {
  (s.assignmentsByPrincipal[a.principalId] ??= []).push(a);
};

const removeAssignment = (s: AccessState, principalId: string, assignmentId: string): void => {
  const list = s.assignmentsByPrincipal[principalId];
  if (list) s.assignmentsByPrincipal[principalId] = list.filter((a) => a.assignmentId !== assignmentId);
};

/** The id of a managed-identity grant (S2.5): one per identity and target. */
const grantId = (principalId: string, target: string) => `${principalId}:${target}`;

/** The role assignments a principal holds, at any scope. */
export const assignmentsOf = (s: AccessState, principalId: string): ReadonlyArray<RoleAssignment & { assignmentId: string }> =>
  s.assignmentsByPrincipal[principalId] ?? [];

export const accessProjection = defineProjection<AccessState>({
  name: 'access',
  initial: () => ({ subscriptions: {}, resourceGroups: {}, customRoles: {}, assignmentsByPrincipal: {}, supportApplications: {}, violations: 0, rejections: 0 }),
  on: {
    SubscriptionCreated: (s, e) => {
      s.subscriptions[e.data.subscription] = { scope: e.data.scope };
    },
    ResourceGroupCreated: (s, e) => {
      s.resourceGroups[e.data.scope.toLowerCase()] = { subscription: e.data.subscription, resourceGroup: e.data.resourceGroup, scope: e.data.scope };
    },
    RoleDefined: (s, e) => {
      s.customRoles[e.data.role] = {
        name: e.data.role,
        builtIn: false,
        actions: e.data.actions,
        notActions: e.data.notActions,
        assignableScopes: e.data.assignableScopes,
        ...(e.data.roleDefinitionId ? { roleDefinitionId: e.data.roleDefinitionId } : {}),
      };
    },
    RoleAssigned: (s, e) => addAssignment(s, { assignmentId: e.data.assignmentId, principalId: e.data.principalId, role: e.data.role, scope: e.data.scope }),
    IdentityAccessGranted: (s, e) =>
      addAssignment(s, { assignmentId: grantId(e.data.principalId, e.data.target), principalId: e.data.principalId, role: e.data.role, scope: e.data.scope }),
    IdentityAccessRevoked: (s, e) => removeAssignment(s, e.data.principalId, grantId(e.data.principalId, e.data.target)),
    RoleAssignmentRemoved: (s, e) => removeAssignment(s, e.data.principalId, e.data.assignmentId),
    SupportApplicationCreated: (s, e) => {
      s.supportApplications[`${e.data.subscription}/${e.data.region}`] = { application: e.data.application, principalId: e.data.principalId };
    },
    AuthorizationViolationRecorded: (s) => {
      s.violations++;
    },
    CommandRejected: (s) => {
      s.rejections++;
    },
  },
});
