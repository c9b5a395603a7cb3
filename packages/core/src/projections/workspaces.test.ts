import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { applyProjection } from './projection';
import { workspacesProjection, type WorkspacesState } from './workspaces';

/** The workspaces read model (S2.5, S4.3, S6.1): resources, identity, grants and revocations, names freed by a failed creation. */
let n = 0;
const ev = (type: string, data: Record<string, unknown> = {}, workspaceId = 'w1'): StoredEvent =>
  ({ position: ++n, stream: `workspace-${workspaceId}`, version: n, type, data: { workspaceId, workspace: 'ws1', ...data }, meta: { at: 'x', correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;
const fold = (events: StoredEvent[]): WorkspacesState => events.reduce((s, e) => applyProjection(workspacesProjection, s, e), workspacesProjection.initial());
const requested = (workspaceId = 'w1') =>
  ev('WorkspaceCreationRequested', { subscription: 'sub-1', resourceGroup: 'rg1', keyVaultResourceGroup: 'rg1', region: 'eastus', scope: '/ws1', edition: 'basic', customerManagedKey: false }, workspaceId);
const provisioned = [
  ev('KeyVaultProvisioned', { keyVault: 'kv1' }),
  ev('StorageAccountProvisioned', { storageAccount: 'st1', blobContainer: 'azureml', fileShare: 'code' }),
  ev('ContainerRegistryProvisioned', { registry: 'cr1' }),
  ev('AppInsightsProvisioned', { appInsights: 'ai1' }),
  ev('ManagedIdentityCreated', { identity: 'ws1-identity', principalId: 'mi1' }),
];

describe('workspaces read model', () => {
  it('a created workspace with its resources and identity', () => {
    const s = fold([requested(), ...provisioned, ev('WorkspaceCreated')]);
    expect(s.byName).toEqual({ ws1: 'w1' });
    expect(s.byId.w1).toEqual({
      workspaceId: 'w1', workspace: 'ws1', subscription: 'sub-1', resourceGroup: 'rg1', keyVaultResourceGroup: 'rg1', region: 'eastus', scope: '/ws1', edition: 'basic', customerManagedKey: false,
      status: 'Succeeded', keyVault: 'kv1', storageAccount: 'st1', blobContainer: 'azureml', fileShare: 'code', registry: 'cr1', appInsights: 'ai1', identity: { name: 'ws1-identity', principalId: 'mi1' },
      grants: [], revoked: [], datastores: {}, storageKeyGenerations: { key1: 1, key2: 1 },
    });
    expect(fold([requested()]).byId.w1!.status).toBe('Creating');
  });

  it('grants once each; a revocation is kept until the grant is given again', () => {
    const grant = (target: string) => ev('IdentityAccessGranted', { target });
    const revoke = (target: string) => ev('IdentityAccessRevoked', { target });
    let ws = fold([requested(), grant('keyVault'), grant('storage'), grant('keyVault'), revoke('keyVault'), revoke('keyVault')]).byId.w1!;
    expect([ws.grants, ws.revoked]).toEqual([['keyVault', 'storage'], ['keyVault']]);
    ws = fold([requested(), grant('keyVault'), revoke('keyVault'), revoke('storage'), grant('keyVault')]).byId.w1!;
    expect([ws.grants, ws.revoked]).toEqual([['keyVault'], ['storage']]);
  });

  it.each([
    ['keyVault', 'keyVault'],
    ['storage', 'storageAccount'],
    ['registry', 'registry'],
    ['appInsights', 'appInsights'],
    ['identity', 'identity'],
  ] as const)('a deprovisioned %s is gone from the record', (resource, field) => {
    const ws = fold([requested(), ...provisioned, ev('ResourceDeprovisioned', { resource })]).byId.w1!;
    expect(field in ws).toBe(false);
    expect(Object.keys(ws).filter((k) => ['keyVault', 'storageAccount', 'registry', 'appInsights', 'identity'].includes(k))).toHaveLength(4);
  });

  it('a failed creation frees the name, unless a newer workspace already holds it', () => {
    const failed = fold([requested(), ev('WorkspaceCreationFailed')]);
    expect([failed.byId.w1!.status, failed.byName]).toEqual(['Failed', {}]);
    const retaken = fold([requested(), requested('w2'), ev('WorkspaceCreationFailed')]);
    expect(retaken.byName).toEqual({ ws1: 'w2' });
  });

  it('upgrade, datastores and key generations; facts of unknown workspaces are ignored', () => {
    const ws = fold([
      requested(),
      ev('WorkspaceUpgraded', { to: 'enterprise' }),
      ev('DatastoreAttached', { datastore: 'ds1', container: 'c1' }),
      ev('StorageKeyRegenerated', { key: 'key2' }),
      ev('StorageKeyRegenerated', { key: 'key2' }),
      ev('StorageKeyRegenerated', { key: 'key1' }),
      ev('KeyVaultProvisioned', { keyVault: 'kv9' }, 'w9'),
    ]);
    expect(ws.byId.w1).toMatchObject({ edition: 'enterprise', datastores: { ds1: { container: 'c1' } }, storageKeyGenerations: { key1: 2, key2: 3 } });
    expect(Object.keys(ws.byId)).toEqual(['w1']);
  });
});
