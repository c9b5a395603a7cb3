import { describe, expect, it } from 'vitest';
import { STREAMS } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { replay } from './replay';

const ref = { runId: 'r1', workspaceId: 'w1', workspace: 'ws1' };
const meta = { at: '2025-01-01T09:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's1' };
const submitted = { ...ref, experiment: 'e', computeId: 'c1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'sha256-x', script: 't.js', args: [], dependencies: [] };

describe('amlsim replay re-runs the decisions', () => {
  it('reports the first fact a statechart would not take where the log has it', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.run('r1'), 'no-stream', [
      { type: 'RunSubmitted', data: submitted, meta },
      { type: 'RunChannelOpened', data: { ...ref, channel: 'ch', kind: 'container', socket: '/x' }, meta },
      { type: 'RunTokenIssued', data: { ...ref, tokenId: 't', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00.000Z', channel: 'ch' }, meta },
      // What no run statechart takes in Starting: a log the machine of today would decide differently on.
      { type: 'RunCompleted', data: ref, meta },
    ]);
    const report = replay(store);
    expect(report.ok).toBe(false);
    expect(report.sessions[0]!.divergences).toContain(
      'run-r1: the run statechart would not take RunCompleted (#4) in state "starting": it decides differently on this log than the one that wrote it',
    );
  });

  it('says nothing of a history every statechart takes', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.run('r1'), 'no-stream', [
      { type: 'RunSubmitted', data: submitted, meta },
      { type: 'RunFailed', data: { ...ref, reason: 'no compute' }, meta },
    ]);
    expect(replay(store).sessions[0]!.divergences.filter((d) => d.includes('statechart'))).toEqual([]);
  });

  const cluster = { workspaceId: 'w1', workspace: 'ws1', computeId: 'c1', compute: 'cpu' };
  const created = { ...cluster, type: 'AmlCompute', vmSize: 'STANDARD_D2_V2', minNodes: 0, maxNodes: 1, idleSecondsBeforeScaledown: 120 };
  const node = (n: string) => ({ ...cluster, node: n });

  it('reports a cluster history the cluster workflow would not decide: a second node on a cluster of maxNodes 1', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.compute('c1'), 'no-stream', [
      { type: 'ComputeCreated', data: created, meta },
      { type: 'NodeProvisioningStarted', data: { ...node('node-1'), forRun: 'r1' }, meta },
      { type: 'NodeProvisioningStarted', data: { ...node('node-2'), forRun: 'r2' }, meta },
    ]);
    const report = replay(store);
    expect(report.ok).toBe(false);
    expect(report.sessions[0]!.divergences).toContain(
      'cluster ws1/cpu: the cluster workflow would not have NodeProvisioningStarted (#3): the cluster has 1 of maxNodes 1 nodes: it would not scale up',
    );
  });

  it('reports a node fact the node statechart would not take, and a service fact the web service statechart would not take', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.compute('c1'), 'no-stream', [
      { type: 'ComputeCreated', data: created, meta },
      { type: 'NodeProvisioningStarted', data: { ...node('node-1'), forRun: 'r1' }, meta },
      // Released before it was provisioned or assigned: no node does that.
      { type: 'NodeReleased', data: { ...node('node-1'), runId: 'r1' }, meta },
    ]);
    const svc = { workspaceId: 'w1', workspace: 'ws1', serviceId: 's1', service: 'dbl' };
    store.append(STREAMS.service('s1'), 'no-stream', [
      { type: 'WebserviceDeploymentRequested', data: { ...svc, imageId: 'i1', target: 'ACI', replicas: 1, authEnabled: true, tokenAuthEnabled: false }, meta },
      // Down before it ever came up.
      { type: 'WebserviceUnhealthy', data: { ...svc, replica: 'all', reason: 'x' }, meta },
    ]);
    const divergences = replay(store).sessions[0]!.divergences;
    expect(divergences).toContain('cluster ws1/cpu: the cluster workflow would not have NodeReleased (#3): the node statechart would not take NodeReleased on node-1 in state preparing');
    expect(divergences).toContain(
      'service-s1: the web service statechart would not take WebserviceUnhealthy (#5) in status "Transitioning": it decides differently on this log than the one that wrote it',
    );
  });

  it('says nothing of a cluster that scaled up, ran, was released and scaled down after its idle time', () => {
    const store = createMemoryEventStore();
    const at = (s: number) => ({ ...meta, at: new Date(Date.parse(meta.at) + s * 1000).toISOString() });
    store.append(STREAMS.compute('c1'), 'no-stream', [
      { type: 'ComputeCreated', data: created, meta },
      { type: 'NodeProvisioningStarted', data: { ...node('node-1'), forRun: 'r1' }, meta },
      { type: 'NodeProvisioned', data: { ...node('node-1'), osDisk: 'os', tempDisk: 'tmp', osDiskEncrypted: true, tempDiskEncrypted: false }, meta },
    ]);
    store.append(STREAMS.run('r1'), 'no-stream', [
      { type: 'RunSubmitted', data: submitted, meta },
      { type: 'NodeAssigned', data: { ...ref, computeId: 'c1', compute: 'cpu', node: 'node-1' }, meta: at(1) },
      { type: 'NodeReleased', data: { ...node('node-1'), runId: 'r1' }, meta: at(10) },
      { type: 'RunFailed', data: { ...ref, reason: 'exit 1' }, meta: at(10) },
    ]);
    store.append(STREAMS.compute('c1'), 3, [
      { type: 'ClusterIdleTimeoutElapsed', data: { ...node('node-1'), idleSince: at(10).at }, meta: at(130) },
      { type: 'NodeDeprovisioned', data: { ...node('node-1'), osDiskDeleted: true, reason: 'idle' }, meta: at(130) },
    ]);
    // (The run's own stream is cut short here; only the cluster's history is the point.)
    expect(replay(store).sessions[0]!.divergences.filter((d) => d.startsWith('cluster'))).toEqual([]);
  });
});
