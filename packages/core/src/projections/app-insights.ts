import type { EventDataMap } from '../events/catalog';
import { defineProjection } from './projection';

type ScoringFields = Pick<EventDataMap['ScoringRequestRecorded'], 'service' | 'HTTPMethod' | 'UserAgent' | 'ComputeType' | 'RequestUrl' | 'StatusCode' | 'RequestId'>;

/** One App Insights request record (S7.3 fields), as `queryAppInsights` returns it. */
export type AppInsightsRecord = ScoringFields & { Duration: number; Timestamp: string };

/** Application Insights of each workspace (S7.3): one record per scoring request, by workspace id. */
export type AppInsightsState = Record<string, AppInsightsRecord[]>;

export const appInsightsProjection = defineProjection<AppInsightsState>({
  name: 'appInsights',
  initial: () => ({}),
  on: {
    ScoringRequestRecorded: (s, e) => {
      (s[e.data.workspaceId] ??= []).push({
        service: e.data.service,
        HTTPMethod: e.data.HTTPMethod,
        UserAgent: e.data.UserAgent,
        ComputeType: e.data.ComputeType,
        RequestUrl: e.data.RequestUrl,
        StatusCode: e.data.StatusCode,
        RequestId: e.data.RequestId,
        Duration: e.data.DurationMs,
        Timestamp: e.meta.at,
      });
    },
  },
});
