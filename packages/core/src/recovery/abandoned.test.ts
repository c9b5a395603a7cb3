import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { foldRun, runStatusOf } from '../run/run-fold';
import { applyToWorld, emptyWorld } from '../projections/world';
import { STREAMS } from '../streams/catalog';
import { decideSessionRecovery, sessionRecoveredFact, type RecoveryFact } from './abandoned';

const REASON = 'PlatformRestarted: the simulator of session s1 stopped before this ended';

/** A log builder: events of session `s1` (or another), with positions and stream versions. */
const log = () => {
  const events: StoredEvent[] = [];
  const add = (stream: string, type: string, data: Record<string, unknown>, session = 's1') => {
    const version = events.filter((e) => e.stream === stream).length + 1;
    events.push({ position: events.length + 1, stream, version, type, data, meta: { at: '2025-01-01T09:00:00.000Z', correlationId: 'c', causationId: 'c', session } } as StoredEvent);
  };
  const apply = (facts: RecoveryFact[]) => {
    for (const f of facts) {
      expect(f.expectedVersion).toBe(events.filter((e) => e.stream === f.stream).length);
      add(f.stream, f.type, f.data as unknown as Record<string, unknown>);
    }
  };
  return { events, add, apply };
};

const ws = { workspaceId: 'w1', workspace: 'ws1' };
const run = (runId: string) => ({ runId, ...ws });
const cluster = { ...ws, computeId: 'c1', compute: 'cpu' };

/** A run on node-1 of cluster cpu that got as far as Running, and a node that is still being provisioned. */
const runningRun = (l: ReturnType<typeof log>, runId = 'r1', session = 's1') => {
  const s = STREAMS.run(runId);
  l.add(s, 'RunSubmitted', { ...run(runId), experiment: 'e', computeId: 'c1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'sha256-x', script: 't.js', args: [], dependencies: [] }, session);
  l.add(s, 'RunChannelOpened', { ...run(runId), channel: `ch_${runId}`, kind: 'container', socket: '/tmp/x' }, session);
  l.add(s, 'RunTokenIssued', { ...run(runId), tokenId: `rtok_${runId}`, fingerprint: 'sha256:0', expiresAt: '2025-01-01T10:00:00.000Z', channel: `ch_${runId}` }, session);
  l.add(s, 'RunImagePrepared', { ...run(runId), image: 'img', reused: true, dependencies: [] }, session);
  l.add(s, 'ManagementCodeWritten', { ...run(runId), fileShare: 'fs', path: 'p' }, session);
  l.add(STREAMS.compute('c1'), 'NodeProvisioningStarted', { ...cluster, node: 'node-1', forRun: runId }, session);
  l.add(STREAMS.compute('c1'), 'NodeProvisioned', { ...cluster, node: 'node-1', osDisk: 'os', tempDisk: 'tmp', osDiskEncrypted: true, tempDiskEncrypted: false }, session);
  l.add(s, 'NodeAssigned', { ...run(runId), computeId: 'c1', compute: 'cpu', node: 'node-1' }, session);
  l.add(s, 'ContainerStarted', { ...run(runId), node: 'node-1', container: 'abc', image: 'img', driver: 'docker' }, session);
  l.add(s, 'RunStatusReported', { ...run(runId), status: 'Running', step: 'Running' }, session);
};

describe('ending an abandoned session (packages/core/src/recovery/abandoned.ts)', () => {
  it('a run left Running fails with the reason; its token is revoked, its node released and its channel closed; its nodes are deprovisioned', () => {
    const l = log();
    runningRun(l);
    l.add(STREAMS.compute('c1'), 'NodeProvisioningStarted', { ...cluster, node: 'node-2', forRun: 'r9' });
    const r = decideSessionRecovery(l.events, 's1', REASON);
    expect(r.facts.map((f) => `${f.stream} ${f.type}`)).toEqual([
      'run-r1 RunFailed',
      'run-r1 RunTokenRevoked',
      'run-r1 NodeReleased',
      'run-r1 RunChannelClosed',
      'compute-c1 NodeDeprovisioned',
      'compute-c1 NodeProvisioningFailed',
      'compute-c1 NodeDeprovisioned',
    ]);
    expect(r.facts[0]!.data).toMatchObject({ runId: 'r1', reason: REASON });
    expect(r).toMatchObject({ runs: ['r1'], nodes: ['cpu/node-1', 'cpu/node-2'], images: [], services: [] });
    l.apply(r.facts);
    // The node statechart took every fact too: the run gave node-1 back before recovery took it away.
    const world = emptyWorld();
    for (const e of [{ ...l.events[0]!, position: 0, stream: STREAMS.compute('c1'), version: 0, type: 'ComputeCreated', data: { ...cluster, type: 'AmlCompute', minNodes: 0, maxNodes: 2, idleSecondsBeforeScaledown: 120 } } as StoredEvent, ...l.events]) applyToWorld(world, e);
    expect(Object.keys(world.computes.byKey)).toHaveLength(1);
    expect(Object.values(world.computes.byKey).flatMap((c) => c.anomalies)).toEqual([]);
    // The run statechart took every fact: the run is Failed with the reason, nothing left to do.
    const folded = foldRun(l.events.filter((e) => e.stream === 'run-r1'))!;
    expect(runStatusOf(folded.snapshot)).toBe('Failed');
    expect(folded.snapshot.context).toMatchObject({ reason: REASON, tokenRevoked: true, nodeReleased: true });
    // Idempotent: deciding again on the log it made decides nothing.
    expect(decideSessionRecovery(l.events, 's1', REASON).facts).toEqual([]);
  });

  it("a run whose cancel was asked for before the crash ends Canceled, with the cancel's reason and the crash's", () => {
    const l = log();
    runningRun(l);
    l.add(STREAMS.run('r1'), 'RunCancelRequested', { ...run('r1'), by: 'alice', reason: 'wrong data' });
    const r = decideSessionRecovery(l.events, 's1', REASON);
    expect(r.facts.filter((f) => f.stream === 'run-r1').map((f) => f.type)).toEqual(['RunCanceled', 'RunTokenRevoked', 'NodeReleased', 'RunChannelClosed']);
    expect(r.facts[0]!.data).toMatchObject({ runId: 'r1', reason: `wrong data; ${REASON}` });
    l.apply(r.facts);
    const folded = foldRun(l.events.filter((e) => e.stream === 'run-r1'))!;
    expect(runStatusOf(folded.snapshot)).toBe('Canceled');
    expect(decideSessionRecovery(l.events, 's1', REASON).facts).toEqual([]);
  });

  it('a run whose script had ended and been written back, while its end was being recorded, ends as it had decided', () => {
    const l = log();
    runningRun(l);
    l.add(STREAMS.run('r1'), 'RunScriptEnded', { ...run('r1'), exitCode: 0 });
    const before = foldRun(l.events.filter((e) => e.stream === 'run-r1'))!;
    expect(before.snapshot.value).toBe('finishing');
    const r = decideSessionRecovery(l.events, 's1', REASON);
    expect(r.facts[0]!.type).toBe('RunCompleted');
    l.apply(r.facts);
    expect(runStatusOf(foldRun(l.events.filter((e) => e.stream === 'run-r1'))!.snapshot)).toBe('Completed');
  });

  it('leaves other sessions and finished work alone', () => {
    const l = log();
    runningRun(l, 'r2', 's2'); // another session's run: not this recovery's business
    const done = STREAMS.run('r3');
    l.add(done, 'RunSubmitted', { ...run('r3'), experiment: 'e', computeId: 'c9', compute: 'vm', computeType: 'VirtualMachine', snapshotId: 'sha256-x', script: 't.js', args: [], dependencies: [] });
    l.add(done, 'RunFailed', { ...run('r3'), reason: 'no compute' });
    expect(decideSessionRecovery(l.events, 's1', REASON).facts).toEqual([]);
  });

  it('an image still building fails; a service deploying fails, one serving is down, a deleted one stays deleted', () => {
    const l = log();
    l.add(STREAMS.image('i1'), 'ImageCreationRequested', { ...ws, imageId: 'i1', image: 'img', version: 1, models: [], scoringScript: 's.js', dependencies: [] });
    const svc = (id: string) => ({ ...ws, serviceId: id, service: `svc-${id}` });
    for (const id of ['a', 'b', 'c']) l.add(STREAMS.service(id), 'WebserviceDeploymentRequested', { ...svc(id), imageId: 'i0', target: 'ACI', replicas: 1 });
    l.add(STREAMS.service('b'), 'WebserviceHealthy', { ...svc('b') });
    l.add(STREAMS.service('c'), 'WebserviceHealthy', { ...svc('c') });
    l.add(STREAMS.service('c'), 'WebserviceDeleted', { ...svc('c') });
    const r = decideSessionRecovery(l.events, 's1', REASON);
    expect(r.facts.map((f) => `${f.stream} ${f.type}`)).toEqual(['image-i1 ImageCreationFailed', 'service-a WebserviceFailed', 'service-b WebserviceUnhealthy']);
    expect(r).toMatchObject({ images: ['img'], services: ['svc-a', 'svc-b'] });
    l.apply(r.facts);
    expect(decideSessionRecovery(l.events, 's1', REASON).facts).toEqual([]);
    expect(sessionRecoveredFact(r, 's9', REASON, 0)).toMatchObject({ stream: 'session-s1', type: 'SessionRecovered', data: { session: 's1', by: 's9', images: ['img'] } });
  });
});
