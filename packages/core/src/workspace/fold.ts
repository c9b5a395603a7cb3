import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { StoredEvent } from '../events/envelope';
import type { EventDataMap } from '../events/catalog';
import { workspaceMachine, type WorkspaceMachineEvent } from './workspace.machine';

export type WorkspaceSnapshot = SnapshotFrom<typeof workspaceMachine>;
export type Effect = { type: string; params: unknown };

/** Effects are the machine's named actions; XState's own (assign, …) never leave `transition`. */
const EFFECTS = new Set(['provisionResource', 'grantIdentityAccess', 'completeCreation', 'rollBack']);

const effectsOf = (actions: ReadonlyArray<{ type: string; params?: unknown }>): Effect[] =>
  actions.filter((a) => EFFECTS.has(a.type)).map((a) => ({ type: a.type, params: a.params }));

/** Start a workspace from its first fact. */
export const startWorkspace = (requested: EventDataMap['WorkspaceCreationRequested']): [WorkspaceSnapshot, Effect[]] => {
  const [snapshot, actions] = initialTransition(workspaceMachine, requested);
  return [snapshot, effectsOf(actions)];
};

/** Advance a workspace by one fact; returns the effects the machine names for it. */
export const advanceWorkspace = (snapshot: WorkspaceSnapshot, event: WorkspaceMachineEvent): [WorkspaceSnapshot, Effect[]] => {
  const [next, actions] = transition(workspaceMachine, snapshot, event);
  return [next, effectsOf(actions)];
};

/** Would the machine accept this fact now? The "decide" half of a command. */
export const workspaceAccepts = (snapshot: WorkspaceSnapshot, event: WorkspaceMachineEvent): boolean => snapshot.can(event);

/** Rebuild a workspace's state from its stream alone (replay: no effect is run). */
export const foldWorkspace = (events: readonly StoredEvent[]): WorkspaceSnapshot | undefined => {
  const [first, ...rest] = events;
  if (!first || first.type !== 'WorkspaceCreationRequested') return undefined;
  let [snapshot] = startWorkspace(first.data as EventDataMap['WorkspaceCreationRequested']);
  for (const e of rest) [snapshot] = advanceWorkspace(snapshot, { type: e.type, ...e.data } as WorkspaceMachineEvent);
  return snapshot;
};

/** A stable, comparable summary of a workspace state (for checkpoints and `amlsim replay`). */
export const workspaceStateSummary = (snapshot: WorkspaceSnapshot): { state: unknown; context: unknown } => ({
  state: snapshot.value,
  context: snapshot.context,
});
