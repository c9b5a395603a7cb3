import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { appInsightsProjection } from './app-insights';
import { applyProjection } from './projection';
import { runMetricsProjection } from './run-metrics';

/** The metric store (S4.4, S8.4) and App Insights (S7.3) read models. */
let n = 0;
const ev = (type: string, data: Record<string, unknown>, at = '2025-01-01T09:00:00.000Z'): StoredEvent =>
  ({ position: ++n, stream: 's', version: n, type, data, meta: { at, correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;

describe('run metrics read model', () => {
  it('keeps scalars in step order, lists flattened, table rows, the latest tag, and outputs, per run', () => {
    const events = [
      ev('RunSubmitted', { runId: 'r1', workspaceId: 'w1', workspace: 'ws1', experiment: 'exp', compute: 'cpu' }),
      ev('MetricsWrittenBack', { runId: 'r1', rows: [{ kind: 'scalar', name: 'loss', value: 0.5 }, { kind: 'list', name: 'acc', values: [1, 2] }, { kind: 'tag', name: 'stage', value: 'a' }] }),
      ev('MetricsWrittenBack', { runId: 'r1', rows: [{ kind: 'scalar', name: 'loss', value: 0.25 }, { kind: 'list', name: 'acc', values: [3] }, { kind: 'row', name: 't', row: { x: 1 } }, { kind: 'tag', name: 'stage', value: 'b' }] }),
      ev('MetricsWrittenBack', { runId: 'ghost', rows: [{ kind: 'scalar', name: 'loss', value: 9 }] }),
      ev('OutputUploaded', { runId: 'r1', path: 'outputs/model.json' }),
      ev('OutputUploaded', { runId: 'ghost', path: 'x' }),
    ];
    const s = events.reduce((st, e) => applyProjection(runMetricsProjection, st, e), runMetricsProjection.initial());
    expect(s).toEqual({
      r1: { runId: 'r1', workspaceId: 'w1', workspace: 'ws1', experiment: 'exp', compute: 'cpu', metrics: { loss: [0.5, 0.25] }, lists: { acc: [1, 2, 3] }, tables: { t: [{ x: 1 }] }, tags: { stage: 'b' }, outputs: ['outputs/model.json'] },
    });
  });
});

describe('App Insights read model', () => {
  it('one record per scoring request, by workspace, with the S7.3 fields and the time it was recorded', () => {
    const rec = (workspaceId: string, RequestId: string) =>
      ev('ScoringRequestRecorded', { workspaceId, service: 'svc', HTTPMethod: 'POST', UserAgent: 'ua', ComputeType: 'ACI', RequestUrl: '/score', StatusCode: 200, RequestId, DurationMs: 12, extra: 'dropped' }, '2025-01-01T09:00:01.000Z');
    const s = [rec('w1', 'a'), rec('w2', 'b'), rec('w1', 'c')].reduce((st, e) => applyProjection(appInsightsProjection, st, e), appInsightsProjection.initial());
    expect(s.w1!.map((r) => r.RequestId)).toEqual(['a', 'c']);
    expect(s.w2).toEqual([{ service: 'svc', HTTPMethod: 'POST', UserAgent: 'ua', ComputeType: 'ACI', RequestUrl: '/score', StatusCode: 200, RequestId: 'b', Duration: 12, Timestamp: '2025-01-01T09:00:01.000Z' }]);
  });
});
