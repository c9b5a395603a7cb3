import { foldRun, foldWorkspace, workspaceStateSummary, type EventStore, type WorldState, STREAMS } from '@amlsim/core';
import { streams } from './platform-context';

/**
 * What a session derived from its events, saved beside the log: `amlsim replay` folds the log
 * again from nothing and compares, so any divergence between live state and the log shows.
 */
export type SessionCheckpoint = {
  world: WorldState;
  aggregates: Record<string, unknown>;
};

export const aggregateStates = (store: EventStore, world: WorldState): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const id of Object.keys(world.workspaces.byId).sort()) {
    const snapshot = foldWorkspace(store.readStream(streams.workspace(id)));
    if (snapshot) out[streams.workspace(id)] = workspaceStateSummary(snapshot);
  }
  for (const runId of Object.keys(world.runMetrics).sort()) {
    const run = foldRun(store.readStream(STREAMS.run(runId)));
    if (run) out[STREAMS.run(runId)] = { state: run.snapshot.value, history: run.history, context: run.snapshot.context };
  }
  return out;
};

export const takeCheckpoint = (store: EventStore, session: string, world: WorldState): void => {
  const checkpoint: SessionCheckpoint = { world, aggregates: aggregateStates(store, world) };
  store.saveCheckpoint(`session:${session}`, world.position, JSON.parse(JSON.stringify(checkpoint)));
};
