import type { AmlEvent } from '../events/catalog';
import { actions } from '../rbac/operations';
import { defineProjection } from './projection';

export type ActivityLogEntry = {
  /** ARM operation name, e.g. `Microsoft.MachineLearningServices/workspaces/write`. */
  operation: string;
  /** Who initiated it (S7.2). */
  initiator: string;
  at: string;
  status: 'Succeeded' | 'Failed';
  scope: string;
  /** The workspace the entry belongs to, when it belongs to one. */
  workspace?: string;
};

export type ActivityLogState = { entries: ActivityLogEntry[]; scopesByWorkspaceId: Record<string, { workspace: string; scope: string }> };

/**
 * The Azure activity log (S7.2): operation, initiator, timestamp, status — for ARM
 * (control-plane) writes only. Data-plane actions such as starting a training run or
 * registering a model are deliberately absent (S7.2 says they are not logged there).
 * Refused ARM calls appear as Failed, as Azure shows authorization failures.
 */
export const activityLogProjection = defineProjection<ActivityLogState>({
  name: 'activityLog',
  initial: () => ({ entries: [], scopesByWorkspaceId: {} }),
  apply: (s, raw) => {
    const e = raw as AmlEvent;
    const initiator = e.meta.principal ?? 'system';
    const push = (operation: string, scope: string, status: 'Succeeded' | 'Failed', workspace?: string) =>
      s.entries.push({ operation, initiator, at: e.meta.at, status, scope, ...(workspace ? { workspace } : {}) });
    const wsOf = (workspaceId: string) => s.scopesByWorkspaceId[workspaceId];
    switch (e.type) {
      case 'WorkspaceCreationRequested':
        s.scopesByWorkspaceId[e.data.workspaceId] = { workspace: e.data.workspace, scope: e.data.scope };
        break;
      case 'WorkspaceCreated':
        push(actions.createWorkspace, e.data.scope, 'Succeeded', e.data.workspace);
        break;
      case 'WorkspaceCreationFailed':
        push(actions.createWorkspace, wsOf(e.data.workspaceId)?.scope ?? '', 'Failed', e.data.workspace);
        break;
      case 'ResourceGroupCreated':
        if (e.meta.principal) push(actions.createResourceGroup, e.data.scope, 'Succeeded');
        break;
      case 'RoleAssigned':
        // Assignments made by the platform itself (subscription owners at set-up, S2.6 support apps) are not user activity.
        if (e.meta.principal) push(actions.shareWorkspace, e.data.scope, 'Succeeded');
        break;
      case 'RoleDefined':
        push(actions.defineRole, e.data.assignableScopes[0] ?? '', 'Succeeded');
        break;
      case 'WorkspaceUpgraded':
        push(actions.upgradeWorkspace, wsOf(e.data.workspaceId)?.scope ?? '', 'Succeeded', e.data.workspace);
        break;
      case 'IdentityAccessRevoked':
        push(actions.revokeIdentityAccess, e.data.scope, 'Succeeded', e.data.workspace);
        break;
      case 'KeysResynced':
        push(actions.resyncKeys, wsOf(e.data.workspaceId)?.scope ?? '', 'Succeeded', e.data.workspace);
        break;
      case 'StorageKeyRegenerated':
        push(actions.regenerateStorageKey, wsOf(e.data.workspaceId)?.scope ?? '', 'Succeeded', e.data.workspace);
        break;
      case 'DatastoreAttached':
        push(actions.attachDatastore, wsOf(e.data.workspaceId)?.scope ?? '', 'Succeeded', e.data.workspace);
        break;
      case 'CommandRejected':
        if (e.data.action && e.data.scope) push(e.data.action, e.data.scope, 'Failed');
        break;
    }
    return s;
  },
});
