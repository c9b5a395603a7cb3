import type { StoredEvent } from '../events/envelope';
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

export type ActivityLogState = { entries: ActivityLogEntry[]; scopesByWorkspaceId: Record<string, string> };

const record = (s: ActivityLogState, e: StoredEvent, operation: string, scope: string, status: 'Succeeded' | 'Failed', workspace?: string): void => {
  const entry: ActivityLogEntry = { operation, initiator: e.meta.principal ?? 'system', at: e.meta.at, status, scope };
  if (workspace) entry.workspace = workspace;
  s.entries.push(entry);
};

const scopeOf = (s: ActivityLogState, workspaceId: string): string => s.scopesByWorkspaceId[workspaceId] ?? '';

/**
 * The Azure activity log (S7.2): operation, initiator, timestamp, status — for ARM
 * (control-plane) writes only. Data-plane actions such as starting a training run or
 * registering a model are deliberately absent (S7.2 says they are not logged there).
 * Refused ARM calls appear as Failed, as Azure shows authorization failures.
 */
export const activityLogProjection = defineProjection<ActivityLogState>({
  name: 'activityLog',
  initial: () => ({ entries: [], scopesByWorkspaceId: {} }),
  on: {
    WorkspaceCreationRequested: (s, e) => {
      s.scopesByWorkspaceId[e.data.workspaceId] = e.data.scope;
    },
    WorkspaceCreated: (s, e) => record(s, e, actions.createWorkspace, e.data.scope, 'Succeeded', e.data.workspace),
    WorkspaceCreationFailed: (s, e) => record(s, e, actions.createWorkspace, scopeOf(s, e.data.workspaceId), 'Failed', e.data.workspace),
    ResourceGroupCreated: (s, e) => {
      if (e.meta.principal) record(s, e, actions.createResourceGroup, e.data.scope, 'Succeeded');
    },
    // Assignments the platform makes itself (subscription owners at set-up, S2.6 support apps) are not user activity.
    RoleAssigned: (s, e) => {
      if (e.meta.principal) record(s, e, actions.shareWorkspace, e.data.scope, 'Succeeded');
    },
    RoleDefined: (s, e) => record(s, e, actions.defineRole, e.data.assignableScopes[0] ?? '', 'Succeeded'),
    WorkspaceDeleted: (s, e) => record(s, e, actions.deleteWorkspace, scopeOf(s, e.data.workspaceId), 'Succeeded', e.data.workspace),
    WorkspaceUpgraded: (s, e) => record(s, e, actions.upgradeWorkspace, scopeOf(s, e.data.workspaceId), 'Succeeded', e.data.workspace),
    IdentityAccessRevoked: (s, e) => record(s, e, actions.revokeIdentityAccess, e.data.scope, 'Succeeded', e.data.workspace),
    KeysResynced: (s, e) => record(s, e, actions.resyncKeys, scopeOf(s, e.data.workspaceId), 'Succeeded', e.data.workspace),
    StorageKeyRegenerated: (s, e) => record(s, e, actions.regenerateStorageKey, scopeOf(s, e.data.workspaceId), 'Succeeded', e.data.workspace),
    DatastoreAttached: (s, e) => record(s, e, actions.attachDatastore, scopeOf(s, e.data.workspaceId), 'Succeeded', e.data.workspace),
    CommandRejected: (s, e) => {
      if (e.data.action && e.data.scope) record(s, e, e.data.action, e.data.scope, 'Failed');
    },
  },
});
