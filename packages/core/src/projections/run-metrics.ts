import type { MetricRow } from '../events/catalog';
import { defineProjection } from './projection';

export type RunRecord = {
  runId: string;
  workspaceId: string;
  workspace: string;
  experiment: string;
  compute: string;
  /** Scalar metrics by name, in step order (the latest is what `getMetrics` shows). */
  metrics: Record<string, Array<number | string | boolean>>;
  lists: Record<string, Array<number | string | boolean>>;
  tables: Record<string, Array<Record<string, number | string | boolean>>>;
  tags: Record<string, string>;
  outputs: string[];
};

/**
 * The metric store (S4.4, S8.4): the Cosmos DB in the platform's subscription, as a read model
 * of what compute targets wrote back. Users reach it only through the platform's API.
 */
export type RunMetricsState = Record<string, RunRecord>;

const applyRow = (r: RunRecord, row: MetricRow): void => {
  switch (row.kind) {
    case 'scalar':
      (r.metrics[row.name] ??= []).push(row.value);
      break;
    case 'list':
      (r.lists[row.name] ??= []).push(...row.values);
      break;
    case 'row':
      (r.tables[row.name] ??= []).push(row.row);
      break;
    case 'tag':
      r.tags[row.name] = row.value;
      break;
  }
};

export const runMetricsProjection = defineProjection<RunMetricsState>({
  name: 'runMetrics',
  initial: () => ({}),
  on: {
    RunSubmitted: (s, e) => {
      s[e.data.runId] = {
        runId: e.data.runId,
        workspaceId: e.data.workspaceId,
        workspace: e.data.workspace,
        experiment: e.data.experiment,
        compute: e.data.compute,
        metrics: {},
        lists: {},
        tables: {},
        tags: {},
        outputs: [],
      };
    },
    MetricsWrittenBack: (s, e) => {
      const r = s[e.data.runId];
      if (r) for (const row of e.data.rows) applyRow(r, row);
    },
    OutputUploaded: (s, e) => {
      s[e.data.runId]?.outputs.push(e.data.path);
    },
  },
});
