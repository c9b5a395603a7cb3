import { runAggregate, runStatusOf, type MetricRow, type RunStatus, type StoredEvent } from '@amlsim/core';

/**
 * The Runs tab's data (packages/web/src/views/runs.tsx), from the shown events alone.
 *
 * A run's status history is what its stream folds to through the run statechart
 * (packages/core/src/run/run.machine.ts), noted after each fact, as `foldRun` does for
 * getRunStatusHistory (packages/core/src/run/run-fold.ts); here each status also keeps the fact
 * that entered it, so a click opens it. Metrics are the scalar rows the compute target wrote back
 * (MetricsWrittenBack, S8.4), one series per name, by step.
 */
export type StatusStep = { status: RunStatus; position: number; at: string; type: string };

export type MetricSeries = {
  name: string;
  /** Steps, ascending, and the value logged at each (numbers only: a chart needs them). */
  steps: number[];
  values: number[];
};

export type RunSummary = {
  runId: string;
  workspace: string;
  experiment: string;
  compute: string;
  submittedPosition: number;
  status: RunStatus | undefined;
  history: StatusStep[];
  metrics: MetricSeries[];
  /** Scalar metrics whose values are not numbers (strings, booleans): listed, not charted. */
  otherMetrics: Array<{ name: string; last: string; count: number }>;
  /** Why a run ended badly, when a fact says (RunFailed, RunCanceled). */
  reason?: string;
};

const RUN_STREAM = /^run-/;

/** The runs of the first `count` events of a session, in the order they were submitted. */
export function runHistories(events: readonly StoredEvent[], count: number = events.length): RunSummary[] {
  const streams = new Map<string, StoredEvent[]>();
  const n = Math.max(0, Math.min(count, events.length));
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    if (!RUN_STREAM.test(e.stream)) continue;
    let list = streams.get(e.stream);
    if (!list) streams.set(e.stream, (list = []));
    list.push(e);
  }
  const runs: RunSummary[] = [];
  for (const stream of streams.values()) {
    const first = stream[0]!;
    if (first.type !== 'RunSubmitted') continue;
    const d = first.data as Record<string, unknown>;
    const history: StatusStep[] = [];
    let status: RunStatus | undefined;
    runAggregate.fold(stream, (snapshot, e) => {
      const now = runStatusOf(snapshot);
      if (now && now !== status) history.push({ status: now, position: e.position, at: e.meta.at, type: e.type });
      if (now) status = now;
    });
    const numeric = new Map<string, Array<[number, number]>>();
    const other = new Map<string, { last: string; count: number }>();
    let reason: string | undefined;
    for (const e of stream) {
      if (e.type === 'MetricsWrittenBack') {
        for (const row of (e.data['rows'] as MetricRow[] | undefined) ?? []) {
          if (row.kind !== 'scalar') continue;
          if (typeof row.value === 'number' && Number.isFinite(row.value)) {
            let points = numeric.get(row.name);
            if (!points) numeric.set(row.name, (points = []));
            points.push([row.step, row.value]);
          } else {
            const o = other.get(row.name) ?? { last: '', count: 0 };
            o.last = String(row.value);
            o.count++;
            other.set(row.name, o);
          }
        }
      }
      if ((e.type === 'RunFailed' || e.type === 'RunCanceled') && typeof e.data['reason'] === 'string') reason = e.data['reason'];
    }
    const metrics: MetricSeries[] = [...numeric].map(([name, points]) => {
      // A stable sort: two values logged at one step keep the order they were written in.
      points.sort((a, b) => a[0] - b[0]);
      return { name, steps: points.map((p) => p[0]), values: points.map((p) => p[1]) };
    });
    const summary: RunSummary = {
      runId: String(d['runId']),
      workspace: String(d['workspace'] ?? ''),
      experiment: String(d['experiment'] ?? ''),
      compute: String(d['compute'] ?? ''),
      submittedPosition: first.position,
      status,
      history,
      metrics,
      otherMetrics: [...other].map(([name, o]) => ({ name, ...o })),
    };
    if (reason) summary.reason = reason;
    runs.push(summary);
  }
  return runs.sort((a, b) => a.submittedPosition - b.submittedPosition);
}
