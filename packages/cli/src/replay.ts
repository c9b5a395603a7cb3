import { applyToWorld, clusterDivergence, clusterFactOf, emptyWorld, imageAggregate, runAggregate, streamKindOf, webserviceDivergence, workspaceAggregate, type ClusterSpec, type EventStore, type StoredEvent, type WorldState } from '@amlsim/core';

/** The aggregates whose decisions replay re-runs, by stream kind. */
const AGGREGATES = { run: runAggregate, workspace: workspaceAggregate, image: imageAggregate } as const;
import { aggregateStates, type SessionCheckpoint } from '@amlsim/platform';

export type ReplayReport = {
  /**
   * `inProgress`: the session a live simulator is still writing (it has saved nothing yet, and
   * that is no divergence). Any other session with a divergence, or with no saved state (it did
   * not finish: the simulator was killed), makes the report not ok — unless the next simulator
   * recovered it (`recovered`: a `SessionRecovered` fact ended its unfinished work; it saved
   * nothing of its own to compare, and that is no divergence either).
   */
  sessions: Array<{ session: string; position: number; events: number; divergences: string[]; inProgress?: boolean; recovered?: boolean }>;
  ok: boolean;
};

export type ReplayOptions = {
  onProgress?: (n: number) => void;
  /** A live simulator holds the data dir (its lock says so): the log's last session may still be running. */
  writerLive?: boolean;
};

/** First paths where two JSON values differ (at most `limit`). */
export const diffJson = (a: unknown, b: unknown, path = '$', out: string[] = [], limit = 10): string[] => {
  if (out.length >= limit) return out;
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || a === null || b === null || typeof a !== 'object') {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: saved ${JSON.stringify(b)?.slice(0, 120)}, replayed ${JSON.stringify(a)?.slice(0, 120)}`);
    return out;
  }
  const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
  for (const k of keys) diffJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out, limit);
  return out;
};

/**
 * `amlsim replay`: rebuild every read model and aggregate state of each session from the log
 * alone (no effect is run again) and compare with what the session saved when it ran.
 */
export const replay = (store: EventStore, options: ReplayOptions = {}): ReplayReport => {
  const { onProgress } = options;
  const checkpoints = new Map(store.loadCheckpoints().map((c) => [c.name.replace(/^session:/, ''), c]));
  const worlds = new Map<string, WorldState>();
  const counts = new Map<string, number>();
  const recovered = new Set<string>();
  const streams = new Map<string, StoredEvent[]>();
  // For the web-service statechart, each service's stream; for the cluster workflow (and the
  // node statechart within it), each AmlCompute cluster and the log's cluster facts in order.
  const services = new Map<string, StoredEvent[]>();
  const clusters = new Map<string, { spec: ClusterSpec; session: string; facts: StoredEvent[] }>();
  const clustersOfWorkspace = new Map<string, string[]>();
  let n = 0;
  for (const e of store.readAll() as Iterable<StoredEvent>) {
    const session = e.meta.session;
    if (e.type === 'SessionRecovered') recovered.add(session);
    const kind = streamKindOf(e.stream);
    if (kind === 'run' || kind === 'workspace' || kind === 'image') {
      const list = streams.get(e.stream);
      if (list) list.push(e);
      else streams.set(e.stream, [e]);
    }
    else if (kind === 'service') {
      const list = services.get(e.stream);
      if (list) list.push(e);
      else services.set(e.stream, [e]);
    }
    if (e.type === 'ComputeCreated' && e.data.type === 'AmlCompute') {
      const key = `${e.data.workspaceId}/${e.data.compute}`;
      clusters.set(key, { spec: e.data as unknown as ClusterSpec, session, facts: [] });
      clustersOfWorkspace.set(String(e.data.workspaceId), [...(clustersOfWorkspace.get(String(e.data.workspaceId)) ?? []), key]);
    } else if (clusterFactOf(e)) {
      // A node fact names its cluster; a run's end names only its workspace: each cluster there hears it.
      const keys = 'compute' in e.data ? [`${e.data.workspaceId}/${e.data.compute}`] : (clustersOfWorkspace.get(String(e.data.workspaceId)) ?? []);
      for (const key of keys) clusters.get(key)?.facts.push(e);
    }
    const cp = checkpoints.get(session);
    if (cp && e.position > cp.position) continue;
    let w = worlds.get(session);
    if (!w) worlds.set(session, (w = emptyWorld()));
    applyToWorld(w, e);
    counts.set(session, (counts.get(session) ?? 0) + 1);
    if (++n % 100_000 === 0) onProgress?.(n);
  }
  // Temporal-style: the statecharts of today re-decide every recorded history; a fact one would
  // not take where the log has it means the machine changed under an old log.
  const decided = new Map<string, string[]>();
  const diverged = (session: string, why: string) => decided.set(session, [...(decided.get(session) ?? []), why]);
  const statechartWouldNot = (list: readonly StoredEvent[], stream: string, chart: string, event: StoredEvent, where: string) =>
    diverged(list[0]!.meta.session, `${stream}: the ${chart} statechart would not take ${event.type} (#${event.position}) in ${where}: it decides differently on this log than the one that wrote it`);
  for (const [stream, list] of streams) {
    const kind = streamKindOf(stream) as keyof typeof AGGREGATES;
    const d = AGGREGATES[kind].divergence(list);
    if (d) statechartWouldNot(list, stream, kind, d.event, `state ${JSON.stringify(d.state)}`);
  }
  for (const [stream, list] of services) {
    const d = webserviceDivergence(list);
    if (d) statechartWouldNot(list, stream, 'web service', d.event, `status ${JSON.stringify(d.state ?? 'not deployed')}`);
  }
  for (const { spec, session, facts } of clusters.values()) {
    const d = clusterDivergence(spec, facts);
    if (d) diverged(d.event.meta.session ?? session, `cluster ${spec.workspace}/${spec.compute}: the cluster workflow would not have ${d.event.type} (#${d.event.position}): ${d.why}`);
  }
  const sessions: ReplayReport['sessions'] = [];
  // A writer runs its sessions one after another: only the one that began last can be in progress.
  const last = [...worlds.keys()].at(-1);
  for (const [session, world] of worlds) {
    const cp = checkpoints.get(session);
    const divergences: string[] = [...(decided.get(session) ?? [])];
    if (!cp && options.writerLive && session === last) {
      sessions.push({ session, position: world.position, events: counts.get(session) ?? 0, divergences, inProgress: true });
      continue;
    }
    if (!cp && recovered.has(session)) {
      sessions.push({ session, position: world.position, events: counts.get(session) ?? 0, divergences, recovered: true });
      continue;
    }
    if (!cp) divergences.push('no saved state for this session: it did not finish (the simulator was killed or crashed), so its state cannot be checked');
    else {
      const saved = cp.state as SessionCheckpoint;
      const replayed: SessionCheckpoint = JSON.parse(JSON.stringify({ world, aggregates: aggregateStates(store, world) }));
      diffJson(replayed, saved, '$', divergences);
    }
    sessions.push({ session, position: world.position, events: counts.get(session) ?? 0, divergences });
  }
  return { sessions, ok: sessions.every((s) => s.divergences.length === 0) };
};
