import { describe, expect, it } from 'vitest';
import type { EventDataMap } from '../events/catalog';
import { advanceWorkspace, foldWorkspace, startWorkspace, workspaceAccepts, type WorkspaceSnapshot } from './fold';
import type { WorkspaceMachineEvent } from './workspace.machine';

/** The workspace statechart's rules (S2.5, S6.1, S8.1): grants counted once, the sixth grant, revocations, datastores, secrets, roll-back. */
const ref = { workspaceId: 'ws_1', workspace: 'ws1' };
const requested = (keyVaultResourceGroup = 'rg1'): EventDataMap['WorkspaceCreationRequested'] => ({
  ...ref,
  subscription: 'sub-1',
  resourceGroup: 'rg1',
  keyVaultResourceGroup,
  region: 'eastus',
  edition: 'basic',
  customerManagedKey: false,
  scope: '/ws1',
});
const grant = (target: EventDataMap['IdentityAccessGranted']['target']) => ({ type: 'IdentityAccessGranted', ...ref, target, role: 'Contributor', scope: 's', principalId: 'mi' }) as WorkspaceMachineEvent;
const revoke = (target: EventDataMap['IdentityAccessGranted']['target']) => ({ type: 'IdentityAccessRevoked', ...ref, target, scope: 's', principalId: 'mi' }) as WorkspaceMachineEvent;
const secret = (name: string, version: number) => ({ type: 'SecretStored', ...ref, vault: 'kv', secret: name, version, fingerprint: 'sha256:x' }) as WorkspaceMachineEvent;
const resources: WorkspaceMachineEvent[] = [
  { type: 'KeyVaultProvisioned', ...ref, keyVault: 'kv' },
  { type: 'StorageAccountProvisioned', ...ref, storageAccount: 'st', blobContainer: 'b', fileShare: 'f', encryption: 'platform-managed' },
  { type: 'ContainerRegistryProvisioned', ...ref, registry: 'acr' },
  { type: 'AppInsightsProvisioned', ...ref, appInsights: 'ai' },
  { type: 'ManagedIdentityCreated', ...ref, identity: 'ws1-id', principalId: 'mi-42' },
] as WorkspaceMachineEvent[];
const FIVE = ['workspace', 'storage', 'keyVault', 'registry', 'resourceGroup'] as const;
const created = { type: 'WorkspaceCreated', ...ref, subscription: 'sub-1', resourceGroup: 'rg1', region: 'eastus', edition: 'basic', scope: 's' } as WorkspaceMachineEvent;

const play = (events: WorkspaceMachineEvent[], kvRg?: string) => {
  let [snap, effects] = startWorkspace(requested(kvRg));
  const all = [...effects];
  for (const e of events) {
    let next: WorkspaceSnapshot;
    [next, effects] = advanceWorkspace(snap, e);
    snap = next;
    all.push(...effects);
  }
  return { snap, effects: all };
};
const active = () => play([...resources, ...FIVE.map(grant), created]);

describe('workspace statechart rules', () => {
  it('asks for the grants with the identity it created', () => {
    expect(play(resources).effects.at(-1)).toEqual({ type: 'grantIdentityAccess', params: { principalId: 'mi-42' } });
  });

  it('a grant given twice counts once: five distinct grants finish the creation, not five events', () => {
    const twice = play([...resources, grant('workspace'), grant('workspace'), grant('storage'), grant('keyVault'), grant('registry')]);
    expect(twice.snap.value).toEqual({ provisioning: 'grants' });
    expect(twice.snap.context.grants).toEqual(['workspace', 'storage', 'keyVault', 'registry']);
    const all = play([...resources, ...FIVE.map(grant)]);
    expect(all.snap.value).toEqual({ provisioning: 'finishing' });
    expect(all.effects.at(-1)?.type).toBe('completeCreation');
  });

  it('a key vault in another resource group needs the sixth grant before the creation completes', () => {
    const five = play([...resources, ...FIVE.map(grant)], 'rg-kv');
    expect(five.snap.value).toEqual({ provisioning: 'grants' });
    expect(five.snap.context.requiredGrantCount).toBe(6);
    expect(play([...resources, ...FIVE.map(grant), grant('keyVaultResourceGroup')], 'rg-kv').snap.value).toEqual({ provisioning: 'finishing' });
    expect(play([], 'RG1').snap.context.requiredGrantCount).toBe(5);
  });

  it('records the versions of the secrets it stored, while provisioning storage and once active', () => {
    const run = play([resources[0]!, secret('conn', 1), resources[1]!, resources[2]!, resources[3]!, resources[4]!, ...FIVE.map(grant), created, secret('conn', 2), secret('other', 1)]);
    expect(run.snap.context.secretVersions).toEqual({ conn: 2, other: 1 });
  });

  it('a held grant can be revoked once; a re-grant (resync) restores it, and it can be revoked again', () => {
    let { snap } = active();
    expect(workspaceAccepts(snap, revoke('keyVault'))).toBe(true);
    [snap] = advanceWorkspace(snap, revoke('keyVault'));
    expect(snap.context.revoked).toEqual(['keyVault']);
    expect(workspaceAccepts(snap, revoke('keyVault'))).toBe(false);
    [snap] = advanceWorkspace(snap, revoke('keyVault'));
    expect(snap.context.revoked).toEqual(['keyVault']);
    [snap] = advanceWorkspace(snap, revoke('storage'));
    [snap] = advanceWorkspace(snap, grant('keyVault'));
    expect(snap.context.revoked).toEqual(['storage']);
    expect(workspaceAccepts(snap, revoke('keyVault'))).toBe(true);
  });

  it('a datastore name is taken once', () => {
    const attach = (name: string) => ({ type: 'DatastoreAttached', ...ref, datastore: name, container: 'c' }) as WorkspaceMachineEvent;
    let { snap } = active();
    expect(workspaceAccepts(snap, attach('ds1'))).toBe(true);
    [snap] = advanceWorkspace(snap, attach('ds1'));
    expect(workspaceAccepts(snap, attach('ds1'))).toBe(false);
    [snap] = advanceWorkspace(snap, attach('ds1'));
    [snap] = advanceWorkspace(snap, attach('ds2'));
    expect(snap.context.datastores).toEqual(['ds1', 'ds2']);
  });

  it('a failure rolls back what was made, newest first; each removal is ticked off; then it is failed', () => {
    const failed = { type: 'ProvisioningFailed', ...ref, resource: 'appInsights', reason: 'quota' } as WorkspaceMachineEvent;
    const run = play([...resources.slice(0, 3), failed]);
    expect(run.effects.at(-1)).toEqual({ type: 'rollBack', params: { resources: [{ resource: 'registry', name: 'acr' }, { resource: 'storage', name: 'st' }, { resource: 'keyVault', name: 'kv' }] } });
    expect(run.snap.context.failure).toEqual({ resource: 'appInsights', reason: 'quota' });
    const [after] = advanceWorkspace(run.snap, { type: 'ResourceDeprovisioned', ...ref, resource: 'storage', name: 'st' } as WorkspaceMachineEvent);
    expect(after.context.created).toEqual([{ resource: 'keyVault', name: 'kv' }, { resource: 'registry', name: 'acr' }]);
    const [done] = advanceWorkspace(after, { type: 'WorkspaceCreationFailed', ...ref, resource: 'appInsights', reason: 'quota' } as WorkspaceMachineEvent);
    expect(done.value).toBe('failed');
  });

  it('foldWorkspace needs the creation request first', () => {
    const stored = [{ type: 'WorkspaceCreationRequested', ...requested() }, ...resources].map(({ type, ...data }, i) => ({ type, data, position: i + 1, version: i + 1, stream: 's', meta: { at: '', correlationId: 'c', causationId: 'c', session: 's' } }));
    expect(foldWorkspace(stored as never)?.context.identityPrincipalId).toBe('mi-42');
    expect(foldWorkspace(stored.slice(1) as never)).toBeUndefined();
    expect(foldWorkspace([])).toBeUndefined();
  });
});
