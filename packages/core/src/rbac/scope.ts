/**
 * ARM scopes (S2.1, S2.3): subscription ⊃ resource group ⊃ workspace ⊃ compute.
 * A role assignment at a scope applies to that scope and everything below it.
 */
export const WORKSPACE_PROVIDER = 'Microsoft.MachineLearningServices/workspaces';

export const subscriptionScope = (subscription: string): string => `/subscriptions/${subscription}`;

export const resourceGroupScope = (subscription: string, resourceGroup: string): string =>
  `${subscriptionScope(subscription)}/resourceGroups/${resourceGroup}`;

export const workspaceScope = (subscription: string, resourceGroup: string, workspace: string): string =>
  `${resourceGroupScope(subscription, resourceGroup)}/providers/${WORKSPACE_PROVIDER}/${workspace}`;

export const computeScope = (workspaceScopeId: string, compute: string): string => `${workspaceScopeId}/computes/${compute}`;

/** True when `scope` equals `ancestor` or lies below it. ARM ids compare case-insensitively. */
export const isWithinScope = (scope: string, ancestor: string): boolean => {
  const s = scope.toLowerCase().replace(/\/+$/, '');
  const a = ancestor.toLowerCase().replace(/\/+$/, '');
  return s === a || s.startsWith(`${a}/`);
};

export type ScopeKind = 'subscription' | 'resourceGroup' | 'workspace' | 'compute';

/** Which level an ARM id names; undefined when it is not a scope this simulator knows. */
export const scopeKind = (scope: string): ScopeKind | undefined => {
  const parts = scope.replace(/\/+$/, '').split('/');
  // ['', 'subscriptions', s, 'resourceGroups', rg, 'providers', ns, type, ws, 'computes', c]
  if (parts[0] !== '' || parts[1]?.toLowerCase() !== 'subscriptions' || !parts[2]) return undefined;
  if (parts.length === 3) return 'subscription';
  if (parts[3]?.toLowerCase() !== 'resourcegroups' || !parts[4]) return undefined;
  if (parts.length === 5) return 'resourceGroup';
  const provider = `${parts[6]}/${parts[7]}`.toLowerCase();
  if (parts[5]?.toLowerCase() !== 'providers' || provider !== WORKSPACE_PROVIDER.toLowerCase() || !parts[8]) return undefined;
  if (parts.length === 9) return 'workspace';
  if (parts.length === 11 && parts[9]?.toLowerCase() === 'computes' && parts[10]) return 'compute';
  return undefined;
};
