import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import {
  clusterFactOf,
  clusterOfFact,
  evolveCluster,
  foldCluster,
  initialClusterState,
  stepCluster,
  waitsOn,
  type ClusterDecision,
  type ClusterFact,
  type ClusterInput,
  type ClusterSpec,
  type ClusterState,
} from './cluster.workflow';

/**
 * The AmlCompute cluster workflow (S8.3, S4.6) as given (history) / when (input) / then
 * (decisions). The history holds facts of the log and the cluster's own earlier decisions
 * (a decision is part of the state from the moment it is taken).
 */
const spec: ClusterSpec = { workspaceId: 'w1', workspace: 'ws1', computeId: 'c1', compute: 'cpu', minNodes: 0, maxNodes: 2, idleSecondsBeforeScaledown: 120 };
const T0 = Date.parse('2025-01-01T09:00:00.000Z');
/** Seconds after T0, in ms. */
const at = (s: number) => T0 + s * 1000;
const ws = { workspaceId: 'w1', workspace: 'ws1' };
const cluster = { ...ws, computeId: 'c1', compute: 'cpu' };

const fact = {
  queued: (runId: string, position: number, s = 0): ClusterFact => ({ type: 'RunQueued', data: { ...ws, runId, compute: 'cpu', position }, atMs: at(s) }),
  provisioning: (node: string, forRun: string, s = 0): ClusterFact => ({ type: 'NodeProvisioningStarted', data: { ...cluster, node, forRun }, atMs: at(s) }),
  provisioned: (node: string, s = 0): ClusterFact => ({
    type: 'NodeProvisioned',
    data: { ...cluster, node, osDisk: `os-${node}`, tempDisk: `tmp-${node}`, osDiskEncrypted: true, tempDiskEncrypted: false },
    atMs: at(s),
  }),
  provisioningFailed: (node: string, reason: string, s = 0): ClusterFact => ({ type: 'NodeProvisioningFailed', data: { ...cluster, node, reason }, atMs: at(s) }),
  assigned: (node: string, runId: string, s = 0): ClusterFact => ({ type: 'NodeAssigned', data: { ...cluster, node, runId }, atMs: at(s) }),
  released: (node: string, runId: string, s = 0): ClusterFact => ({ type: 'NodeReleased', data: { ...cluster, node, runId }, atMs: at(s) }),
  idleElapsed: (node: string, s = 0): ClusterFact => ({ type: 'ClusterIdleTimeoutElapsed', data: { ...cluster, node, idleSince: new Date(at(0)).toISOString() }, atMs: at(s) }),
  deprovisioned: (node: string, s = 0): ClusterFact => ({ type: 'NodeDeprovisioned', data: { ...cluster, node, osDiskDeleted: true, reason: 'x' }, atMs: at(s) }),
  canceled: (runId: string, s = 0): ClusterFact => ({ type: 'RunCanceled', data: { ...ws, runId }, atMs: at(s) }),
  failed: (runId: string, s = 0): ClusterFact => ({ type: 'RunFailed', data: { ...ws, runId, reason: 'x' }, atMs: at(s) }),
};
const ask = (runId: string, s = 0): ClusterInput => ({ type: 'RequestNode', runId, atMs: at(s) });
const due = (node: string, s: number): ClusterInput => ({ type: 'ScaleDownDue', node, atMs: at(s) });
const settled = (node: string, runId: string, s = 0): ClusterInput => ({ type: 'AssignmentSettled', node, runId, atMs: at(s) });

const assign = (node: string, runId: string): ClusterDecision => ({ type: 'AssignNode', node, runId });
const queue = (runId: string, position: number): ClusterDecision => ({ type: 'QueueRun', runId, position });
const provision = (node: string, forRun: string): ClusterDecision => ({ type: 'ProvisionNode', node, forRun });
const timer = (node: string, idleSinceS: number): ClusterDecision => ({ type: 'ScheduleScaleDown', node, idleSinceMs: at(idleSinceS), dueAtMs: at(idleSinceS + 120) });
const scaleDown = (node: string, idleSinceS: number): ClusterDecision => ({
  type: 'DeprovisionNode',
  node,
  idleSinceMs: at(idleSinceS),
  osDisk: `os-${node}`,
  tempDisk: `tmp-${node}`,
  reason: 'idle for 120s with no run queued (S4.6)',
});

type Spec = {
  when(input: ClusterInput): { then(expected: ClusterDecision[]): Spec };
  state(): ClusterState;
};

/** Fold the history; each `when` steps the workflow on from the state the last one left. */
const given = (history: Array<ClusterInput | ClusterDecision>, sizing: Partial<ClusterSpec> = {}): Spec => {
  let state = history.reduce(evolveCluster, initialClusterState({ ...spec, ...sizing }));
  const self: Spec = {
    when: (input) => {
      const step = stepCluster(state, input);
      state = step.state;
      return {
        then: (expected) => {
          expect(step.decisions).toEqual(expected);
          return self;
        },
      };
    },
    state: () => state,
  };
  return self;
};

/** Two nodes up and running r1 and r2 (the cluster at maxNodes). */
const busy = [
  ask('r1'),
  queue('r1', 1),
  provision('node-1', 'r1'),
  ask('r2'),
  queue('r2', 2),
  provision('node-2', 'r2'),
  fact.queued('r1', 1),
  fact.queued('r2', 2),
  fact.provisioning('node-1', 'r1'),
  fact.provisioning('node-2', 'r2'),
  fact.provisioned('node-1', 1),
  assign('node-1', 'r1'),
  fact.provisioned('node-2', 1),
  assign('node-2', 'r2'),
  fact.assigned('node-1', 'r1', 1),
  fact.assigned('node-2', 'r2', 1),
];

describe('cluster workflow: queueing and scale-up (S8.3, S4.6)', () => {
  it('a run that asks while a node is free and nobody waits gets it at once, without queueing', () => {
    given([ask('r0'), queue('r0', 1), provision('node-1', 'r0'), fact.provisioned('node-1', 5), fact.canceled('r0', 6)])
      .when(ask('r1', 10))
      .then([assign('node-1', 'r1')])
      .when(fact.assigned('node-1', 'r1', 10))
      .then([]);
  });

  it('a run that asks while no node is free is queued and a node is provisioned for it; the node goes to it once up', () => {
    const g = given([]);
    g.when(ask('r1'))
      .then([queue('r1', 1), provision('node-1', 'r1')])
      // The facts of those decisions change nothing more: no second queue entry, no second node.
      .when(fact.queued('r1', 1))
      .then([])
      .when(fact.provisioning('node-1', 'r1'))
      .then([])
      .when(fact.provisioned('node-1', 30))
      .then([assign('node-1', 'r1')])
      .when(fact.assigned('node-1', 'r1', 30))
      .then([]);
    expect(g.state()).toMatchObject({ queue: [], asking: [], promised: {}, nodeCount: 1, nodes: { 'node-1': { state: 'running', run: 'r1' } } });
  });

  it('scales up one node per waiting run up to maxNodes; the run beyond waits queued for a release', () => {
    given([])
      .when(ask('r1'))
      .then([queue('r1', 1), provision('node-1', 'r1')])
      .when(ask('r2'))
      .then([queue('r2', 2), provision('node-2', 'r2')])
      .when(ask('r3'))
      .then([queue('r3', 3)]);
    given([...busy, ask('r3'), queue('r3', 1), fact.queued('r3', 1)])
      .when(fact.released('node-1', 'r1', 60))
      .then([assign('node-1', 'r3')]);
  });

  it('with maxNodes 3, the third waiting run gets a third node', () => {
    given(busy, { maxNodes: 3 }).when(ask('r3', 2)).then([queue('r3', 1), provision('node-3', 'r3')]);
  });

  it('a node still being provisioned serves the next waiting run: no second node is made for one need', () => {
    // r1 asked and left before its node was up; r2 will get that node.
    given([ask('r1'), queue('r1', 1), provision('node-1', 'r1'), fact.canceled('r1', 1)])
      .when(ask('r2', 2))
      .then([queue('r2', 1)])
      .when(fact.provisioned('node-1', 20))
      .then([assign('node-1', 'r2')]);
  });

  it('a run that ends while it waits leaves the queue', () => {
    const g = given([...busy, ask('r3'), queue('r3', 1), ask('r4'), queue('r4', 2)]);
    g.when(fact.canceled('r3', 5)).then([]);
    expect(g.state().queue).toEqual(['r4']);
    g.when(fact.released('node-2', 'r2', 6)).then([assign('node-2', 'r4')]);
  });
});

describe('cluster workflow: release and scale-down (S4.6)', () => {
  it('a released node with nobody waiting gets a scale-down timer for idleSecondsBeforeScaledown after its release', () => {
    given(busy).when(fact.released('node-1', 'r1', 10)).then([timer('node-1', 10)]);
  });

  it('a node provisioned for a run that left idles towards scale-down from when it came up', () => {
    given([ask('r1'), queue('r1', 1), provision('node-1', 'r1'), fact.canceled('r1', 1)]).when(fact.provisioned('node-1', 20)).then([timer('node-1', 20)]);
  });

  it('after idleSecondsBeforeScaledown with nothing queued the node is deprovisioned (its disks named); not a moment before', () => {
    const g = given([...busy, fact.released('node-1', 'r1', 10), timer('node-1', 10)]);
    g.when(due('node-1', 100))
      .then([])
      .when(due('node-1', 130))
      .then([scaleDown('node-1', 10)])
      // Its facts confirm it: the node is leaving, then gone; nothing is decided twice.
      .when(fact.idleElapsed('node-1', 130))
      .then([])
      .when(due('node-1', 131))
      .then([])
      .when(fact.deprovisioned('node-1', 131))
      .then([]);
    expect(Object.keys(g.state().nodes)).toEqual(['node-2']);
  });

  it('no scale-down of a node a run came to meanwhile; its next idle period gets its own timer', () => {
    given([...busy, fact.released('node-1', 'r1', 10), timer('node-1', 10), ask('r3', 50), assign('node-1', 'r3'), fact.assigned('node-1', 'r3', 50)])
      .when(due('node-1', 130))
      .then([])
      .when(fact.released('node-1', 'r3', 100))
      .then([timer('node-1', 100)])
      // The first timer falls due while the node has been idle only since 100: it stays.
      .when(due('node-1', 130))
      .then([])
      .when(due('node-1', 220))
      .then([scaleDown('node-1', 100)]);
  });

  it('no scale-down while a run waits (the free node goes to it instead)', () => {
    given([...busy, fact.released('node-1', 'r1', 10), timer('node-1', 10), ask('r3', 200)]).when(due('node-1', 200)).then([assign('node-1', 'r3')]);
  });

  it('never below minNodes: of two nodes due at once with minNodes 1, one goes', () => {
    const idleBoth = [...busy, fact.released('node-1', 'r1', 10), timer('node-1', 10), fact.released('node-2', 'r2', 10), timer('node-2', 10)];
    given(idleBoth, { minNodes: 1 })
      .when(due('node-1', 130))
      .then([scaleDown('node-1', 10)])
      .when(due('node-2', 130))
      .then([]);
    given(idleBoth, { minNodes: 2 }).when(due('node-1', 500)).then([]);
    given(idleBoth).when(due('node-1', 130)).then([scaleDown('node-1', 10), scaleDown('node-2', 10)]);
  });
});

describe('cluster workflow: a resumed session (its timers died with its simulator)', () => {
  const idle = [...busy, fact.released('node-2', 'r2', 10), timer('node-2', 10), fact.released('node-1', 'r1', 40), timer('node-1', 40)];
  const resumed = (s: number, waiting: string[] = []): ClusterInput => ({ type: 'Resumed', atMs: at(s), waiting });

  it('scale-downs that fell due while it was down are carried out, earliest due first', () => {
    given(idle).when(resumed(1000)).then([scaleDown('node-2', 10), scaleDown('node-1', 40)]);
  });

  it('one that fell due is carried out; one not yet due is asked for again', () => {
    given(idle).when(resumed(140)).then([scaleDown('node-2', 10), timer('node-1', 40)]);
  });

  it('before any fell due, both timers are asked for again (the old ones are gone)', () => {
    given(idle).when(resumed(50)).then([timer('node-2', 10), timer('node-1', 40)]);
  });

  it('a queued run is served first: the free node goes to it, not to a scale-down that fell due', () => {
    const queuedBehind = [...busy, fact.queued('r3', 1, 5), fact.released('node-2', 'r2', 10), timer('node-2', 10)];
    given(queuedBehind).when(resumed(1000, ['r3'])).then([assign('node-2', 'r3')]);
  });

  it('a run whose request the log never answered (no RunQueued, no NodeAssigned) asks again: it is queued and a node made for it', () => {
    given([]).when(resumed(10, ['r1'])).then([queue('r1', 1), provision('node-1', 'r1')]);
  });

  it('a run the log has queued already is not queued twice; one already on a node is not given another', () => {
    const queued = [ask('r1'), queue('r1', 1), provision('node-1', 'r1'), fact.queued('r1', 1), fact.provisioning('node-1', 'r1')];
    given(queued).when(resumed(10, ['r1'])).then([{ type: 'ResumeProvisioning', node: 'node-1', forRun: 'r1' }]);
    given(busy).when(resumed(10, ['r1', 'r2'])).then([]);
  });

  it("a node whose provisioning the dead simulator left under way is provisioned again (no second node for its run), once; up, it goes to the queue's head", () => {
    const provisioning = [fact.queued('r1', 1), fact.provisioning('node-1', 'r1')];
    const s = given(provisioning, { maxNodes: 1 });
    s.when(resumed(10, ['r1']))
      .then([{ type: 'ResumeProvisioning', node: 'node-1', forRun: 'r1' }])
      .when(ask('r1', 11))
      .then([])
      .when(fact.provisioned('node-1', 12))
      .then([assign('node-1', 'r1')]);
  });

  it('a node whose scale-down the dead simulator left under way is deprovisioned, not given to a run', () => {
    const leaving = [...busy, fact.released('node-2', 'r2', 10), fact.idleElapsed('node-2', 130)];
    given(leaving)
      .when(resumed(200))
      .then([{ type: 'ResumeDeprovisioning', node: 'node-2', osDisk: 'os-node-2', tempDisk: 'tmp-node-2', reason: 'idle for 120s with no run queued (S4.6)' }])
      .when(fact.deprovisioned('node-2', 201))
      .then([]);
  });

  it('folded from the log, the state is the one the facts made; facts of other clusters and runs change nothing', () => {
    const stored = (f: ClusterFact, position: number): StoredEvent =>
      ({ position, stream: 'x', version: position, type: f.type, data: f.data, meta: { at: new Date(f.atMs).toISOString(), correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;
    const other = { ...cluster, compute: 'gpu' };
    const log = [
      fact.provisioning('node-1', 'r1'),
      fact.provisioned('node-1', 1),
      fact.assigned('node-1', 'r1', 1),
      { type: 'NodeProvisioningStarted', data: { ...other, node: 'node-1', forRun: 'rx' }, atMs: at(1) } as ClusterFact,
      fact.released('node-1', 'r1', 10),
      fact.failed('elsewhere', 11),
    ].map(stored);
    const state = foldCluster(spec, log);
    expect(Object.keys(state.nodes)).toEqual(['node-1']);
    expect(state.nodes['node-1']).toMatchObject({ state: 'idle', idleSinceMs: at(10) });
    expect(stepCluster(state, { type: 'Resumed', atMs: at(500), waiting: [] }).decisions).toEqual([scaleDown('node-1', 10)]);
  });
});

describe('cluster workflow: provisioning failure (S4.6)', () => {
  it('the unusable node goes and the run it was provisioned for fails with the reason', () => {
    const g = given([ask('r1'), queue('r1', 1), provision('node-1', 'r1'), fact.provisioning('node-1', 'r1')]);
    g.when(fact.provisioningFailed('node-1', 'no disk quota', 3))
      .then([
        { type: 'RemoveUnusableNode', node: 'node-1', reason: 'provisioning failed' },
        { type: 'FailRun', runId: 'r1', reason: 'node provisioning failed: no disk quota' },
      ])
      .when(fact.deprovisioned('node-1', 3))
      .then([])
      .when(fact.failed('r1', 3))
      .then([]);
    expect(g.state()).toMatchObject({ nodes: {}, queue: [], asking: [], promised: {}, failing: [], nodeCount: 1 });
    // The next node gets the next name.
    g.when(ask('r2', 4)).then([queue('r2', 1), provision('node-2', 'r2')]);
  });

  it('a run decided to fail is not queued again by its RunQueued recorded late, and no node is made for it', () => {
    // The node failed before the run's RunQueued was in the log.
    given([ask('r1'), queue('r1', 1), provision('node-1', 'r1'), fact.provisioning('node-1', 'r1')])
      .when(fact.provisioningFailed('node-1', 'boom', 1))
      .then([
        { type: 'RemoveUnusableNode', node: 'node-1', reason: 'provisioning failed' },
        { type: 'FailRun', runId: 'r1', reason: 'node provisioning failed: boom' },
      ])
      .when(fact.deprovisioned('node-1', 1))
      .then([])
      .when(fact.queued('r1', 1, 2))
      .then([])
      .when(fact.failed('r1', 2))
      .then([]);
  });

  it('a run that got another node meanwhile does not fail; a run still waiting gets a new node once the unusable one is gone', () => {
    // node-2 came up first and went to r1, the head of the queue; node-1 (started for r1) fails.
    given([ask('r1'), queue('r1', 1), provision('node-1', 'r1'), ask('r2'), queue('r2', 2), provision('node-2', 'r2'), fact.provisioned('node-2', 2), assign('node-2', 'r1')])
      .when(fact.provisioningFailed('node-1', 'boom', 3))
      .then([{ type: 'RemoveUnusableNode', node: 'node-1', reason: 'provisioning failed' }])
      .when(fact.deprovisioned('node-1', 3))
      .then([provision('node-3', 'r2')]);
  });
});

describe('cluster workflow: the two races of the old scheduler', () => {
  it('two nodes freed at once go to two runs, not both to the head of the queue', () => {
    const g = given([...busy, ask('r3'), queue('r3', 1), ask('r4'), queue('r4', 2), fact.queued('r3', 1), fact.queued('r4', 2)]);
    // Both releases come in before either assignment is recorded.
    g.when(fact.released('node-1', 'r1', 60))
      .then([assign('node-1', 'r3')])
      .when(fact.released('node-2', 'r2', 60))
      .then([assign('node-2', 'r4')])
      .when(fact.assigned('node-2', 'r4', 61))
      .then([])
      .when(fact.assigned('node-1', 'r3', 61))
      .then([]);
    expect(g.state()).toMatchObject({ queue: [], promised: {}, nodes: { 'node-1': { run: 'r3' }, 'node-2': { run: 'r4' } } });
    // With one run queued, the second node freed idles (towards scale-down) instead.
    given([...busy, ask('r3'), queue('r3', 1)])
      .when(fact.released('node-1', 'r1', 60))
      .then([assign('node-1', 'r3')])
      .when(fact.released('node-2', 'r2', 60))
      .then([timer('node-2', 60)]);
  });

  it('a node promised to a queued run is not idle until the assignment is recorded: not given to another run, not scaled down', () => {
    const promised = [...busy, ask('r3'), queue('r3', 1), fact.released('node-1', 'r1', 10), assign('node-1', 'r3')];
    given(promised)
      .when(ask('r4', 11))
      .then([queue('r4', 2)])
      .when(fact.assigned('node-1', 'r3', 12))
      .then([]);
    given(promised).when(due('node-1', 500)).then([]);
    // A run that was promised a node is not promised a second one.
    given([...promised, fact.released('node-2', 'r2', 11)]).when(due('node-2', 12)).then([timer('node-2', 11)]);
  });

  it('a promise lapses when its run ends before the assignment is recorded, or did not take it: the node is free again', () => {
    const promised = [...busy, ask('r3'), queue('r3', 1), ask('r4'), queue('r4', 2), fact.released('node-1', 'r1', 10), assign('node-1', 'r3')];
    given(promised).when(fact.canceled('r3', 11)).then([assign('node-1', 'r4')]);
    given(promised).when(settled('node-1', 'r3', 11)).then([assign('node-1', 'r4')]);
    // A run that refused its node is not offered one again.
    given([...busy, ask('r3'), queue('r3', 1), fact.released('node-1', 'r1', 10), assign('node-1', 'r3')])
      .when(settled('node-1', 'r3', 11))
      .then([timer('node-1', 10)]);
    // Settled after the assignment was recorded: nothing changes.
    given([...promised, fact.assigned('node-1', 'r3', 11)]).when(settled('node-1', 'r3', 12)).then([]);
  });
});

describe('cluster workflow: facts of the log', () => {
  const stored = (type: string, data: Record<string, unknown>, at = '2025-01-01T09:00:05.000Z'): StoredEvent =>
    ({ position: 1, stream: 's', version: 1, type, data, meta: { at, correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;

  it('reads the cluster facts of a stored event, with its time, and names the cluster they are about', () => {
    const f = clusterFactOf(stored('NodeReleased', { ...cluster, node: 'node-1', runId: 'r1' }))!;
    expect(f).toEqual(fact.released('node-1', 'r1', 5));
    expect(clusterOfFact(f)).toEqual({ workspaceId: 'w1', compute: 'cpu' });
    expect(clusterOfFact(clusterFactOf(stored('RunCanceled', { ...ws, runId: 'r1' }))!)).toBeUndefined();
    expect(clusterFactOf(stored('RunTokenIssued', { ...ws, runId: 'r1' }))).toBeUndefined();
  });

  it('a replay of the facts alone gives the state the decisions built, once their facts are recorded', () => {
    const facts = busy.filter((m): m is ClusterFact => 'data' in m);
    const replayed = facts.reduce(evolveCluster, initialClusterState(spec));
    const lived = given(busy).state();
    expect(replayed).toEqual(lived);
    expect(waitsOn(replayed, 'r1')).toBe(false);
  });
});
