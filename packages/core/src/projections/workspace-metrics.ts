import { defineProjection } from './projection';

/** Azure Monitor workspace metrics (S7.1): counters of runs, deployments and registrations. */
export type WorkspaceMetricsState = Record<string, { runs: number; deployments: number; registrations: number }>;

/** Which event increments which counter. Types of later features are listed so the fold needs no change when they land. */
const COUNTED: Readonly<Record<string, 'runs' | 'deployments' | 'registrations'>> = {
  RunSubmitted: 'runs',
  WebserviceDeploymentRequested: 'deployments',
  ModelRegistered: 'registrations',
};

export const workspaceMetricsProjection = defineProjection<WorkspaceMetricsState>({
  name: 'workspaceMetrics',
  initial: () => ({}),
  apply: (s, e) => {
    if (e.type === 'WorkspaceCreated') {
      s[String(e.data.workspaceId)] = { runs: 0, deployments: 0, registrations: 0 };
      return s;
    }
    const counter = COUNTED[e.type];
    const metrics = counter ? s[String(e.data.workspaceId)] : undefined;
    if (counter && metrics) metrics[counter]++;
    return s;
  },
});
