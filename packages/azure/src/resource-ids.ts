import { createHash } from 'node:crypto';
import { isBuiltInRoleName, type RoleDefinition, type WorkspaceRecord } from '@amlsim/core';

const ML = 'Microsoft.MachineLearningServices';

/** A workspace's ARM id, as ARM spells it. */
export const workspaceId = (ws: Pick<WorkspaceRecord, 'subscription' | 'resourceGroup' | 'workspace'>) =>
  `/subscriptions/${ws.subscription}/resourceGroups/${ws.resourceGroup}/providers/${ML}/workspaces/${ws.workspace}`;

export const storageAccountId = (ws: Pick<WorkspaceRecord, 'subscription' | 'resourceGroup' | 'storageAccount'>) =>
  `/subscriptions/${ws.subscription}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${ws.storageAccount}`;

export const keyVaultId = (ws: Pick<WorkspaceRecord, 'subscription' | 'keyVaultResourceGroup' | 'keyVault'>) =>
  `/subscriptions/${ws.subscription}/resourceGroups/${ws.keyVaultResourceGroup}/providers/Microsoft.KeyVault/vaults/${ws.keyVault}`;

export const registryId = (ws: Pick<WorkspaceRecord, 'subscription' | 'resourceGroup' | 'registry'>) =>
  `/subscriptions/${ws.subscription}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${ws.registry}`;

export const appInsightsId = (ws: Pick<WorkspaceRecord, 'subscription' | 'resourceGroup' | 'appInsights'>) =>
  `/subscriptions/${ws.subscription}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.Insights/components/${ws.appInsights}`;

/** The last segment of an ARM id (`.../computes/cpu` -> `cpu`), or the value itself when it has no slash. */
export const lastSegment = (id: string): string => id.replace(/\/+$/, '').split('/').pop() ?? id;

/** Azure's own GUIDs of the built-in roles, so that clients that look them up by id find them. */
export const BUILT_IN_ROLE_GUIDS: Readonly<Record<string, string>> = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
};

/** A GUID derived from a name (for custom roles an ARM client did not name by GUID). */
export const guidOf = (name: string): string => {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** A role definition's GUID: Azure's for a built-in, the one its client gave, or one derived from its name. */
export const roleGuid = (role: RoleDefinition): string =>
  isBuiltInRoleName(role.name) ? BUILT_IN_ROLE_GUIDS[role.name]! : (role.roleDefinitionId ?? guidOf(`role:${role.name}`));

/** The ARM id of a role definition (at subscription scope, as ARM returns them). */
export const roleDefinitionId = (subscription: string, role: RoleDefinition) =>
  `/subscriptions/${subscription}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid(role)}`;

/**
 * A scope of ARM as the platform names it: a subscription, a resource group, or a workspace.
 * Other scopes (a storage account, a vault) are refused with what is allowed.
 */
export type ParsedScope = { subscription: string } | { subscription: string; resourceGroup: string } | { workspace: string; subscription: string; resourceGroup: string };

export const parseScope = (scope: string): ParsedScope | undefined => {
  const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+)(?:\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/]+))?)?\/?$/i.exec(scope);
  if (!m) return undefined;
  const [, subscription, resourceGroup, workspace] = m;
  if (workspace) return { subscription: subscription!, resourceGroup: resourceGroup!, workspace };
  if (resourceGroup) return { subscription: subscription!, resourceGroup };
  return { subscription: subscription! };
};

/** A scope string in ARM's casing. */
export const scopeString = (s: ParsedScope): string =>
  'workspace' in s
    ? `/subscriptions/${s.subscription}/resourceGroups/${s.resourceGroup}/providers/${ML}/workspaces/${s.workspace}`
    : 'resourceGroup' in s
      ? `/subscriptions/${s.subscription}/resourceGroups/${s.resourceGroup}`
      : `/subscriptions/${s.subscription}`;
