import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { EventDataMap } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import type { Effect } from '../workspace/fold';
import { runMachine, type RunMachineEvent, type RunStatus } from './run.machine';

export type RunSnapshot = SnapshotFrom<typeof runMachine>;

const RUN_EFFECTS = new Set([
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
]);

const effectsOf = (actions: ReadonlyArray<{ type: string; params?: unknown }>): Effect[] =>
  actions.filter((a) => RUN_EFFECTS.has(a.type)).map((a) => ({ type: a.type, params: a.params }));

export const startRun = (submitted: EventDataMap['RunSubmitted']): [RunSnapshot, Effect[]] => {
  const [snapshot, actions] = initialTransition(runMachine, submitted);
  return [snapshot, effectsOf(actions)];
};

export const advanceRun = (snapshot: RunSnapshot, event: RunMachineEvent): [RunSnapshot, Effect[]] => {
  const [next, actions] = transition(runMachine, snapshot, event);
  return [next, effectsOf(actions)];
};

export const runAccepts = (snapshot: RunSnapshot, event: RunMachineEvent): boolean => snapshot.can(event);

/** The platform status of a run state (the state's tag); undefined while it is finishing. */
export const runStatusOf = (snapshot: RunSnapshot): RunStatus | undefined => [...snapshot.tags][0] as RunStatus | undefined;

export const isTerminalStatus = (status: RunStatus | undefined): boolean => status === 'Completed' || status === 'Failed' || status === 'Canceled';

/** Fold a run stream; returns the state and the status history (getRunStatusHistory). */
export const foldRun = (events: readonly StoredEvent[]): { snapshot: RunSnapshot; history: RunStatus[] } | undefined => {
  const [first, ...rest] = events;
  if (!first || first.type !== 'RunSubmitted') return undefined;
  let [snapshot] = startRun(first.data as EventDataMap['RunSubmitted']);
  const history: RunStatus[] = [];
  const note = () => {
    const status = runStatusOf(snapshot);
    if (status && history.at(-1) !== status) history.push(status);
  };
  note();
  for (const e of rest) {
    [snapshot] = advanceRun(snapshot, { type: e.type, ...e.data } as RunMachineEvent);
    note();
  }
  return { snapshot, history };
};
