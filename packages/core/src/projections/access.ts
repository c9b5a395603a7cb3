import type { AmlEvent } from '../events/catalog';
import type { RoleAssignment } from '../rbac/authorize';
import type { RoleDefinition } from '../rbac/role-definitions';
import { defineProjection } from './projection';

/** ARM's view (S2): subscriptions, resource groups, custom roles and role assignments. */
export type AccessState = {
  subscriptions: Record<string, { scope: string }>;
  /** Keyed by resource-group scope, lower-cased. */
  resourceGroups: Record<string, { subscription: string; resourceGroup: string; scope: string }>;
  customRoles: Record<string, RoleDefinition>;
  assignments: Array<RoleAssignment & { assignmentId: string }>;
  /** S2.6: support applications by `subscription/region`. */
  supportApplications: Record<string, { application: string; principalId: string }>;
  violations: number;
  rejections: number;
};

export const accessProjection = defineProjection<AccessState>({
  name: 'access',
  initial: () => ({ subscriptions: {}, resourceGroups: {}, customRoles: {}, assignments: [], supportApplications: {}, violations: 0, rejections: 0 }),
  apply: (s, raw) => {
    const e = raw as AmlEvent;
    switch (e.type) {
      case 'SubscriptionCreated':
        s.subscriptions[e.data.subscription] = { scope: e.data.scope };
        break;
      case 'ResourceGroupCreated':
        s.resourceGroups[e.data.scope.toLowerCase()] = { subscription: e.data.subscription, resourceGroup: e.data.resourceGroup, scope: e.data.scope };
        break;
      case 'RoleDefined':
        s.customRoles[e.data.role] = {
          name: e.data.role,
          builtIn: false,
          actions: e.data.actions,
          notActions: e.data.notActions,
          assignableScopes: e.data.assignableScopes,
        };
        break;
      case 'RoleAssigned':
      case 'IdentityAccessGranted': {
        const assignmentId = e.type === 'RoleAssigned' ? e.data.assignmentId : `${e.data.principalId}:${e.data.target}`;
        s.assignments.push({ assignmentId, principalId: e.data.principalId, role: e.data.role, scope: e.data.scope });
        break;
      }
      case 'IdentityAccessRevoked': {
        const id = `${e.data.principalId}:${e.data.target}`;
        s.assignments = s.assignments.filter((a) => a.assignmentId !== id);
        break;
      }
      case 'RoleAssignmentRemoved':
        s.assignments = s.assignments.filter((a) => a.assignmentId !== e.data.assignmentId);
        break;
      case 'SupportApplicationCreated':
        s.supportApplications[`${e.data.subscription}/${e.data.region}`] = { application: e.data.application, principalId: e.data.principalId };
        break;
      case 'AuthorizationViolationRecorded':
        s.violations++;
        break;
      case 'CommandRejected':
        s.rejections++;
        break;
    }
    return s;
  },
});
