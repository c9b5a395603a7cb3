import { applyToWorld, emptyWorld, type EventStore, type StoredEvent, type WorldState } from '@amlsim/core';
import { aggregateStates, type SessionCheckpoint } from '@amlsim/platform';

export type ReplayReport = {
  sessions: Array<{ session: string; position: number; events: number; divergences: string[] }>;
  ok: boolean;
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
export const replay = (store: EventStore, onProgress?: (n: number) => void): ReplayReport => {
  const checkpoints = new Map(store.loadCheckpoints().map((c) => [c.name.replace(/^session:/, ''), c]));
  const worlds = new Map<string, WorldState>();
  const counts = new Map<string, number>();
  let n = 0;
  for (const e of store.readAll() as Iterable<StoredEvent>) {
    const session = e.meta.session;
    const cp = checkpoints.get(session);
    if (cp && e.position > cp.position) continue;
    let w = worlds.get(session);
    if (!w) worlds.set(session, (w = emptyWorld()));
    applyToWorld(w, e);
    counts.set(session, (counts.get(session) ?? 0) + 1);
    if (++n % 100_000 === 0) onProgress?.(n);
  }
  const sessions: ReplayReport['sessions'] = [];
  for (const [session, world] of worlds) {
    const cp = checkpoints.get(session);
    const divergences: string[] = [];
    if (!cp) divergences.push('no saved state for this session (it did not finish); nothing to compare');
    else {
      const saved = cp.state as SessionCheckpoint;
      const replayed: SessionCheckpoint = JSON.parse(JSON.stringify({ world, aggregates: aggregateStates(store, world) }));
      diffJson(replayed, saved, '$', divergences);
    }
    sessions.push({ session, position: world.position, events: counts.get(session) ?? 0, divergences });
  }
  return { sessions, ok: sessions.every((s) => s.divergences.length === 0 || s.divergences[0]!.startsWith('no saved state')) };
};
