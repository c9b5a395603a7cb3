import type { SnapshotFrom } from 'xstate';
import { defineAggregate, type EffectOf } from '../aggregate/define-aggregate';
import type { EventDataMap } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { runMachine, type RunMachineEvent, type RunStatus } from './run.machine';

export type RunSnapshot = SnapshotFrom<typeof runMachine>;

/** The effects the run statechart names (packages/core/src/run/run.machine.ts), carried out by the platform's run manager. */
export const RUN_EFFECTS = [
  'issueRunToken',
  'prepareImage',
  'writeManagementCode',
  'requestNode',
  'startContainer',
  'startOnVm',
  'stopRun',
  'finishRun',
  'revokeRunToken',
  'releaseNode',
] as const;
export type RunEffect = EffectOf<typeof runMachine, (typeof RUN_EFFECTS)[number]>;

export const runAggregate = defineAggregate(runMachine, { startsWith: 'RunSubmitted', effects: RUN_EFFECTS });

export const startRun = (submitted: EventDataMap['RunSubmitted'], position?: number): [RunSnapshot, RunEffect[]] => runAggregate.start(submitted, position);

export const advanceRun = (snapshot: RunSnapshot, event: RunMachineEvent, position?: number): [RunSnapshot, RunEffect[]] => runAggregate.advance(snapshot, event, position);

export const runAccepts = (snapshot: RunSnapshot, event: RunMachineEvent): boolean => snapshot.can(event);

/** The platform status of a run state (the state's tag); undefined while it is finishing. */
export const runStatusOf = (snapshot: RunSnapshot): RunStatus | undefined => [...snapshot.tags][0] as RunStatus | undefined;

export const isTerminalStatus = (status: RunStatus | undefined): boolean => status === 'Completed' || status === 'Failed' || status === 'Canceled';

/** Fold a run stream; returns the state and the status history (getRunStatusHistory). */
export const foldRun = (events: readonly StoredEvent[]): { snapshot: RunSnapshot; history: RunStatus[] } | undefined => {
  const history: RunStatus[] = [];
  const note = (snapshot: RunSnapshot) => {
    const status = runStatusOf(snapshot);
    if (status && history.at(-1) !== status) history.push(status);
  };
  // The status history is what each prefix of the stream folds to: one pass, noting as it goes.
  const snapshot = runAggregate.fold(events, note);
  return snapshot ? { snapshot, history } : undefined;
};
