import {
  asMachineEvent,
  clusterFactOf,
  computeKey,
  evolveCluster,
  foldCluster,
  initialClusterState,
  imageAggregate,
  imageMachine,
  nextNodeState,
  nextWebserviceStatus,
  nodeMachine,
  runAggregate,
  runMachine,
  parseStream,
  webserviceMachine,
  workspaceAggregate,
  workspaceMachine,
  type ClusterSpec,
  type ClusterState,
  type NodeEvent,
  type NodeState,
  type StoredEvent,
  type WebserviceEvent,
  type WebserviceStatus,
} from '@amlsim/core';
import { toDirectedGraph, type DirectedGraphNode } from '@xstate/graph';
import ELK, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { AnyStateMachine, AnyMachineSnapshot, StateValue } from 'xstate';

/**
 * The Statecharts tab's data (packages/web/src/views/statecharts.tsx), from the machines
 * themselves and the shown events alone.
 *
 * A chart is read off the machine definition (@xstate/graph's `toDirectedGraph` walks
 * `machine.root`): every state node, nested in its parent, and every transition that has a
 * target, so a change to a machine changes its chart and nothing is drawn by hand. Transitions
 * without a target (facts a state takes without leaving it: a metric batch, a late log upload)
 * are no edges: they are listed on their state instead.
 *
 * An aggregate's current state is its events folded by core's own folds: the aggregates of
 * define-aggregate (workspace, run, image) step XState snapshots, the flat lifecycles (node, web
 * service) step their status through the same memoised transitions the read models use. The last
 * transition is the last fact that took an edge of the chart (asked of the machine with
 * `getTransitionData`, so a guarded alternative is told apart from a no-op), or the first fact,
 * which starts the machine in its initial state.
 *
 * The cluster is no statechart but a decide/evolve workflow (packages/core/src/compute/cluster.workflow.ts):
 * `clusterStateOf` folds it with core's `foldCluster`.
 */

export type ChartKind = 'workspace' | 'run' | 'node' | 'image' | 'webservice';
export type AggregateKind = ChartKind | 'cluster';

/** What each chart shows, and the requirements its machine implements (as its own doc comment cites them). */
export const CHARTS: { readonly [K in ChartKind]: { machine: AnyStateMachine; title: string; cites: readonly string[] } } = {
  workspace: { machine: workspaceMachine, title: 'Workspace', cites: ['S8.1', 'S2.5', 'S4.3', 'S6.1'] },
  run: { machine: runMachine, title: 'Run', cites: ['S1.3', 'S8.3', 'S8.4'] },
  node: { machine: nodeMachine, title: 'Cluster node', cites: ['S8.3', 'S4.6'] },
  image: { machine: imageMachine, title: 'Image', cites: ['S8.5'] },
  webservice: { machine: webserviceMachine, title: 'Web service', cites: ['S8.5'] },
};
export const CLUSTER_CITES: readonly string[] = ['S8.3', 'S4.6'];

// ---- the chart ---------------------------------------------------------------------------------

export type ChartNodeKind = 'state' | 'compound' | 'final' | 'initial';

export type ChartNode = {
  /** The state node's XState id (`run.queued`, `workspace.provisioning.grants`); `<parent>:initial` for an initial marker. */
  id: string;
  /** Its name in its parent (the machine's id for the root). */
  label: string;
  /** The id of the state containing it (undefined for the machine's root). */
  parent?: string;
  kind: ChartNodeKind;
  /** Event types it takes without leaving (targetless transitions), in definition order. */
  internal: string[];
};

export type ChartEdge = {
  /** `<source id>-><target id>`; every transition between the same two states is one edge. */
  id: string;
  source: string;
  target: string;
  /** The event types that take it, in definition order, each once. */
  events: string[];
  /** The arrow from a compound state's initial marker to its initial child. */
  initial?: true;
};

export type Chart = { id: string; nodes: ChartNode[]; edges: ChartEdge[] };

export const edgeId = (source: string, target: string): string => `${source}->${target}`;
export const initialId = (parent: string): string => `${parent}:initial`;

/** The nodes and edges of a machine, from its definition. */
export function chartOf(machine: AnyStateMachine): Chart {
  const nodes: ChartNode[] = [];
  const edges = new Map<string, ChartEdge>();
  const walk = (g: DirectedGraphNode, parent: string | undefined) => {
    const sn = g.stateNode;
    const internal: string[] = [];
    for (const e of g.edges) {
      // toDirectedGraph draws a targetless transition as a loop on its own state: it leaves nothing, so it is no edge.
      if (!e.transition.target || e.transition.target.length === 0) {
        if (!internal.includes(e.transition.eventType)) internal.push(e.transition.eventType);
        continue;
      }
      const id = edgeId(e.source.id, e.target.id);
      const edge = edges.get(id) ?? { id, source: e.source.id, target: e.target.id, events: [] };
      if (!edge.events.includes(e.transition.eventType)) edge.events.push(e.transition.eventType);
      edges.set(id, edge);
    }
    const compound = g.children.length > 0;
    nodes.push({
      id: sn.id,
      label: parent === undefined ? machine.id : sn.key,
      ...(parent === undefined ? {} : { parent }),
      kind: compound ? 'compound' : sn.type === 'final' ? 'final' : 'state',
      internal,
    });
    if (compound && sn.initial?.target?.[0]) {
      const marker = initialId(sn.id);
      nodes.push({ id: marker, label: '', parent: sn.id, kind: 'initial', internal: [] });
      const target = sn.initial.target[0].id;
      edges.set(edgeId(marker, target), { id: edgeId(marker, target), source: marker, target, events: [], initial: true });
    }
    for (const child of g.children) walk(child, sn.id);
  };
  walk(toDirectedGraph(machine), undefined);
  return { id: machine.id, nodes, edges: [...edges.values()] };
}

/** A state value as a path of state names (`provisioning.grants`); parallel regions joined by ` | `. */
export const statePath = (value: StateValue): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value)
        .map(([k, v]) => (v === undefined || (typeof v === 'object' && Object.keys(v).length === 0) ? k : `${k}.${statePath(v as StateValue)}`))
        .join(' | ');

/** The ids of the state nodes active in a state value (every ancestor of each leaf, the root excluded). */
export const activeIds = (machineId: string, value: StateValue): string[] => {
  const ids: string[] = [];
  const walk = (prefix: string, v: StateValue) => {
    if (typeof v === 'string') {
      ids.push(`${prefix}.${v}`);
      return;
    }
    for (const [k, sub] of Object.entries(v)) {
      ids.push(`${prefix}.${k}`);
      if (sub !== undefined) walk(`${prefix}.${k}`, sub as StateValue);
    }
  };
  walk(machineId, value);
  return ids;
};

// ---- the aggregates ----------------------------------------------------------------------------

export type Transition = {
  /** The state before (a path, `provisioning.grants`); undefined for the fact that started the machine. */
  from?: string;
  to: string;
  /** The fact that caused it. */
  event: string;
  position: number;
  /** The chart's edge it took (an initial arrow for the first fact). */
  edge: string;
};

export type LiveAggregate = {
  /** `<kind>:<id>`: unique in a session. */
  key: string;
  kind: AggregateKind;
  /** What the picker shows: `run <runId>`, `workspace ws1`, `node cluster/node-1`, … */
  label: string;
  /** The current state as a path (the cluster: its node and queue counts). */
  current: string;
  /** State node ids to highlight (none for the cluster). */
  active: string[];
  /** The last transition; for the cluster, its last fact. */
  last: Transition;
  /** Log positions of the facts that are about it (for finding the aggregate of a selected event). */
  positions: number[];
};

/** One aggregate being folded: what the list shows of it, and how it takes the next fact. */
type Stepper = Omit<LiveAggregate, 'key'> & {
  step(e: StoredEvent): void;
  /** A stepper in the same state that steps on its own (a checkpoint of the folder). */
  clone(): Stepper;
};

/** What a stepper shows, apart from the state it steps from. */
type StepperView = Pick<Stepper, 'current' | 'active' | 'last' | 'positions'>;

/**
 * An aggregate of define-aggregate (workspace, run, image): its snapshot advanced fact by fact
 * by the aggregate's own `start` and `advance`, the transition each took asked of the machine.
 */
const snapshotStepper = (
  kind: ChartKind,
  aggregate: { startsWith: string; start(input: never, position?: number): [AnyMachineSnapshot, unknown]; advance(s: never, e: never, position?: number): [AnyMachineSnapshot, unknown] },
  first: StoredEvent,
  label: string,
): Stepper => {
  const machine = CHARTS[kind].machine;
  const [snapshot] = aggregate.start(first.data as never, first.position);
  return snapshotStepperFrom(kind, aggregate, label, snapshot, {
    current: statePath(snapshot.value),
    active: activeIds(machine.id, snapshot.value),
    last: { to: statePath(snapshot.value), event: first.type, position: first.position, edge: initialEdgeOf(machine) },
    positions: [first.position],
  });
};

const snapshotStepperFrom = (
  kind: ChartKind,
  aggregate: { advance(s: never, e: never, position?: number): [AnyMachineSnapshot, unknown] },
  label: string,
  from: AnyMachineSnapshot,
  view: StepperView,
): Stepper => {
  const machine = CHARTS[kind].machine;
  // XState snapshots are immutable: a clone shares the one it is at.
  let snapshot = from;
  const s: Stepper = {
    kind,
    label,
    ...view,
    clone: () => snapshotStepperFrom(kind, aggregate, label, snapshot, { current: s.current, active: s.active, last: s.last, positions: s.positions.slice() }),
    step(e) {
      const event = asMachineEvent<never>(e);
      // The transitions the machine selects for this fact in this state (guards evaluated); one with a target is an edge.
      const taken = (machine.getTransitionData(snapshot as never, event) as Array<{ source: { id: string }; target?: ReadonlyArray<{ id: string }> }>).find(
        (t) => t.target && t.target.length > 0,
      );
      const before = snapshot;
      [snapshot] = aggregate.advance(snapshot as never, event, e.position);
      s.positions.push(e.position);
      if (!taken) return;
      s.current = statePath(snapshot.value);
      s.active = activeIds(machine.id, snapshot.value);
      s.last = { from: statePath(before.value), to: s.current, event: e.type, position: e.position, edge: edgeId(taken.source.id, taken.target![0]!.id) };
    },
  };
  return s;
};

/** A flat lifecycle (node, web service): its status moved by core's memoised machine transitions. */
const statusStepper = <S extends string>(kind: ChartKind, next: (state: S, e: StoredEvent) => S | undefined, first: StoredEvent, label: string): Stepper => {
  const machine = CHARTS[kind].machine;
  const initial = machine.root.initial!.target![0]!.key as S;
  return statusStepperFrom(kind, next, label, initial, {
    current: initial,
    active: [`${machine.id}.${initial}`],
    last: { to: initial, event: first.type, position: first.position, edge: initialEdgeOf(machine) },
    positions: [first.position],
  });
};

const statusStepperFrom = <S extends string>(kind: ChartKind, next: (state: S, e: StoredEvent) => S | undefined, label: string, from: S, view: StepperView): Stepper => {
  const machine = CHARTS[kind].machine;
  let state = from;
  const s: Stepper = {
    kind,
    label,
    ...view,
    clone: () => statusStepperFrom(kind, next, label, state, { current: s.current, active: s.active, last: s.last, positions: s.positions.slice() }),
    step(e) {
      s.positions.push(e.position);
      const to = next(state, e);
      if (!to) return;
      s.last = { from: state, to, event: e.type, position: e.position, edge: edgeId(`${machine.id}.${state}`, `${machine.id}.${to}`) };
      state = to;
      s.current = to;
      s.active = [`${machine.id}.${to}`];
    },
  };
  return s;
};

const initialEdgeOf = (machine: AnyStateMachine): string => edgeId(initialId(machine.id), machine.root.initial!.target![0]!.id);

const NODE_FACTS = new Set(['NodeProvisioningStarted', 'NodeProvisioned', 'NodeProvisioningFailed', 'NodeAssigned', 'NodeReleased', 'ClusterIdleTimeoutElapsed', 'NodeDeprovisioned']);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The key of the node a fact is about (`node:<workspaceId>/<compute>/<node>`), or undefined.
 * Node facts are spread over two streams: the compute's (provisioned, deprovisioned) and the
 * run's (assigned, released), so nodes are found by their facts, not by a stream.
 */
const nodeKeyOf = (e: StoredEvent): string | undefined =>
  NODE_FACTS.has(e.type) ? `node:${computeKey(str(e.data['workspaceId']), str(e.data['compute']))}/${str(e.data['node'])}` : undefined;

/** The key of the aggregate whose own stream holds the fact (run, workspace, image, web service, cluster), or undefined. */
const streamKeyOf = (e: StoredEvent): string | undefined => {
  const parsed = parseStream(e.stream);
  const kind = parsed?.kind;
  if (kind === 'run' || kind === 'workspace' || kind === 'image') return `${kind}:${parsed!.key}`;
  if (kind === 'service') return `webservice:${parsed!.key}`;
  if (kind === 'compute' && e.type === 'ComputeCreated' && e.data['type'] === 'AmlCompute') return `cluster:${computeKey(str(e.data['workspaceId']), str(e.data['compute']))}`;
  return undefined;
};

/**
 * Every aggregate of a session's first n events, with its current state and last transition, in
 * the order each began. Following a live log the folder only folds the events that are new (one
 * step of one or two aggregates per event); a slider moved back folds again from the start.
 */
type ClusterFold = { state: ClusterState; positions: number[]; label: string; last: StoredEvent };
type FolderState = { count: number; steppers: Map<string, Stepper>; clusters: Map<string, ClusterFold>; clusterOfRun: Map<string, string> };

/** Events between two checkpoints of the folder: a slider moved back folds at most this many again. */
export const AGGREGATE_CHECKPOINT_EVERY = 2_000;

const copyState = (f: FolderState): FolderState => ({
  count: f.count,
  steppers: new Map([...f.steppers].map(([k, s]) => [k, s.clone()])),
  // A cluster's workflow state is immutable (core's evolveCluster makes a new one).
  clusters: new Map([...f.clusters].map(([k, c]) => [k, { ...c, positions: c.positions.slice() }])),
  clusterOfRun: new Map(f.clusterOfRun),
});

export class AggregateFolder {
  private count = 0;
  private steppers = new Map<string, Stepper>();
  private clusters = new Map<string, ClusterFold>();
  private clusterOfRun = new Map<string, string>();
  /** The folder as it was every AGGREGATE_CHECKPOINT_EVERY events, oldest first (time travel starts from the nearest). */
  private readonly checkpoints: FolderState[] = [];

  constructor(private readonly events: readonly StoredEvent[]) {}

  /** How many events are folded. */
  get folded(): number {
    return this.count;
  }

  /** Fold up to `count` events without building the list (a caller folding in slices). */
  advanceTo(count: number): void {
    const n = Math.max(0, Math.min(count, this.events.length));
    if (n < this.count) {
      // Back in time: from the last checkpoint at or before n, copied so it stays as it was.
      let i = this.checkpoints.length - 1;
      while (i >= 0 && this.checkpoints[i]!.count > n) i--;
      const from = i >= 0 ? copyState(this.checkpoints[i]!) : { count: 0, steppers: new Map(), clusters: new Map(), clusterOfRun: new Map() };
      ({ count: this.count, steppers: this.steppers, clusters: this.clusters, clusterOfRun: this.clusterOfRun } = from);
    }
    for (; this.count < n; ) {
      this.fold(this.events[this.count]!);
      this.count++;
      const last = this.checkpoints.at(-1)?.count ?? 0;
      if (this.count % AGGREGATE_CHECKPOINT_EVERY === 0 && this.count > last) this.checkpoints.push(copyState({ count: this.count, steppers: this.steppers, clusters: this.clusters, clusterOfRun: this.clusterOfRun }));
    }
  }

  at(count: number = this.events.length): LiveAggregate[] {
    this.advanceTo(count);
    const out: LiveAggregate[] = [];
    for (const [key, s] of this.steppers) out.push({ key, kind: s.kind, label: s.label, current: s.current, active: s.active, last: s.last, positions: s.positions.slice() });
    for (const [key, c] of this.clusters) {
      const summary = clusterSummary(c.state);
      out.push({ key, kind: 'cluster', label: c.label, current: summary, active: [], last: { to: summary, event: c.last.type, position: c.last.position, edge: '' }, positions: c.positions.slice() });
    }
    return out.sort((a, b) => a.positions[0]! - b.positions[0]!);
  }

  private fold(e: StoredEvent): void {
    const { steppers } = this;
    const nodeKey = nodeKeyOf(e);
    if (nodeKey) {
      const s = steppers.get(nodeKey);
      if (s) s.step(e);
      else if (e.type === 'NodeProvisioningStarted') {
        steppers.set(nodeKey, statusStepper<NodeState>('node', (st, f) => nextNodeState(st, { type: f.type } as NodeEvent), e, `node ${str(e.data['compute'])}/${str(e.data['node'])}`));
      }
    }
    const key = streamKeyOf(e);
    if (key?.startsWith('cluster:')) {
      this.clusters.set(key, { state: initialClusterState(e.data as unknown as ClusterSpec), positions: [e.position], label: `cluster ${str(e.data['compute'])}`, last: e });
      return;
    }
    if (key) {
      const s = steppers.get(key);
      if (s) {
        // A node fact in a run's stream moves the node above and is a fact of the run too.
        s.step(e);
      } else if (e.type === workspaceAggregate.startsWith) {
        steppers.set(key, snapshotStepper('workspace', workspaceAggregate, e, `workspace ${str(e.data['workspace'])}`));
      } else if (e.type === runAggregate.startsWith) {
        steppers.set(key, snapshotStepper('run', runAggregate, e, `run ${str(e.data['runId'])}`));
        this.clusterOfRun.set(str(e.data['runId']), `cluster:${computeKey(str(e.data['workspaceId']), str(e.data['compute']))}`);
      } else if (e.type === imageAggregate.startsWith) {
        steppers.set(key, snapshotStepper('image', imageAggregate, e, `image ${str(e.data['image'])}:${String(e.data['version'] ?? '')}`));
      } else if (e.type === 'WebserviceDeploymentRequested') {
        steppers.set(key, statusStepper<WebserviceStatus>('webservice', (st, f) => nextWebserviceStatus(st, { type: f.type } as WebserviceEvent), e, `web service ${str(e.data['service'])}`));
      }
    }
    // The cluster's facts (clusterFactOf says which): those naming its compute, and the end of a
    // run submitted to it (which names none), evolved as core's foldCluster evolves them.
    const fact = clusterFactOf(e);
    if (fact) {
      const about = e.data['compute'] !== undefined ? `cluster:${computeKey(str(e.data['workspaceId']), str(e.data['compute']))}` : this.clusterOfRun.get(str(e.data['runId']));
      const c = about ? this.clusters.get(about) : undefined;
      if (c) {
        c.state = evolveCluster(c.state, fact);
        c.positions.push(e.position);
        c.last = e;
      }
    }
  }
}

/** Every aggregate of the first `count` events (one fold from the start). */
export const liveAggregates = (events: readonly StoredEvent[], count: number = events.length): LiveAggregate[] => new AggregateFolder(events).at(count);

// ---- the cluster -------------------------------------------------------------------------------

const clusterSummary = (s: ClusterState): string => {
  const nodes = Object.values(s.nodes).length;
  return `${nodes} node${nodes === 1 ? '' : 's'}, ${s.queue.length} queued`;
};

export type ClusterRow = { node: string; state: NodeState; run?: string; promisedTo?: string; forRun?: string; idleSinceMs?: number; scaleDownAtMs?: number; failure?: string };

export type ClusterView = {
  spec: ClusterSpec;
  queue: string[];
  asking: string[];
  nodes: ClusterRow[];
  state: ClusterState;
};

/** A cluster's workflow state after the first `count` events, as core's `foldCluster` folds it, with its nodes as rows. */
export function clusterStateOf(events: readonly StoredEvent[], count: number, key: string): ClusterView | undefined {
  const shown = events.slice(0, Math.max(0, Math.min(count, events.length)));
  const created = shown.find((e) => e.type === 'ComputeCreated' && `cluster:${computeKey(str(e.data['workspaceId']), str(e.data['compute']))}` === key);
  if (!created) return undefined;
  const state = foldCluster(created.data as unknown as ClusterSpec, shown.slice(shown.indexOf(created)));
  const nodes = Object.values(state.nodes).map((n) => ({
    node: n.node,
    state: n.state,
    ...(n.run ? { run: n.run } : {}),
    ...(state.promised[n.node] ? { promisedTo: state.promised[n.node] } : {}),
    ...(n.forRun ? { forRun: n.forRun } : {}),
    ...(n.idleSinceMs !== undefined ? { idleSinceMs: n.idleSinceMs } : {}),
    ...(n.state === 'idle' && n.idleSinceMs !== undefined ? { scaleDownAtMs: n.idleSinceMs + state.spec.idleSecondsBeforeScaledown * 1000 } : {}),
    ...(n.failure ? { failure: n.failure } : {}),
  }));
  return { spec: state.spec, queue: state.queue, asking: state.asking, nodes, state };
}

// ---- choosing one ------------------------------------------------------------------------------

/**
 * The aggregate a picker shows by default: the one the selected event is about (a node fact:
 * the node; else the aggregate of its stream), else the one whose state changed last.
 */
export function defaultAggregate(aggregates: readonly LiveAggregate[], selectedPosition?: number): LiveAggregate | undefined {
  if (selectedPosition !== undefined) {
    const about = aggregates.filter((a) => a.positions.includes(selectedPosition));
    const pick = about.find((a) => a.kind === 'node') ?? about[0];
    if (pick) return pick;
  }
  let best: LiveAggregate | undefined;
  for (const a of aggregates) if (a.kind !== 'cluster' && (!best || a.last.position > best.last.position)) best = a;
  return best ?? aggregates[0];
}

// ---- the layout --------------------------------------------------------------------------------

export type Box = { x: number; y: number; width: number; height: number };
export type EdgeLayout = {
  /** Polyline points from source to target (absolute), the last one at the arrowhead. */
  points: Array<[number, number]>;
  label?: Box;
};
export type ChartLayout = { width: number; height: number; nodes: Record<string, Box>; edges: Record<string, EdgeLayout> };

/** Text sizes the chart is drawn with (px): at least 14, to be read from the back of a room. */
export const FONT = { state: 16, event: 14, line: 18 } as const;
/** How wide a text is at a size, in px: the page measures with its font; tests and Node estimate. */
export type Measure = (text: string, px: number) => number;
export const estimateWidth: Measure = (text, px) => text.length * px * 0.6;

/**
 * An edge's label, one event type after another, each broken at its camel-case words into lines
 * of about LINE_CHARS characters ("RunCancel" / "Requested"): a narrow chart fits the side pane
 * at full text size, where one long line per event made it far wider.
 */
const LINE_CHARS = 14;
export const labelLines = (events: readonly string[]): string[] =>
  events.flatMap((type) => {
    const lines: string[] = [];
    let line = '';
    for (const word of type.split(/(?=[A-Z])/)) {
      if (line && line.length + word.length > LINE_CHARS) {
        lines.push(line);
        line = word;
      } else line += word;
    }
    if (line) lines.push(line);
    return lines;
  });
const LABEL_PAD = 3;

const STATE_HEIGHT = 40;
const MARKER = 14;
const PAD = { x: 24, top: 36, bottom: 16, side: 16 };

const SPACING = {
  'elk.spacing.nodeNode': '20',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.spacing.edgeLabel': '4',
  'elk.spacing.edgeEdge': '10',
  'elk.spacing.edgeNode': '12',
  'elk.layered.spacing.edgeEdgeBetweenLayers': '8',
  'elk.layered.spacing.edgeNodeBetweenLayers': '12',
  // Fewer, straighter bends than the default node placement, and a narrower chart.
  'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
} as const;

/** The input of one elkjs run. Kept apart from the call so a test can read what is asked. */
export const elkGraphOf = (chart: Chart, measure: Measure = estimateWidth): ElkNode => {
  const byParent = new Map<string | undefined, ChartNode[]>();
  for (const n of chart.nodes) {
    const list = byParent.get(n.parent) ?? [];
    list.push(n);
    byParent.set(n.parent, list);
  }
  const elkNode = (n: ChartNode): ElkNode => {
    if (n.kind === 'initial') return { id: n.id, width: MARKER, height: MARKER };
    const labelWidth = measure(n.label, FONT.state) + PAD.x * 2;
    if (n.kind === 'compound') {
      return {
        id: n.id,
        // Room at the top for the state's name, and at least its width. Spacing is read from the
        // graph a node lies in, so each compound state gets the chart's.
        layoutOptions: {
          ...SPACING,
          'elk.padding': `[top=${PAD.top},left=${PAD.side},bottom=${PAD.bottom},right=${PAD.side}]`,
          'elk.nodeSize.constraints': 'MINIMUM_SIZE',
          'elk.nodeSize.minimum': `(${Math.ceil(labelWidth)},${STATE_HEIGHT})`,
        },
        children: (byParent.get(n.id) ?? []).map(elkNode),
      };
    }
    return { id: n.id, width: Math.max(96, Math.ceil(labelWidth)), height: STATE_HEIGHT };
  };
  const edges: ElkExtendedEdge[] = chart.edges.map((e) => {
    const lines = labelLines(e.events);
    const width = Math.max(0, ...lines.map((t) => measure(t, FONT.event)));
    return {
      id: e.id,
      sources: [e.source],
      targets: [e.target],
      ...(lines.length > 0
        ? {
            labels: [
              {
                id: `${e.id}:label`,
                text: lines.join('\n'),
                width: Math.ceil(width) + LABEL_PAD * 2,
                height: lines.length * FONT.line + LABEL_PAD * 2,
                // At the edge's start ("leaving this state on …"): an end label takes no room in a layer
                // of its own, and a centre label does, which made the run chart three panes wide.
                layoutOptions: { 'elk.edgeLabels.placement': 'TAIL' },
              },
            ],
          }
        : {}),
    };
  });
  return {
    id: '__chart',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      // One layout across the nesting, so an edge may leave a compound state or enter one.
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      ...SPACING,
      'elk.padding': '[top=8,left=8,bottom=8,right=8]',
    },
    children: (byParent.get(undefined) ?? []).map(elkNode),
    edges,
  };
};

/** Reads elkjs's answer (every coordinate absolute: shapeCoords and edgeCoords ROOT) into boxes and polylines. */
export const layoutOf = (laid: ElkNode): ChartLayout => {
  const nodes: Record<string, Box> = {};
  const walk = (n: ElkNode) => {
    for (const c of n.children ?? []) {
      nodes[c.id] = { x: c.x ?? 0, y: c.y ?? 0, width: c.width ?? 0, height: c.height ?? 0 };
      walk(c);
    }
  };
  walk(laid);
  const edges: Record<string, EdgeLayout> = {};
  const collect = (n: ElkNode) => {
    for (const e of n.edges ?? []) {
      const points: Array<[number, number]> = [];
      for (const s of e.sections ?? []) {
        points.push([s.startPoint.x, s.startPoint.y], ...(s.bendPoints ?? []).map((p) => [p.x, p.y] as [number, number]), [s.endPoint.x, s.endPoint.y]);
      }
      const l = e.labels?.[0];
      edges[e.id] = { points, ...(l ? { label: { x: l.x ?? 0, y: l.y ?? 0, width: l.width ?? 0, height: l.height ?? 0 } } : {}) };
    }
    for (const c of n.children ?? []) collect(c);
  };
  collect(laid);
  return { width: Math.ceil(laid.width ?? 0), height: Math.ceil(laid.height ?? 0), nodes, edges };
};

/** Lays a chart out with elkjs (in the page: the bundled build, no worker). */
export async function layoutChart(chart: Chart, measure: Measure = estimateWidth): Promise<ChartLayout> {
  const elk = new ELK();
  return layoutOf(await elk.layout(elkGraphOf(chart, measure)));
}
