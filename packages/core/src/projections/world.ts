import type { StoredEvent } from '../events/envelope';
import { accessProjection, type AccessState } from './access';
import { activityLogProjection, type ActivityLogState } from './activity-log';
import { directoryProjection, type DirectoryState } from './directory';
import type { Projection } from './projection';
import { appInsightsProjection, type AppInsightsState } from './app-insights';
import { webservicesProjection, type WebservicesState } from './webservices';
import { modelsProjection, type ModelsState } from './models';
import { computesProjection, type ComputesState } from './computes';
import { runMetricsProjection, type RunMetricsState } from './run-metrics';
import { workspaceMetricsProjection, type WorkspaceMetricsState } from './workspace-metrics';
import { workspacesProjection, type WorkspacesState } from './workspaces';

/** All read models of one session, folded together from the same events. */
export type WorldState = {
  position: number;
  directory: DirectoryState;
  access: AccessState;
  workspaces: WorkspacesState;
  activityLog: ActivityLogState;
  workspaceMetrics: WorkspaceMetricsState;
  runMetrics: RunMetricsState;
  computes: ComputesState;
  models: ModelsState;
  webservices: WebservicesState;
  appInsights: AppInsightsState;
};

type ReadModelName = Exclude<keyof WorldState, 'position'>;

/** Each read model of the world and the projection that folds it. */
export const PROJECTIONS: { readonly [K in ReadModelName]: Projection<WorldState[K]> } = {
  directory: directoryProjection,
  access: accessProjection,
  workspaces: workspacesProjection,
  activityLog: activityLogProjection,
  workspaceMetrics: workspaceMetricsProjection,
  runMetrics: runMetricsProjection,
  computes: computesProjection,
  models: modelsProjection,
  webservices: webservicesProjection,
  appInsights: appInsightsProjection,
};

type Apply = (w: WorldState, e: StoredEvent) => void;

/** Event type -> the handlers of every read model that reads it: one lookup per event on replay. */
const DISPATCH: ReadonlyMap<string, readonly Apply[]> = (() => {
  const table = new Map<string, Apply[]>();
  for (const [model, projection] of Object.entries(PROJECTIONS) as Array<[ReadModelName, Projection<unknown>]>) {
    for (const [type, handler] of Object.entries(projection.on) as Array<[string, (s: unknown, e: StoredEvent) => void]>) {
      const list = table.get(type) ?? [];
      list.push((w, e) => handler(w[model], e));
      table.set(type, list);
    }
  }
  return table;
})();

export const emptyWorld = (): WorldState => ({
  position: 0,
  directory: PROJECTIONS.directory.initial(),
  access: PROJECTIONS.access.initial(),
  workspaces: PROJECTIONS.workspaces.initial(),
  activityLog: PROJECTIONS.activityLog.initial(),
  workspaceMetrics: PROJECTIONS.workspaceMetrics.initial(),
  runMetrics: PROJECTIONS.runMetrics.initial(),
  computes: PROJECTIONS.computes.initial(),
  models: PROJECTIONS.models.initial(),
  webservices: PROJECTIONS.webservices.initial(),
  appInsights: PROJECTIONS.appInsights.initial(),
});

/** Fold one event into every read model that reads it (mutates and returns `w`). */
export const applyToWorld = (w: WorldState, e: StoredEvent): WorldState => {
  const handlers = DISPATCH.get(e.type);
  if (handlers) for (const apply of handlers) apply(w, e);
  w.position = e.position;
  return w;
};

export const foldWorld = (events: Iterable<StoredEvent>): WorldState => {
  const w = emptyWorld();
  for (const e of events) applyToWorld(w, e);
  return w;
};
