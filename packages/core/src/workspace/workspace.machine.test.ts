import { describe, expect, it } from 'vitest';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { EventDataMap } from '../events/catalog';
import { advanceWorkspace, foldWorkspace, startWorkspace, workspaceAccepts } from './fold';
import { workspaceMachine, type WorkspaceMachineEvent } from './workspace.machine';

const ref = { workspaceId: 'ws_1', workspace: 'ws1' };
const requested: EventDataMap['WorkspaceCreationRequested'] = {
  ...ref,
  subscription: 'sub-1',
  resourceGroup: 'rg1',
  keyVaultResourceGroup: 'rg1',
  region: 'eastus',
  edition: 'basic',
  customerManagedKey: false,
  scope: '/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1',
};
const grant = (target: EventDataMap['IdentityAccessGranted']['target']): WorkspaceMachineEvent => ({
  type: 'IdentityAccessGranted',
  ...ref,
  target,
  role: 'Contributor',
  scope: 's',
  principalId: 'mi',
});

/** One sample of each fact the machine consumes: the graph utilities explore every ordering of them. */
const SAMPLE_EVENTS: WorkspaceMachineEvent[] = [
  { type: 'KeyVaultProvisioned', ...ref, keyVault: 'kv' },
  { type: 'StorageAccountProvisioned', ...ref, storageAccount: 'st', blobContainer: 'b', fileShare: 'f', encryption: 'platform-managed' },
  { type: 'ContainerRegistryProvisioned', ...ref, registry: 'acr' },
  { type: 'AppInsightsProvisioned', ...ref, appInsights: 'ai' },
  { type: 'ManagedIdentityCreated', ...ref, identity: 'ws1', principalId: 'mi' },
  grant('workspace'),
  grant('storage'),
  grant('keyVault'),
  grant('registry'),
  grant('resourceGroup'),
  { type: 'WorkspaceCreated', ...ref, subscription: 'sub-1', resourceGroup: 'rg1', region: 'eastus', edition: 'basic', scope: 's' },
  { type: 'ProvisioningFailed', ...ref, resource: 'registry', reason: 'boom' },
  { type: 'ResourceDeprovisioned', ...ref, resource: 'keyVault', name: 'kv' },
  { type: 'WorkspaceCreationFailed', ...ref, resource: 'registry', reason: 'boom' },
  { type: 'WorkspaceUpgraded', ...ref, from: 'basic', to: 'enterprise' },
];

const stateKey = (value: unknown) => JSON.stringify(value);

describe('workspace statechart (derived paths)', () => {
  const paths = getShortestPaths(workspaceMachine, { events: SAMPLE_EVENTS, input: requested });
  const reached = new Set(paths.map((p) => stateKey(p.state.value)));

  it('reaches every provisioning step, active, rollingBack and failed', () => {
    for (const s of ['keyVault', 'storage', 'registry', 'appInsights', 'identity', 'grants', 'finishing']) {
      expect(reached).toContain(stateKey({ provisioning: s }));
    }
    for (const s of ['active', 'rollingBack', 'failed']) expect(reached).toContain(stateKey(s));
  });

  it('every path into failed passes through rollingBack (S8.1: what was created is removed)', () => {
    // Grants can arrive in any order: leave them out here, or the simple paths explode factorially.
    const events = SAMPLE_EVENTS.filter((e) => e.type !== 'IdentityAccessGranted');
    const simple = getSimplePaths(workspaceMachine, { events, input: requested });
    const intoFailed = simple.filter((p) => p.state.value === 'failed');
    expect(intoFailed.length).toBeGreaterThan(0);
    for (const p of intoFailed) expect(p.steps.some((s) => s.state.value === 'rollingBack')).toBe(true);
  });

  it('names the effect of each step and reaches active only after the grants', () => {
    let [snap, effects] = startWorkspace(requested);
    const seen = [...effects];
    for (const e of SAMPLE_EVENTS.slice(0, 11)) {
      [snap, effects] = advanceWorkspace(snap, e);
      seen.push(...effects);
    }
    expect(snap.value).toBe('active');
    expect(seen.map((e) => (e.type === 'provisionResource' ? `provision:${e.params.resource}` : e.type))).toEqual([
      'provision:keyVault',
      'provision:storage',
      'provision:registry',
      'provision:appInsights',
      'provision:identity',
      'grantIdentityAccess',
      'completeCreation',
    ]);
  });

  it('rolls back exactly what was created, newest first', () => {
    let [snap] = startWorkspace(requested);
    [snap] = advanceWorkspace(snap, SAMPLE_EVENTS[0]!);
    [snap] = advanceWorkspace(snap, SAMPLE_EVENTS[1]!);
    const [, effects] = advanceWorkspace(snap, { type: 'ProvisioningFailed', ...ref, resource: 'registry', reason: 'x' });
    expect(effects).toEqual([{ type: 'rollBack', params: { resources: [{ resource: 'storage', name: 'st' }, { resource: 'keyVault', name: 'kv' }] } }]);
  });

  it('refuses a second upgrade and a revocation of a grant not held', () => {
    let [snap] = startWorkspace(requested);
    for (const e of SAMPLE_EVENTS.slice(0, 11)) [snap] = advanceWorkspace(snap, e);
    const upgrade = SAMPLE_EVENTS[14]!;
    expect(workspaceAccepts(snap, upgrade)).toBe(true);
    [snap] = advanceWorkspace(snap, upgrade);
    expect(workspaceAccepts(snap, upgrade)).toBe(false);
    const revoke: WorkspaceMachineEvent = { type: 'IdentityAccessRevoked', ...ref, target: 'keyVaultResourceGroup', scope: 's', principalId: 'mi' };
    expect(workspaceAccepts(snap, revoke)).toBe(false);
  });

  it('folds a stored stream to the same state without running effects', () => {
    const stored = [{ type: 'WorkspaceCreationRequested', data: requested }, ...SAMPLE_EVENTS.slice(0, 11).map(({ type, ...data }) => ({ type, data }))].map(
      (e, i) => ({ ...e, position: i + 1, version: i + 1, stream: 'workspace-ws_1', meta: { at: '', correlationId: 'c', causationId: 'c', session: 's' } }),
    );
    const snap = foldWorkspace(stored as never);
    expect(snap?.value).toBe('active');
    expect(snap?.context.grants).toHaveLength(5);
  });
});
