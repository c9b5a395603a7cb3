import { defineProjection } from './projection';

export type AppInsightsRecord = {
  service: string;
  HTTPMethod: string;
  UserAgent: string;
  ComputeType: string;
  RequestUrl: string;
  StatusCode: number;
  RequestId: string;
  Duration: number;
  Timestamp: string;
};

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
