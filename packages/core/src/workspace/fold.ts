import type { SnapshotFrom } from 'xstate';
import { defineAggregate, type EffectOf } from '../aggregate/define-aggregate';
import type { EventDataMap } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { workspaceMachine, type WorkspaceMachineEvent } from './workspace.machine';

export type WorkspaceSnapshot = SnapshotFrom<typeof workspaceMachine>;

/** The effects the workspace statechart names, carried out by the resource provider. */
export const WORKSPACE_EFFECTS = ['provisionResource', 'grantIdentityAccess', 'completeCreation', 'rollBack'] as const;
export type WorkspaceEffect = EffectOf<typeof workspaceMachine, (typeof WORKSPACE_EFFECTS)[number]>;

export const workspaceAggregate = defineAggregate(workspaceMachine, { startsWith: 'WorkspaceCreationRequested', effects: WORKSPACE_EFFECTS });

/** Start a workspace from its first fact. */
export const startWorkspace = (requested: EventDataMap['WorkspaceCreationRequested'], position?: number): [WorkspaceSnapshot, WorkspaceEffect[]] =>
  workspaceAggregate.start(requested, position);

/** Advance a workspace by one fact; returns the effects the machine names for it. */
export const advanceWorkspace = (snapshot: WorkspaceSnapshot, event: WorkspaceMachineEvent, position?: number): [WorkspaceSnapshot, WorkspaceEffect[]] =>
  workspaceAggregate.advance(snapshot, event, position);

/** Would the machine accept this fact now? The "decide" half of a command. */
export const workspaceAccepts = (snapshot: WorkspaceSnapshot, event: WorkspaceMachineEvent): boolean => workspaceAggregate.accepts(snapshot, event);

/** Rebuild a workspace's state from its stream alone (replay: no effect is run). */
export const foldWorkspace = (events: readonly StoredEvent[]): WorkspaceSnapshot | undefined => workspaceAggregate.fold(events);

/** A stable, comparable summary of a workspace state (for checkpoints and `amlsim replay`). */
export const workspaceStateSummary = (snapshot: WorkspaceSnapshot): { state: unknown; context: unknown } => ({
  state: snapshot.value,
  context: snapshot.context,
});
