import type { AppInsightsRecord, StoredEvent } from '@amlsim/core';

/**
 * The App Insights tab's rows (packages/web/src/views/insights.tsx): every scoring request the
 * App Insights read model holds (packages/core/src/projections/app-insights.ts), with the S7.3
 * fields, in the order they were recorded, each with the log position of its
 * ScoringRequestRecorded (a click opens it) and the workspace it was recorded in.
 */
export type InsightsRow = AppInsightsRecord & { position: number; workspace: string };

export function insightsRows(events: readonly StoredEvent[], count: number = events.length): InsightsRow[] {
  const rows: InsightsRow[] = [];
  const n = Math.max(0, Math.min(count, events.length));
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    if (e.type !== 'ScoringRequestRecorded') continue;
    const d = e.data;
    rows.push({
      position: e.position,
      workspace: String(d['workspace'] ?? ''),
      service: String(d['service'] ?? ''),
      HTTPMethod: String(d['HTTPMethod'] ?? ''),
      UserAgent: String(d['UserAgent'] ?? ''),
      ComputeType: String(d['ComputeType'] ?? ''),
      RequestUrl: String(d['RequestUrl'] ?? ''),
      StatusCode: Number(d['StatusCode']),
      RequestId: String(d['RequestId'] ?? ''),
      Duration: Number(d['DurationMs']),
      Timestamp: e.meta.at,
    });
  }
  return rows;
}
