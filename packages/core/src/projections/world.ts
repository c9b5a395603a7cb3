import type { StoredEvent } from '../events/envelope';
import { accessProjection, type AccessState } from './access';
import { activityLogProjection, type ActivityLogState } from './activity-log';
import { directoryProjection, type DirectoryState } from './directory';
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
};

export const PROJECTIONS = [directoryProjection, accessProjection, workspacesProjection, activityLogProjection, workspaceMetricsProjection] as const;

export const emptyWorld = (): WorldState => ({
  position: 0,
  directory: directoryProjection.initial(),
  access: accessProjection.initial(),
  workspaces: workspacesProjection.initial(),
  activityLog: activityLogProjection.initial(),
  workspaceMetrics: workspaceMetricsProjection.initial(),
});

/** Fold one event into every read model (mutates and returns `w`). */
export const applyToWorld = (w: WorldState, e: StoredEvent): WorldState => {
  w.directory = directoryProjection.apply(w.directory, e);
  w.access = accessProjection.apply(w.access, e);
  w.workspaces = workspacesProjection.apply(w.workspaces, e);
  w.activityLog = activityLogProjection.apply(w.activityLog, e);
  w.workspaceMetrics = workspaceMetricsProjection.apply(w.workspaceMetrics, e);
  w.position = e.position;
  return w;
};

export const foldWorld = (events: Iterable<StoredEvent>): WorldState => {
  const w = emptyWorld();
  for (const e of events) applyToWorld(w, e);
  return w;
};
