import { defineProjection } from './projection';

/** Azure Monitor workspace metrics (S7.1): counters of runs, deployments and registrations, by workspace id. */
export type WorkspaceMetricsState = Record<string, { runs: number; deployments: number; registrations: number }>;

export const workspaceMetricsProjection = defineProjection<WorkspaceMetricsState>({
  name: 'workspaceMetrics',
  initial: () => ({}),
  on: {
    WorkspaceCreated: (s, e) => {
      s[e.data.workspaceId] = { runs: 0, deployments: 0, registrations: 0 };
    },
    RunSubmitted: (s, e) => {
      const m = s[e.data.workspaceId];
      if (m) m.runs++;
    },
    ModelRegistered: (s, e) => {
      const m = s[e.data.workspaceId];
      if (m) m.registrations++;
    },
    WebserviceDeploymentRequested: (s, e) => {
      const m = s[e.data.workspaceId];
      if (m) m.deployments++;
    },
  },
});
