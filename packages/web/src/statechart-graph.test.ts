import { runMachine, type StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import {
  AGGREGATE_CHECKPOINT_EVERY,
  AggregateFolder,
  CHARTS,
  activeIds,
  chartOf,
  clusterStateOf,
  defaultAggregate,
  edgeId,
  elkGraphOf,
  initialId,
  labelLines,
  layoutChart,
  liveAggregates,
  statePath,
  type ChartKind,
} from './statechart-graph';

let position = 0;
const T0 = Date.parse('2026-01-01T10:00:00.000Z');
const ev = (stream: string, type: string, s: number, data: Record<string, unknown>): StoredEvent => ({
  type,
  data,
  position: ++position,
  stream,
  version: 1,
  meta: { at: new Date(T0 + s * 1000).toISOString(), correlationId: `cmd_${position}`, causationId: 'c', session: 's1' },
});

const ws = { workspaceId: 'ws_1', workspace: 'ws1' };
const run = { ...ws, runId: 'r1' };
const node = { ...ws, computeId: 'cmp_1', compute: 'cpu', node: 'node-1' };

/** A managed run on a cluster of one node, as the platform records it (streams as in the log). */
const session = (): StoredEvent[] => {
  position = 0;
  return [
    ev('workspace-ws_1', 'WorkspaceCreationRequested', 0, { ...ws, subscription: 'sub', resourceGroup: 'rg', keyVaultResourceGroup: 'rg', region: 'eastus', edition: 'enterprise' }),
    ev('workspace-ws_1', 'EffectStarted', 0, { effect: 'provisionResource', effectId: '1:0', params: { resource: 'keyVault' } }),
    ev('workspace-ws_1', 'KeyVaultProvisioned', 1, { ...ws, keyVault: 'kv' }),
    ev('compute-cmp_1', 'ComputeCreated', 2, { ...ws, computeId: 'cmp_1', compute: 'cpu', type: 'AmlCompute', vmSize: 's', minNodes: 0, maxNodes: 2, idleSecondsBeforeScaledown: 120, memoryBytes: 1 }),
    ev('run-r1', 'RunSubmitted', 3, { ...run, experiment: 'e', computeId: 'cmp_1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'x', script: 'train.js', args: [], dependencies: [] }),
    ev('run-r1', 'RunChannelOpened', 3, { ...run, channel: 'ch' }),
    ev('run-r1', 'RunTokenIssued', 3, { ...run, tokenId: 'rtok_1', fingerprint: 'sha256:1', expiresAt: '2026-01-01T11:00:00Z', channel: 'ch' }),
    ev('run-r1', 'RunImagePrepared', 4, { ...run, image: 'img', reused: false, dependencies: [] }),
    ev('run-r1', 'ManagementCodeWritten', 5, { ...run, fileShare: 'share', path: 'p' }),
    ev('run-r1', 'RunQueued', 5, { ...run, compute: 'cpu', position: 1 }), // #10
    ev('compute-cmp_1', 'NodeProvisioningStarted', 6, { ...node, forRun: 'r1' }),
    ev('compute-cmp_1', 'NodeProvisioned', 7, { ...node, osDisk: 'os', tempDisk: 'tmp', osDiskEncrypted: true, tempDiskEncrypted: false }),
    ev('run-r1', 'NodeAssigned', 8, { ...node, runId: 'r1' }),
    ev('run-r1', 'ContainerStarted', 9, { ...run, node: 'node-1', container: 'c1', image: 'img', driver: 'process' }), // #14
    ev('run-r1', 'MetricsWrittenBack', 10, { ...run, batch: 1, count: 0, rows: [] }),
    ev('run-r1', 'RunScriptEnded', 11, { ...run, exitCode: 0 }), // #16
    ev('run-r1', 'RunCompleted', 12, run), // #17
    ev('run-r1', 'RunTokenRevoked', 12, { ...run, tokenId: 'rtok_1' }),
    ev('run-r1', 'ContainerExited', 13, { ...run, node: 'node-1', exitCode: 0, oomKilled: false }),
    ev('run-r1', 'NodeReleased', 13, { ...node, runId: 'r1' }), // #20
  ];
};

const byKey = (events: StoredEvent[], count?: number) => new Map(liveAggregates(events, count).map((a) => [a.key, a]));

describe('chartOf', () => {
  it('makes every state of the run machine a node, nested in its parent', () => {
    const chart = chartOf(runMachine);
    const ids = new Set(chart.nodes.map((n) => n.id));
    // The machine's own states, walked independently of the chart.
    const states = Object.keys(runMachine.root.states);
    expect(states.length).toBeGreaterThan(10);
    for (const key of states) expect(ids.has(`run.${key}`), key).toBe(true);
    for (const key of states) expect(chart.nodes.find((n) => n.id === `run.${key}`)!.parent).toBe('run');
    expect(chart.nodes.find((n) => n.id === 'run')!.kind).toBe('compound');
    expect(chart.nodes.find((n) => n.id === 'run.completed')!.kind).toBe('state');
  });

  it('labels edges with the event types that take them, and keeps targetless transitions off the edges', () => {
    const chart = chartOf(runMachine);
    const edge = (s: string, t: string) => chart.edges.find((e) => e.id === edgeId(`run.${s}`, `run.${t}`));
    expect(edge('queued', 'running')!.events).toEqual(['ContainerStarted']);
    // Two guarded alternatives of one event to one target are one edge, one label.
    expect(edge('running', 'finishing')!.events).toEqual(['RunScriptEnded', 'ContainerExited', 'ManagementCodeExited']);
    // A root-level transition leaves the machine's root: from any state.
    expect(chart.edges.find((e) => e.id === edgeId('run', 'run.failed'))!.events).toEqual(['RunFailed']);
    expect(chart.edges.some((e) => e.source === e.target && e.events.includes('MetricsWrittenBack'))).toBe(false);
    expect(chart.nodes.find((n) => n.id === 'run.running')!.internal).toContain('MetricsWrittenBack');
    expect(chart.edges.find((e) => e.initial)!.id).toBe(edgeId(initialId('run'), 'run.notStarted'));
  });

  it('nests compound states and marks final ones, for every chart', () => {
    const ws = chartOf(CHARTS.workspace.machine);
    expect(ws.nodes.find((n) => n.id === 'workspace.provisioning')!.kind).toBe('compound');
    expect(ws.nodes.find((n) => n.id === 'workspace.provisioning.grants')!.parent).toBe('workspace.provisioning');
    expect(ws.nodes.find((n) => n.id === 'workspace.failed')!.kind).toBe('final');
    expect(ws.edges.some((e) => e.id === edgeId(initialId('workspace.provisioning'), 'workspace.provisioning.keyVault'))).toBe(true);
    // A self-transition with a target is an edge (the web service's keys changing while it stays Healthy).
    const svc = chartOf(CHARTS.webservice.machine);
    expect(svc.edges.find((e) => e.id === edgeId('webservice.Healthy', 'webservice.Healthy'))!.events).toEqual(['ServiceKeyRegenerated', 'WebserviceRestored']);
    for (const kind of Object.keys(CHARTS) as ChartKind[]) {
      const chart = chartOf(CHARTS[kind].machine);
      const ids = new Set(chart.nodes.map((n) => n.id));
      for (const e of chart.edges) expect(ids.has(e.source) && ids.has(e.target), e.id).toBe(true);
    }
  });
});

describe('liveAggregates', () => {
  it('folds each aggregate of the shown events to its current state', () => {
    const all = byKey(session());
    expect([...all.keys()]).toEqual(['workspace:ws_1', 'cluster:ws_1/cpu', 'run:r1', 'node:ws_1/cpu/node-1']);
    expect(all.get('run:r1')!.current).toBe('completed');
    expect(all.get('run:r1')!.label).toBe('run r1');
    expect(all.get('workspace:ws_1')!.current).toBe('provisioning.storage');
    expect(all.get('workspace:ws_1')!.active).toEqual(['workspace.provisioning', 'workspace.provisioning.storage']);
    expect(all.get('node:ws_1/cpu/node-1')!.current).toBe('idle');
  });

  it('gives an earlier state at an earlier position of the slider', () => {
    const events = session();
    const end = byKey(events).get('run:r1')!;
    const earlier = byKey(events, 14).get('run:r1')!;
    expect(earlier.current).toBe('running');
    expect(earlier.current).not.toBe(end.current);
    expect(byKey(events, 10).get('run:r1')!.current).toBe('queued');
    // Before its first fact an aggregate is not there at all.
    expect(byKey(events, 4).has('run:r1')).toBe(false);
    expect(byKey(events, 12).get('node:ws_1/cpu/node-1')!.current).toBe('idle');
    expect(byKey(events, 13).get('node:ws_1/cpu/node-1')!.current).toBe('running');
  });

  it('names the fact that caused the last transition, with its log position and the edge it took', () => {
    const events = session();
    expect(byKey(events).get('run:r1')!.last).toEqual({ from: 'finishing', to: 'completed', event: 'RunCompleted', position: 17, edge: 'run.finishing->run.completed' });
    // Facts after it that the state takes without leaving (a token revoked, a node released) are not transitions.
    expect(byKey(events, 16).get('run:r1')!.last).toMatchObject({ from: 'running', to: 'finishing', event: 'RunScriptEnded', position: 16 });
    expect(byKey(events, 15).get('run:r1')!.last).toMatchObject({ from: 'queued', to: 'running', event: 'ContainerStarted', position: 14 });
    // The first fact starts the machine: the initial arrow.
    expect(byKey(events, 5).get('run:r1')!.last).toEqual({ to: 'notStarted', event: 'RunSubmitted', position: 5, edge: edgeId(initialId('run'), 'run.notStarted') });
    // A node's facts come from the compute's stream and the run's.
    expect(byKey(events).get('node:ws_1/cpu/node-1')!.last).toMatchObject({ from: 'running', to: 'idle', event: 'NodeReleased', position: 20, edge: 'node.running->node.idle' });
    // Every last edge is one the chart draws.
    for (const a of liveAggregates(events)) {
      if (a.kind === 'cluster') continue;
      expect(chartOf(CHARTS[a.kind].machine).edges.some((e) => e.id === a.last.edge), a.key).toBe(true);
    }
  });

  it('folds forward as the log grows and again from the start when the slider goes back', () => {
    const events = session();
    const folder = new AggregateFolder(events);
    for (const n of [10, 14, 20, 12, 20, 4, 17]) expect(folder.at(n), `at ${n}`).toEqual(liveAggregates(events, n));
    expect(new Map(folder.at(14).map((a) => [a.key, a.current])).get('run:r1')).toBe('running');
  });

  it('going back past its checkpoints folds from the nearest one, and gives what a fold from the start gives', () => {
    // A long log: the session tiled with fresh ids, so its aggregates run on past several checkpoints.
    const one = session();
    const events: StoredEvent[] = [];
    for (let copy = 0; events.length < AGGREGATE_CHECKPOINT_EVERY * 4 + 123; copy++) {
      for (const e of one) events.push({ ...(JSON.parse(JSON.stringify(e).replaceAll('ws_1', `ws_${copy}`).replaceAll('"r1"', `"r${copy}"`).replaceAll('run-r1', `run-r${copy}`).replaceAll('cmp_1', `cmp_${copy}`)) as StoredEvent), position: events.length + 1 });
    }
    const folder = new AggregateFolder(events);
    for (const n of [events.length, AGGREGATE_CHECKPOINT_EVERY * 2 + 7, AGGREGATE_CHECKPOINT_EVERY * 3 + 1, 5, AGGREGATE_CHECKPOINT_EVERY * 4, AGGREGATE_CHECKPOINT_EVERY + 999]) {
      expect(folder.at(n), `at ${n}`).toEqual(liveAggregates(events, n));
    }
  });

  it('picks the aggregate of the selected event, else the one changed last', () => {
    const events = session();
    const all = liveAggregates(events);
    expect(defaultAggregate(all)!.key).toBe('node:ws_1/cpu/node-1');
    expect(defaultAggregate(all, 7)!.key).toBe('run:r1');
    expect(defaultAggregate(all, 3)!.key).toBe('workspace:ws_1');
    // NodeAssigned is in the run's stream and moves the node: the node is what it shows.
    expect(defaultAggregate(all, 13)!.key).toBe('node:ws_1/cpu/node-1');
    expect(defaultAggregate(liveAggregates(events, 17))!.key).toBe('run:r1');
  });
});

describe('clusterStateOf', () => {
  it("folds the cluster's workflow: its queue, then its node and who has it", () => {
    const events = session();
    expect(clusterStateOf(events, 10, 'cluster:ws_1/cpu')!.queue).toEqual(['r1']);
    const provisioned = clusterStateOf(events, 12, 'cluster:ws_1/cpu')!;
    expect(provisioned.nodes).toMatchObject([{ node: 'node-1', state: 'idle', scaleDownAtMs: T0 + 7_000 + 120_000 }]);
    expect(clusterStateOf(events, 13, 'cluster:ws_1/cpu')!.nodes).toMatchObject([{ node: 'node-1', state: 'running', run: 'r1' }]);
    expect(clusterStateOf(events, 13, 'cluster:ws_1/cpu')!.queue).toEqual([]);
    expect(clusterStateOf(events, 3, 'cluster:ws_1/cpu')).toBeUndefined();
  });
});

describe('layout', () => {
  it('asks elkjs for every node and edge of the chart, and reads a box for each back', async () => {
    const chart = chartOf(CHARTS.node.machine);
    const graph = elkGraphOf(chart);
    expect(graph.children!.map((c) => c.id)).toEqual(['node']);
    const layout = await layoutChart(chart);
    for (const n of chart.nodes) expect(layout.nodes[n.id]!.width, n.id).toBeGreaterThan(0);
    for (const e of chart.edges) expect(layout.edges[e.id]!.points.length, e.id).toBeGreaterThanOrEqual(2);
    const root = layout.nodes['node']!;
    const idle = layout.nodes['node.idle']!;
    expect(idle.x).toBeGreaterThanOrEqual(root.x);
    expect(idle.y + idle.height).toBeLessThanOrEqual(root.y + root.height);
  });

  it('breaks long event names into lines at their words', () => {
    expect(labelLines(['RunCancelRequested'])).toEqual(['RunCancel', 'Requested']);
    expect(labelLines(['RunFailed', 'NodeReleased'])).toEqual(['RunFailed', 'NodeReleased']);
  });
});

describe('state paths', () => {
  it('writes nested values as paths and lists every active state', () => {
    expect(statePath({ provisioning: 'grants' })).toBe('provisioning.grants');
    expect(activeIds('image', { making: 'building' })).toEqual(['image.making', 'image.making.building']);
  });
});
