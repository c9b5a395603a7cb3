import type { IdentityGrantTarget } from '../events/catalog';
import { resourceGroupScope } from '../rbac/scope';

export type IdentityGrant = { target: IdentityGrantTarget; role: string; scope: string };

/**
 * S2.5: the grants of a workspace's system-assigned managed identity. The sixth, Contributor
 * on the key vault's resource group, exists only when that group differs from the workspace's.
 */
export const requiredIdentityGrants = (workspace: {
  subscription: string;
  resourceGroup: string;
  keyVaultResourceGroup: string;
  scope: string;
  keyVault?: string;
  storageAccount?: string;
  registry?: string;
}): IdentityGrant[] => {
  const { keyVault, storageAccount, registry } = workspace;
  // The grants name the workspace's resources: asked for before they exist is a bug, not a case.
  if (!keyVault || !storageAccount || !registry) throw new Error(`the identity grants of ${workspace.scope} need its key vault, storage account and registry`);
  const ws = { ...workspace, keyVault, storageAccount, registry };
  const rg = resourceGroupScope(ws.subscription, ws.resourceGroup);
  const kvRg = resourceGroupScope(ws.subscription, ws.keyVaultResourceGroup);
  const grants: IdentityGrant[] = [
    { target: 'workspace', role: 'Contributor', scope: ws.scope },
    { target: 'storage', role: 'Storage Blob Data Contributor', scope: `${rg}/providers/Microsoft.Storage/storageAccounts/${ws.storageAccount}` },
    { target: 'keyVault', role: 'Key Vault access policy: all keys, secrets, certificates', scope: `${kvRg}/providers/Microsoft.KeyVault/vaults/${ws.keyVault}` },
    { target: 'registry', role: 'Contributor', scope: `${rg}/providers/Microsoft.ContainerRegistry/registries/${ws.registry}` },
    { target: 'resourceGroup', role: 'Contributor', scope: rg },
  ];
  if (ws.keyVaultResourceGroup.toLowerCase() !== ws.resourceGroup.toLowerCase()) {
    grants.push({ target: 'keyVaultResourceGroup', role: 'Contributor', scope: kvRg });
  }
  return grants;
};

/** What `revokeIdentityAccess { resource }` names, mapped to the grant it removes. */
export const REVOCABLE_RESOURCES: Readonly<Record<string, IdentityGrantTarget>> = {
  keyVault: 'keyVault',
  storage: 'storage',
  registry: 'registry',
  workspace: 'workspace',
  resourceGroup: 'resourceGroup',
};
