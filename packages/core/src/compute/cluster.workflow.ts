import type { EventDataMap } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { handledEvents } from '../aggregate/status-machine';
import { nextNodeState, nodeMachine, type NodeEvent, type NodeState } from './node.machine';

/**
 * An AmlCompute cluster as a workflow (S8.3 managed compute, S4.6 scale-down), in the
 * decide/evolve style: its state is folded from the log's facts (RunQueued, NodeProvisioned,
 * NodeAssigned, NodeReleased, …) and from its own decisions, and `decideCluster` says what to
 * do next as data (queue a run, give node N to run R, provision a node, time a scale-down,
 * deprovision a node, fail a run) with no I/O: times and ids come in the inputs.
 *
 * A decision is folded into the state as soon as it is taken, before its fact is in the log:
 * a node promised to a run (`AssignNode`) is in `promised` until `NodeAssigned` is recorded (or
 * the run ends, or the platform reports that the run did not take it). So a node is never
 * promised twice and a run never gets two nodes, however the facts that free nodes interleave
 * — the cluster's reservations are workflow state, not fields of the service carrying it out.
 *
 * `decideCluster` is level-triggered (like a controller's reconcile): whatever the input, it
 * closes the gap between the runs that wait and the nodes the cluster has. A replay of the
 * log alone (no decisions) gives the same state once every decision's facts are recorded;
 * promises whose facts never came are simply decided again.
 */

/** What a cluster is: its identity and sizing, as created (ComputeCreated). */
export type ClusterSpec = Pick<
  EventDataMap['ComputeCreated'],
  'workspaceId' | 'workspace' | 'computeId' | 'compute' | 'minNodes' | 'maxNodes' | 'idleSecondsBeforeScaledown'
>;

/** The log's facts that move a cluster. */
export const CLUSTER_FACTS = [
  'RunQueued',
  'NodeProvisioningStarted',
  'NodeProvisioned',
  'NodeProvisioningFailed',
  'NodeAssigned',
  'NodeReleased',
  'ClusterIdleTimeoutElapsed',
  'NodeDeprovisioned',
  // A run that ends leaves the queue, and a node promised to it is free again.
  'RunCanceled',
  'RunFailed',
  'RunCompleted',
] as const;
export type ClusterFactType = (typeof CLUSTER_FACTS)[number];

/** A fact of the log as the cluster sees it: its type, payload and when it became true (ms). */
export type ClusterFact = { [K in ClusterFactType]: { type: K; data: EventDataMap[K]; atMs: number } }[ClusterFactType];

/** What the platform tells the cluster that is not (yet) a fact of the log. */
export type ClusterCommand =
  /** A run reached Queued and asks for a node (the run statechart's `requestNode`). */
  | { type: 'RequestNode'; runId: string; atMs: number }
  /** A scale-down timer the cluster asked for fell due. */
  | { type: 'ScaleDownDue'; node: string; atMs: number }
  /**
   * Recording an assignment is over. If `NodeAssigned` did not make it into the log (the run
   * had ended and refused it), the promise lapses, the node is free again and the run no
   * longer waits (it is not offered a node again and again).
   */
  | { type: 'AssignmentSettled'; node: string; runId: string; atMs: number }
  /**
   * A session whose simulator died goes on (packages/platform/src/resume.ts): the cluster, folded
   * from the log, decides again at `atMs`. Its timers died with the simulator; a scale-down that
   * fell due meanwhile is carried out now, earliest due first, the others are asked for again.
   * `waiting`: the runs whose own streams say they wait for a node of this cluster (Queued, no
   * node); one whose request the log never answered (no RunQueued, no NodeAssigned) asks again.
   * A node whose provisioning or scale-down the dead simulator had under way (its start is in
   * the log, its end is not) has it carried out again.
   */
  | { type: 'Resumed'; atMs: number; waiting: readonly string[] };

export type ClusterInput = ClusterFact | ClusterCommand;

/** What the cluster decided; the platform carries each out and records its facts. */
export type ClusterDecision =
  /** Record `RunQueued` for a run that must wait for a node. */
  | { type: 'QueueRun'; runId: string; position: number }
  /** Give an idle node to a run: record `NodeAssigned` on the run (promised until it is recorded). */
  | { type: 'AssignNode'; node: string; runId: string }
  /** Scale up: provision a new node (`NodeProvisioningStarted`, then its outcome). */
  | { type: 'ProvisionNode'; node: string; forRun: string }
  /** Send `ScaleDownDue` for the node at `dueAtMs` (S4.6: idleSecondsBeforeScaledown after it went idle). */
  | { type: 'ScheduleScaleDown'; node: string; idleSinceMs: number; dueAtMs: number }
  /** Scale down (S4.6): `ClusterIdleTimeoutElapsed`, delete the node's disks, `NodeDeprovisioned`. */
  | { type: 'DeprovisionNode'; node: string; idleSinceMs: number; osDisk: string; tempDisk: string; reason: string }
  /**
   * A resumed session: the node's provisioning, begun by the dead simulator (NodeProvisioningStarted
   * is in the log, its outcome is not), is carried out again — the disks, named after the node,
   * are made or found — and its outcome recorded (`NodeProvisioned` or `NodeProvisioningFailed`).
   */
  | { type: 'ResumeProvisioning'; node: string; forRun: string }
  /**
   * A resumed session: the node's scale-down, begun by the dead simulator (ClusterIdleTimeoutElapsed
   * is in the log, NodeDeprovisioned is not), is finished: its disks deleted, `NodeDeprovisioned`.
   */
  | { type: 'ResumeDeprovisioning'; node: string; osDisk: string; tempDisk: string; reason: string }
  /** A node whose provisioning failed is unusable: it goes (`NodeDeprovisioned`). */
  | { type: 'RemoveUnusableNode'; node: string; reason: string }
  /** The run a failed node was provisioned for, still without a node, fails (`RunFailed`). */
  | { type: 'FailRun'; runId: string; reason: string };

export type ClusterNode = {
  node: string;
  state: NodeState;
  osDisk?: string;
  tempDisk?: string;
  /** The run on it (running). */
  run?: string;
  /** When it last became idle (ms), for scale-down. */
  idleSinceMs?: number;
  /** Preparing or unusable: the run it was provisioned for, and why provisioning failed. */
  forRun?: string;
  failure?: string;
  /** Unusable, and its removal decided. */
  removing?: true;
};

export type ClusterState = {
  spec: ClusterSpec;
  /** Nodes that exist (in creation order), until deprovisioned. */
  nodes: Record<string, ClusterNode>;
  /** Nodes ever made: the next one is `node-${nodeCount + 1}`. */
  nodeCount: number;
  /** Runs queued for a node, oldest first, until one is assigned or the run ends. */
  queue: string[];
  /** Runs that asked for a node and are neither queued nor promised one yet. */
  asking: string[];
  /** node -> run: decided assignments whose `NodeAssigned` is not recorded yet. */
  promised: Record<string, string>;
  /** node -> due time of the scale-down timer asked for its current idle period. */
  scaleDownAt: Record<string, number>;
  /** Runs the cluster decided to fail, until their end is recorded: a late RunQueued does not queue them again. */
  failing: string[];
  /** Nodes whose provisioning or scale-down a dead simulator left under way, until carried out again (a resumed session). */
  unfinished: string[];
};

export const initialClusterState = (spec: ClusterSpec): ClusterState => ({
  spec: {
    workspaceId: spec.workspaceId,
    workspace: spec.workspace,
    computeId: spec.computeId,
    compute: spec.compute,
    minNodes: spec.minNodes,
    maxNodes: spec.maxNodes,
    idleSecondsBeforeScaledown: spec.idleSecondsBeforeScaledown,
  },
  nodes: {},
  nodeCount: 0,
  queue: [],
  asking: [],
  promised: {},
  scaleDownAt: {},
  failing: [],
  unfinished: [],
});

const isClusterFact = (type: string): type is ClusterFactType => (CLUSTER_FACTS as readonly string[]).includes(type);

/** A stored event as a cluster fact, or undefined when it is not one. */
export const clusterFactOf = (e: StoredEvent): ClusterFact | undefined =>
  isClusterFact(e.type) ? ({ type: e.type, data: e.data, atMs: Date.parse(e.meta.at) } as ClusterFact) : undefined;

/**
 * The cluster a fact is about, as `{ workspaceId, compute }`; undefined for a run's end, which
 * names no compute (`waitsOn` tells whether a cluster cares).
 */
export const clusterOfFact = (fact: ClusterFact): { workspaceId: string; compute: string } | undefined =>
  'compute' in fact.data ? { workspaceId: fact.data.workspaceId, compute: fact.data.compute } : undefined;

/** The run is queued, asking or promised a node here. */
export const waitsOn = (s: ClusterState, runId: string): boolean =>
  s.queue.includes(runId) || s.asking.includes(runId) || Object.values(s.promised).includes(runId);

// ---- evolve ------------------------------------------------------------------------------------

const without = (list: string[], runId: string): string[] => (list.includes(runId) ? list.filter((r) => r !== runId) : list);

const withoutPromiseTo = (promised: Record<string, string>, runId: string): Record<string, string> =>
  Object.values(promised).includes(runId) ? Object.fromEntries(Object.entries(promised).filter(([, r]) => r !== runId)) : promised;

const omit = <T>(record: Record<string, T>, key: string): Record<string, T> => {
  if (!(key in record)) return record;
  const { [key]: _gone, ...rest } = record;
  return rest;
};

/** The node moved by a fact through the node statechart; a fact its state refuses changes nothing. */
const moved = (s: ClusterState, node: string, event: NodeEvent['type'], change: (n: ClusterNode) => ClusterNode = (n) => n): ClusterState => {
  const n = s.nodes[node];
  const next = n && nextNodeState(n.state, { type: event });
  if (!n || !next) return s;
  return { ...s, nodes: { ...s.nodes, [node]: change({ ...n, state: next }) } };
};

const onNode = (s: ClusterState, node: string, change: (n: ClusterNode) => ClusterNode): ClusterState =>
  s.nodes[node] ? { ...s, nodes: { ...s.nodes, [node]: change(s.nodes[node]) } } : s;

const runEnded = (s: ClusterState, runId: string): ClusterState =>
  waitsOn(s, runId) || s.failing.includes(runId)
    ? { ...s, queue: without(s.queue, runId), asking: without(s.asking, runId), promised: withoutPromiseTo(s.promised, runId), failing: without(s.failing, runId) }
    : s;

const onRunNode = (s: ClusterState, runId: string): boolean => Object.values(s.nodes).some((n) => n.run === runId);

const addNode = (s: ClusterState, node: string, forRun: string): ClusterState =>
  s.nodes[node] ? s : { ...s, nodes: { ...s.nodes, [node]: { node, state: 'preparing', forRun } }, nodeCount: s.nodeCount + 1 };

/**
 * Fold one message — a fact of the log, a command, or one of the cluster's own decisions —
 * into the state. A fact that confirms a decision already folded (RunQueued after QueueRun,
 * NodeProvisioningStarted after ProvisionNode) changes nothing more.
 */
export const evolveCluster = (s: ClusterState, m: ClusterInput | ClusterDecision): ClusterState => {
  switch (m.type) {
    // ---- facts
    case 'RunQueued':
      if (s.queue.includes(m.data.runId) || onRunNode(s, m.data.runId) || s.failing.includes(m.data.runId)) return s;
      return { ...s, queue: [...s.queue, m.data.runId], asking: without(s.asking, m.data.runId) };
    case 'NodeProvisioningStarted':
      return addNode(s, m.data.node, m.data.forRun);
    case 'NodeProvisioned':
      return moved(s, m.data.node, 'NodeProvisioned', ({ forRun: _done, ...n }) => ({ ...n, osDisk: m.data.osDisk, tempDisk: m.data.tempDisk, idleSinceMs: m.atMs }));
    case 'NodeProvisioningFailed':
      return moved(s, m.data.node, 'NodeProvisioningFailed', (n) => ({ ...n, failure: m.data.reason }));
    case 'NodeAssigned': {
      const next = moved(s, m.data.node, 'NodeAssigned', ({ idleSinceMs: _busy, ...n }) => ({ ...n, run: m.data.runId }));
      if (next === s) return s;
      return { ...next, queue: without(next.queue, m.data.runId), asking: without(next.asking, m.data.runId), promised: omit(next.promised, m.data.node) };
    }
    case 'NodeReleased':
      return moved(s, m.data.node, 'NodeReleased', ({ run: _gone, ...n }) => ({ ...n, idleSinceMs: m.atMs }));
    case 'ClusterIdleTimeoutElapsed':
      return moved(s, m.data.node, 'ClusterIdleTimeoutElapsed');
    case 'NodeDeprovisioned':
      if (!s.nodes[m.data.node]) return s;
      return {
        ...s,
        nodes: omit(s.nodes, m.data.node),
        promised: omit(s.promised, m.data.node),
        scaleDownAt: omit(s.scaleDownAt, m.data.node),
        unfinished: without(s.unfinished, m.data.node),
      };
    case 'RunCanceled':
    case 'RunFailed':
    case 'RunCompleted':
      return runEnded(s, m.data.runId);
    // ---- commands
    case 'RequestNode':
      if (waitsOn(s, m.runId) || onRunNode(s, m.runId) || s.failing.includes(m.runId)) return s;
      return { ...s, asking: [...s.asking, m.runId] };
    case 'ScaleDownDue':
      return s;
    case 'Resumed': {
      // The timers it had asked for are gone with the simulator that held them, and so is the
      // work it had under way on nodes; runs the log never answered ask again.
      const asking = m.waiting.filter((r) => !waitsOn(s, r) && !onRunNode(s, r) && !s.failing.includes(r));
      const unfinished = Object.values(s.nodes)
        .filter((n) => n.state === 'preparing' || (n.state === 'leaving' && n.osDisk && n.tempDisk))
        .map((n) => n.node);
      return { ...s, scaleDownAt: {}, asking: [...s.asking, ...asking], unfinished };
    }
    case 'AssignmentSettled':
      // NodeAssigned did not come: the run refused the node (it had ended) and waits no more.
      return s.promised[m.node] === m.runId ? { ...runEnded(s, m.runId), promised: omit(s.promised, m.node) } : s;
    // ---- decisions
    case 'QueueRun':
      return { ...s, queue: s.queue.includes(m.runId) ? s.queue : [...s.queue, m.runId], asking: without(s.asking, m.runId) };
    case 'AssignNode':
      return { ...s, promised: { ...s.promised, [m.node]: m.runId } };
    case 'ProvisionNode':
      return addNode(s, m.node, m.forRun);
    case 'ScheduleScaleDown':
      return { ...s, scaleDownAt: { ...s.scaleDownAt, [m.node]: m.dueAtMs } };
    case 'DeprovisionNode':
      return moved(s, m.node, 'ClusterIdleTimeoutElapsed');
    case 'ResumeProvisioning':
    case 'ResumeDeprovisioning':
      return { ...s, unfinished: without(s.unfinished, m.node) };
    case 'RemoveUnusableNode':
      return onNode(s, m.node, (n) => ({ ...n, removing: true }));
    case 'FailRun':
      return { ...s, queue: without(s.queue, m.runId), asking: without(s.asking, m.runId), failing: [...s.failing, m.runId] };
  }
};

// ---- decide ------------------------------------------------------------------------------------

const nodeNumber = (node: string): number => Number(/(\d+)$/.exec(node)?.[1] ?? 0);

/** Idle nodes no run has been promised, oldest node first. */
export const freeNodes = (s: ClusterState): ClusterNode[] =>
  Object.values(s.nodes)
    .filter((n) => n.state === 'idle' && !(n.node in s.promised))
    .sort((a, b) => nodeNumber(a.node) - nodeNumber(b.node));

/** Runs waiting for a node nobody has promised them: the queue, oldest first, then new askers. */
export const waitingRuns = (s: ClusterState): string[] => {
  const promisedTo = new Set(Object.values(s.promised));
  return [...s.queue, ...s.asking].filter((r) => !promisedTo.has(r));
};

/** Why an idle node is deprovisioned (S4.6), as NodeDeprovisioned says. */
const scaleDownReason = (spec: ClusterSpec): string => `idle for ${spec.idleSecondsBeforeScaledown}s with no run queued (S4.6)`;

/** Nodes that stay when the leaving and unusable ones are gone (minNodes counts these). */
const staying = (s: ClusterState): number => Object.values(s.nodes).filter((n) => n.state !== 'leaving' && n.state !== 'unusable').length;

/**
 * What to do next, given the state with the input already folded in (`stepCluster` does both).
 * The input's `atMs` is now. In order:
 * 0. (a resumed session) the provisioning or scale-down a dead simulator left under way on a
 *    node is carried out again;
 * 1. a node whose provisioning failed goes, and the run it was provisioned for fails if it
 *    still has no node;
 * 2. free nodes go to waiting runs, oldest first (one node per run);
 * 3. a run that asked and got none is queued;
 * 4. scale up: a node per waiting run that no preparing node will serve, up to maxNodes;
 * 5. with nobody waiting, a free node idle for idleSecondsBeforeScaledown is deprovisioned
 *    (never below minNodes); one not idle that long yet gets a timer for when it will be.
 * Each decision is folded in before the next is taken, so none contradicts another.
 */
export const decideCluster = (state: ClusterState, input: ClusterInput): ClusterDecision[] => {
  const now = input.atMs;
  const decisions: ClusterDecision[] = [];
  let s = state;
  const take = (d: ClusterDecision) => {
    decisions.push(d);
    s = evolveCluster(s, d);
  };

  for (const node of s.unfinished) {
    const n = s.nodes[node];
    if (n?.state === 'preparing') take({ type: 'ResumeProvisioning', node, forRun: n.forRun ?? '' });
    else if (n?.state === 'leaving' && n.osDisk && n.tempDisk) take({ type: 'ResumeDeprovisioning', node, osDisk: n.osDisk, tempDisk: n.tempDisk, reason: scaleDownReason(s.spec) });
  }

  for (const n of Object.values(s.nodes)) {
    if (n.state !== 'unusable' || n.removing) continue;
    take({ type: 'RemoveUnusableNode', node: n.node, reason: 'provisioning failed' });
    if (n.forRun && waitingRuns(s).includes(n.forRun)) take({ type: 'FailRun', runId: n.forRun, reason: `node provisioning failed: ${n.failure ?? 'unknown'}` });
  }

  const free = freeNodes(s);
  const waiting = waitingRuns(s);
  for (let i = 0; i < Math.min(free.length, waiting.length); i++) take({ type: 'AssignNode', node: free[i]!.node, runId: waiting[i]! });

  for (const runId of waitingRuns(s).filter((r) => s.asking.includes(r))) take({ type: 'QueueRun', runId, position: s.queue.length + 1 });

  const stillWaiting = waitingRuns(s);
  const preparing = Object.values(s.nodes).filter((n) => n.state === 'preparing').length;
  for (let i = preparing; i < stillWaiting.length && Object.keys(s.nodes).length < s.spec.maxNodes; i++) {
    take({ type: 'ProvisionNode', node: `node-${s.nodeCount + 1}`, forRun: stillWaiting[i]! });
  }

  if (waitingRuns(s).length === 0) {
    // Earliest due first: timers that fell due together (a resumed session) fire in their order.
    const byDue = freeNodes(s).sort((a, b) => (a.idleSinceMs ?? Infinity) - (b.idleSinceMs ?? Infinity));
    for (const n of byDue) {
      if (n.idleSinceMs === undefined) continue;
      const dueAtMs = n.idleSinceMs + s.spec.idleSecondsBeforeScaledown * 1000;
      if (dueAtMs <= now) {
        if (staying(s) > s.spec.minNodes && n.osDisk && n.tempDisk) {
          take({
            type: 'DeprovisionNode',
            node: n.node,
            idleSinceMs: n.idleSinceMs,
            osDisk: n.osDisk,
            tempDisk: n.tempDisk,
            reason: scaleDownReason(s.spec),
          });
        }
      } else if (s.scaleDownAt[n.node] !== dueAtMs) {
        take({ type: 'ScheduleScaleDown', node: n.node, idleSinceMs: n.idleSinceMs, dueAtMs });
      }
    }
  }
  return decisions;
};

/** A cluster's workflow state from its spec and the log's facts about it (what a resumed session starts from). */
export const foldCluster = (spec: ClusterSpec, events: Iterable<StoredEvent>): ClusterState => {
  let state = initialClusterState(spec);
  for (const e of events) {
    const fact = clusterFactOf(e);
    if (!fact) continue;
    const about = clusterOfFact(fact);
    // A run's end names no compute: every cluster hears it, and one it does not concern ignores it.
    if (!about || (about.workspaceId === spec.workspaceId && about.compute === spec.compute)) state = evolveCluster(state, fact);
  }
  return state;
};

/** One step of the workflow: fold the input, decide, fold the decisions. */
export const stepCluster = (state: ClusterState, input: ClusterInput): { state: ClusterState; decisions: ClusterDecision[] } => {
  const folded = evolveCluster(state, input);
  const decisions = decideCluster(folded, input);
  return { state: decisions.reduce(evolveCluster, folded), decisions };
};

// ---- replay ------------------------------------------------------------------------------------

/**
 * Re-check a cluster's recorded history against the workflow of today (`amlsim replay`, as
 * Temporal replays a workflow's history against changed code): its facts are folded in log
 * order, and each fact the workflow decides — a node made, given to a run, let go — is checked
 * against what `decideCluster` would allow in the state before it; the node facts are checked
 * against the node statechart. The first fact the workflow of today would not have produced
 * where the log has it is returned with why, or undefined when the history agrees.
 *
 * `events` are the log's events in order; those about other clusters are skipped (a run's end,
 * naming no compute, is folded by every cluster and changes only one it concerns).
 */
export const clusterDivergence = (spec: ClusterSpec, events: Iterable<StoredEvent>): { event: StoredEvent; why: string } | undefined => {
  let s = initialClusterState(spec);
  for (const e of events) {
    const fact = clusterFactOf(e);
    if (!fact) continue;
    const about = clusterOfFact(fact);
    if (about && (about.workspaceId !== spec.workspaceId || about.compute !== spec.compute)) continue;
    const why = refusedByWorkflow(s, fact);
    if (why) return { event: e, why };
    s = evolveCluster(s, fact);
  }
  return undefined;
};

/** The facts the node statechart decides on (its own events). */
const NODE_FACTS = handledEvents(nodeMachine);

/** Why the workflow (and the node statechart) would not have this fact now, or undefined. */
const refusedByWorkflow = (s: ClusterState, fact: ClusterFact): string | undefined => {
  switch (fact.type) {
    case 'NodeProvisioningStarted': {
      const count = Object.keys(s.nodes).length;
      if (s.nodes[fact.data.node]) return `node ${fact.data.node} already exists`;
      if (count >= s.spec.maxNodes) return `the cluster has ${count} of maxNodes ${s.spec.maxNodes} nodes: it would not scale up`;
      return undefined;
    }
    case 'NodeAssigned': {
      const onOther = Object.values(s.nodes).find((n) => n.run === fact.data.runId);
      if (onOther) return `run ${fact.data.runId} is already on ${onOther.node}: one node a run`;
      const promised = s.promised[fact.data.node];
      if (promised !== undefined && promised !== fact.data.runId) return `node ${fact.data.node} is promised to run ${promised}`;
      break;
    }
    case 'ClusterIdleTimeoutElapsed': {
      const n = s.nodes[fact.data.node];
      if (n?.state === 'idle') {
        if (waitingRuns(s).length > 0) return `runs wait for a node (${waitingRuns(s).join(', ')}): it would not scale down`;
        if (staying(s) <= s.spec.minNodes) return `the cluster would go below minNodes ${s.spec.minNodes}`;
        const due = (n.idleSinceMs ?? Infinity) + s.spec.idleSecondsBeforeScaledown * 1000;
        if (fact.atMs < due) return `node ${n.node} was idle ${((fact.atMs - (n.idleSinceMs ?? fact.atMs)) / 1000).toFixed(0)}s of idleSecondsBeforeScaledown ${s.spec.idleSecondsBeforeScaledown}`;
      }
      break;
    }
    default:
      break;
  }
  if (NODE_FACTS.has(fact.type)) {
    const node = (fact.data as { node: string }).node;
    const n = s.nodes[node];
    if (!n) return `node ${node} does not exist`;
    if (!nextNodeState(n.state, { type: fact.type as NodeEvent['type'] })) return `the node statechart would not take ${fact.type} on ${node} in state ${n.state}`;
  }
  return undefined;
};
