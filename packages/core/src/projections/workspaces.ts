import type { AmlEvent, IdentityGrantTarget } from '../events/catalog';
import { defineProjection } from './projection';

export type WorkspaceRecord = {
  workspaceId: string;
  workspace: string;
  subscription: string;
  resourceGroup: string;
  keyVaultResourceGroup: string;
  region: string;
  scope: string;
  edition: 'basic' | 'enterprise';
  customerManagedKey: boolean;
  status: 'Creating' | 'Succeeded' | 'Failed';
  keyVault?: string;
  storageAccount?: string;
  blobContainer?: string;
  fileShare?: string;
  registry?: string;
  appInsights?: string;
  identity?: { name: string; principalId: string };
  grants: IdentityGrantTarget[];
  revoked: IdentityGrantTarget[];
  datastores: Record<string, { container: string }>;
  storageKeyGenerations: { key1: number; key2: number };
};

/** Workspaces by name (a failed creation frees its name again) and by id. */
export type WorkspacesState = {
  byId: Record<string, WorkspaceRecord>;
  /** Name -> id of the live (creating or succeeded) workspace with that name. */
  byName: Record<string, string>;
};

export const workspacesProjection = defineProjection<WorkspacesState>({
  name: 'workspaces',
  initial: () => ({ byId: {}, byName: {} }),
  apply: (s, raw) => {
    const e = raw as AmlEvent;
    if (e.type === 'WorkspaceCreationRequested') {
      const d = e.data;
      s.byId[d.workspaceId] = {
        workspaceId: d.workspaceId,
        workspace: d.workspace,
        subscription: d.subscription,
        resourceGroup: d.resourceGroup,
        keyVaultResourceGroup: d.keyVaultResourceGroup,
        region: d.region,
        scope: d.scope,
        edition: d.edition,
        customerManagedKey: d.customerManagedKey,
        status: 'Creating',
        grants: [],
        revoked: [],
        datastores: {},
        storageKeyGenerations: { key1: 1, key2: 1 },
      };
      s.byName[d.workspace] = d.workspaceId;
      return s;
    }
    if (!('workspaceId' in e.data)) return s;
    const ws = s.byId[e.data.workspaceId];
    if (!ws) return s;
    switch (e.type) {
      case 'KeyVaultProvisioned':
        ws.keyVault = e.data.keyVault;
        break;
      case 'StorageAccountProvisioned':
        ws.storageAccount = e.data.storageAccount;
        ws.blobContainer = e.data.blobContainer;
        ws.fileShare = e.data.fileShare;
        break;
      case 'ContainerRegistryProvisioned':
        ws.registry = e.data.registry;
        break;
      case 'AppInsightsProvisioned':
        ws.appInsights = e.data.appInsights;
        break;
      case 'ManagedIdentityCreated':
        ws.identity = { name: e.data.identity, principalId: e.data.principalId };
        break;
      case 'IdentityAccessGranted':
        if (!ws.grants.includes(e.data.target)) ws.grants.push(e.data.target);
        ws.revoked = ws.revoked.filter((t) => t !== e.data.target);
        break;
      case 'IdentityAccessRevoked':
        if (!ws.revoked.includes(e.data.target)) ws.revoked.push(e.data.target);
        break;
      case 'ResourceDeprovisioned':
        if (e.data.resource === 'keyVault') delete ws.keyVault;
        if (e.data.resource === 'storage') delete ws.storageAccount;
        if (e.data.resource === 'registry') delete ws.registry;
        if (e.data.resource === 'appInsights') delete ws.appInsights;
        if (e.data.resource === 'identity') delete ws.identity;
        break;
      case 'WorkspaceCreationFailed':
        ws.status = 'Failed';
        if (s.byName[ws.workspace] === ws.workspaceId) delete s.byName[ws.workspace];
        break;
      case 'WorkspaceCreated':
        ws.status = 'Succeeded';
        break;
      case 'WorkspaceUpgraded':
        ws.edition = e.data.to;
        break;
      case 'DatastoreAttached':
        ws.datastores[e.data.datastore] = { container: e.data.container };
        break;
      case 'StorageKeyRegenerated':
        ws.storageKeyGenerations[e.data.key]++;
        break;
    }
    return s;
  },
});
