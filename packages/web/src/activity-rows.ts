import { activityLogProjection, applyProjection, type ActivityLogEntry, type StoredEvent } from '@amlsim/core';

/**
 * The Activity log tab's rows (packages/web/src/views/activity.tsx), from the shown events alone:
 * each entry of the activity log read model (packages/core/src/projections/activity-log.ts),
 * with the fact that made it, and between them the seed's documented gaps (S7.2): a training run
 * was started or a model registered, and the activity log has no entry for it.
 *
 * The entries are folded here with the read model's own projection, so an entry keeps the log
 * position of its fact (a click opens it). A gap is shown only while the read model has no
 * handler for its type: were the activity log ever to record run starts, the marker would go.
 */
export type ActivityRow =
  | { kind: 'entry'; position: number; entry: ActivityLogEntry }
  | { kind: 'gap'; position: number; at: string; type: string; what: string; initiator: string; scope: string };

/** The actions S7.2 says the activity log does not record, by the fact that shows them happened. */
export const S72_GAPS: Readonly<Record<string, (e: StoredEvent) => string>> = {
  RunSubmitted: (e) => `training run ${String(e.data['runId'])} started (experiment ${String(e.data['experiment'])})`,
  ModelRegistered: (e) => `model ${String(e.data['model'])} version ${String(e.data['version'])} registered`,
};

const isLogged = (type: string): boolean => type in activityLogProjection.on;

export function activityRows(events: readonly StoredEvent[], count: number = events.length): ActivityRow[] {
  const state = activityLogProjection.initial();
  const rows: ActivityRow[] = [];
  const n = Math.max(0, Math.min(count, events.length));
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    const before = state.entries.length;
    applyProjection(activityLogProjection, state, e);
    for (let k = before; k < state.entries.length; k++) rows.push({ kind: 'entry', position: e.position, entry: state.entries[k]! });
    const gap = S72_GAPS[e.type];
    if (gap && !isLogged(e.type)) {
      rows.push({ kind: 'gap', position: e.position, at: e.meta.at, type: e.type, what: gap(e), initiator: e.meta.principal ?? 'system', scope: String(e.data['workspace'] ?? '') });
    }
  }
  return rows;
}
