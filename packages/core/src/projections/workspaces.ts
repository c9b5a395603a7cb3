import type { IdentityGrantTarget } from '../events/catalog';
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
  status: 'Creating' | 'Succeeded' | 'Failed' | 'Deleted';
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
  on: {
    WorkspaceCreationRequested: (s, { data: d }) => {
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
    },
    KeyVaultProvisioned: (s, e) => withWorkspace(s, e.data, (ws) => (ws.keyVault = e.data.keyVault)),
    StorageAccountProvisioned: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        ws.storageAccount = e.data.storageAccount;
        ws.blobContainer = e.data.blobContainer;
        ws.fileShare = e.data.fileShare;
      }),
    ContainerRegistryProvisioned: (s, e) => withWorkspace(s, e.data, (ws) => (ws.registry = e.data.registry)),
    AppInsightsProvisioned: (s, e) => withWorkspace(s, e.data, (ws) => (ws.appInsights = e.data.appInsights)),
    ManagedIdentityCreated: (s, e) => withWorkspace(s, e.data, (ws) => (ws.identity = { name: e.data.identity, principalId: e.data.principalId })),
    IdentityAccessGranted: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        if (!ws.grants.includes(e.data.target)) ws.grants.push(e.data.target);
        ws.revoked = ws.revoked.filter((t) => t !== e.data.target);
      }),
    IdentityAccessRevoked: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        if (!ws.revoked.includes(e.data.target)) ws.revoked.push(e.data.target);
      }),
    ResourceDeprovisioned: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        const field = DEPROVISIONED_FIELD[e.data.resource];
        delete ws[field];
      }),
    WorkspaceCreationFailed: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        ws.status = 'Failed';
        // A failed creation frees the name again.
        if (s.byName[ws.workspace] === ws.workspaceId) delete s.byName[ws.workspace];
      }),
    WorkspaceCreated: (s, e) => withWorkspace(s, e.data, (ws) => (ws.status = 'Succeeded')),
    WorkspaceDeleted: (s, e) =>
      withWorkspace(s, e.data, (ws) => {
        ws.status = 'Deleted';
        // A deleted workspace frees its name, as a failed creation does.
        if (s.byName[ws.workspace] === ws.workspaceId) delete s.byName[ws.workspace];
      }),
    WorkspaceUpgraded: (s, e) => withWorkspace(s, e.data, (ws) => (ws.edition = e.data.to)),
    DatastoreAttached: (s, e) => withWorkspace(s, e.data, (ws) => (ws.datastores[e.data.datastore] = { container: e.data.container })),
    StorageKeyRegenerated: (s, e) => withWorkspace(s, e.data, (ws) => ws.storageKeyGenerations[e.data.key]++),
  },
});

const DEPROVISIONED_FIELD = {
  keyVault: 'keyVault',
  storage: 'storageAccount',
  registry: 'registry',
  appInsights: 'appInsights',
  identity: 'identity',
} as const;

const withWorkspace = (s: WorkspacesState, data: { workspaceId: string }, change: (ws: WorkspaceRecord) => unknown): void => {
  const ws = s.byId[data.workspaceId];
  if (ws) change(ws);
};
