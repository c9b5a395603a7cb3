import { foldWorld, type StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import { insightsRows } from './insights-rows';

const request = (position: number, status: number): StoredEvent => ({
  type: 'ScoringRequestRecorded',
  position,
  stream: 'appinsights-ws_1',
  version: position,
  data: {
    workspaceId: 'ws_1',
    workspace: 'ws1',
    serviceId: 'svc_1',
    service: 'svc',
    HTTPMethod: 'POST',
    UserAgent: 'ua',
    ComputeType: 'ACI',
    RequestUrl: 'https://127.0.0.1:1/api/v1/service/svc/score',
    StatusCode: status,
    RequestId: `req-${position}`,
    DurationMs: 12,
  },
  meta: { at: `2026-01-01T10:00:0${position}.000Z`, correlationId: 'c', causationId: 'c', session: 's' },
});

describe('insightsRows', () => {
  const events = [request(1, 200), { ...request(2, 0), type: 'PlatformTelemetryPushed' }, request(3, 401)];

  it('holds the records of the App Insights read model with the S7.3 fields, and where each came from', () => {
    const rows = insightsRows(events);
    const { position: _p, workspace: _w, ...first } = rows[0]!;
    expect(first).toEqual(foldWorld(events).appInsights['ws_1']![0]);
    expect(rows.map((r) => [r.position, r.StatusCode, r.RequestId])).toEqual([
      [1, 200, 'req-1'],
      [3, 401, 'req-3'],
    ]);
  });

  it('rebuilds at an earlier point', () => {
    expect(insightsRows(events, 2)).toHaveLength(1);
    expect(insightsRows(events, 0)).toEqual([]);
  });
});
