import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { allocationState, computeKey, computesProjection, type ComputesState } from './computes';
import { applyProjection } from './projection';

/** The computes read model (S8.3, S4.6): nodes through their statechart, the queue, what the node statechart refused. */
let n = 0;
const ref = { workspaceId: 'w1', workspace: 'ws1', computeId: 'c1', compute: 'cpu' };
const ev = (type: string, data: Record<string, unknown> = {}, at = '2025-01-01T09:00:00.000Z'): StoredEvent =>
  ({ position: ++n, stream: 's', version: n, type, data: { ...ref, ...data }, meta: { at, correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;
const fold = (events: StoredEvent[]): ComputesState => events.reduce((s, e) => applyProjection(computesProjection, s, e), computesProjection.initial());
const created = ev('ComputeCreated', { type: 'AmlCompute', vmSize: 'STANDARD_D2_V2', minNodes: 0, maxNodes: 2, idleSecondsBeforeScaledown: 60, memoryBytes: 1024 });
const key = computeKey('w1', 'cpu');
const node = (type: string, extra: Record<string, unknown> = {}, at?: string) => ev(type, { node: 'node-1', ...extra }, at);
const up = [
  created,
  ev('RunSubmitted', { runId: 'r1' }),
  ev('RunQueued', { runId: 'r1' }),
  ev('RunQueued', { runId: 'r1' }),
  node('NodeProvisioningStarted'),
  node('NodeProvisioned', { osDisk: 'os-1', tempDisk: 'tmp-1' }, '2025-01-01T09:00:05.000Z'),
];

describe('computes read model', () => {
  it('a cluster as created: sizing, no nodes, empty queue; AKS agents and region kept', () => {
    const c = fold([created]).byKey[key]!;
    expect(c).toEqual({ ...ref, type: 'AmlCompute', vmSize: 'STANDARD_D2_V2', minNodes: 0, maxNodes: 2, idleSecondsBeforeScaledown: 60, memoryBytes: 1024, nodes: {}, queue: [], nodeCount: 0, anomalies: [] });
    const aks = fold([ev('ComputeCreated', { compute: 'aks', type: 'AKS', vmSize: 'x', minNodes: 0, maxNodes: 0, idleSecondsBeforeScaledown: 0, memoryBytes: 0, agentCount: 3, region: 'westeurope' })]).byKey[computeKey('w1', 'aks')]!;
    expect([aks.agentCount, aks.region]).toEqual([3, 'westeurope']);
  });

  it('an attached VM is one machine: no scaling, and the platform key by reference only', () => {
    const c = fold([ev('ComputeAttached', { compute: 'vm1', type: 'VirtualMachine', vmId: 'vm_1', vm: 'dsvm', username: 'azureuser', vault: 'kv', secret: 'ws1-vm1-ssh', fingerprint: 'SHA256:x' })]).byKey[computeKey('w1', 'vm1')]!;
    expect(c).toMatchObject({ vmSize: 'attached', minNodes: 1, maxNodes: 1, idleSecondsBeforeScaledown: 0, attached: { vmId: 'vm_1', vm: 'dsvm', username: 'azureuser', vault: 'kv', secret: 'ws1-vm1-ssh', fingerprint: 'SHA256:x' } });
  });

  it('queues a run once, gives it a node, and the node is idle again from its release', () => {
    let s = fold(up);
    let c = s.byKey[key]!;
    expect(c.queue).toEqual(['r1']);
    expect(c.nodes['node-1']).toEqual({ node: 'node-1', state: 'idle', osDisk: 'os-1', tempDisk: 'tmp-1', idleSince: '2025-01-01T09:00:05.000Z' });
    expect([c.nodeCount, allocationState(c)]).toEqual([1, 'Steady']);
    s = fold([...up, node('NodeAssigned', { runId: 'r1' })]);
    c = s.byKey[key]!;
    expect(c.queue).toEqual([]);
    expect(c.nodes['node-1']).toMatchObject({ state: 'running', run: 'r1' });
    expect(c.nodes['node-1']!.idleSince).toBeUndefined();
    c = fold([...up, node('NodeAssigned', { runId: 'r1' }), node('NodeReleased', { runId: 'r1' }, '2025-01-01T09:01:00.000Z')]).byKey[key]!;
    expect(c.nodes['node-1']).toEqual({ node: 'node-1', state: 'idle', osDisk: 'os-1', tempDisk: 'tmp-1', idleSince: '2025-01-01T09:01:00.000Z' });
    expect(c.anomalies).toEqual([]);
  });

  it('Resizing while a node is being added or removed', () => {
    expect(allocationState(fold(up.slice(0, 5)).byKey[key]!)).toBe('Resizing');
    expect(allocationState(fold([...up, node('ClusterIdleTimeoutElapsed')]).byKey[key]!)).toBe('Resizing');
  });

  it('scale-down: an idle node leaves and, deprovisioned, is gone from the cluster with its disks', () => {
    const c = fold([...up, node('ClusterIdleTimeoutElapsed'), node('NodeDeprovisioned')]).byKey[key]!;
    expect(c.nodes).toEqual({});
    expect(c.nodeCount).toBe(1);
    expect(c.anomalies).toEqual([]);
  });

  it('a fact the node statechart refuses is recorded and changes nothing: no scale-down under a run, no run on a leaving node', () => {
    const busy = fold([...up, node('NodeAssigned', { runId: 'r1' }), node('ClusterIdleTimeoutElapsed'), node('NodeDeprovisioned')]).byKey[key]!;
    expect(busy.nodes['node-1']).toMatchObject({ state: 'running', run: 'r1' });
    expect(busy.anomalies).toEqual(['ClusterIdleTimeoutElapsed on node-1 while running', 'NodeDeprovisioned on node-1 while running']);
    const leaving = fold([...up, node('ClusterIdleTimeoutElapsed'), node('NodeAssigned', { runId: 'r1' }), node('NodeReleased', { runId: 'r1' })]).byKey[key]!;
    expect(leaving.nodes['node-1']).toMatchObject({ state: 'leaving' });
    expect(leaving.nodes['node-1']!.run).toBeUndefined();
    expect(leaving.queue).toEqual(['r1']);
    expect(leaving.anomalies).toEqual(['NodeAssigned on node-1 while leaving', 'NodeReleased on node-1 while leaving']);
    const early = fold([...up.slice(0, 5), node('NodeAssigned', { runId: 'r1' })]).byKey[key]!;
    expect(early.anomalies).toEqual(['NodeAssigned on node-1 while preparing']);
  });

  it('a node whose provisioning failed is unusable; facts of unknown clusters or nodes are ignored', () => {
    const c = fold([...up.slice(0, 5), node('NodeProvisioningFailed')]).byKey[key]!;
    expect(c.nodes['node-1']!.state).toBe('unusable');
    const s = fold([created, ev('NodeProvisioned', { compute: 'nope', node: 'node-1' }), node('NodeReleased'), ev('RunQueued', { runId: 'ghost' })]);
    expect(s.byKey[key]).toMatchObject({ nodes: {}, queue: [], anomalies: [] });
  });

  it('a run that fails or is canceled leaves the queue; other runs stay', () => {
    const queued = [created, ev('RunSubmitted', { runId: 'r1' }), ev('RunSubmitted', { runId: 'r2' }), ev('RunQueued', { runId: 'r1' }), ev('RunQueued', { runId: 'r2' })];
    expect(fold([...queued, ev('RunFailed', { runId: 'r1' })]).byKey[key]!.queue).toEqual(['r2']);
    expect(fold([...queued, ev('RunCanceled', { runId: 'r2' })]).byKey[key]!.queue).toEqual(['r1']);
    expect(fold([...queued, ev('RunCanceled', { runId: 'r9' })]).byKey[key]!.queue).toEqual(['r1', 'r2']);
  });
});
