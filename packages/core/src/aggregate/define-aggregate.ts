import { createActor, type AnyActorScope, type AnyStateMachine, type EventFromLogic, type InputFrom, type SnapshotFrom, type StateMachine } from 'xstate';
import type { StoredEvent } from '../events/envelope';
import { handledEvents } from './status-machine';

/**
 * One runtime for every lifecycle (docs/architecture.md "Aggregates"): an XState machine whose
 * actions name the effects the platform carries out, and whose first fact starts it. Like
 * XState's own `transition`, each effect an event names gets an id `<position>:<index>`: the
 * event's position in the log and the effect's place among those it named, so a runner can
 * carry out an effect at most once whatever happens to it in between (a restart included).
 */

/** The actions a machine declares in `setup({ actions })`, as `{ type, params }`. */
export type MachineActions<M> =
  M extends StateMachine<any, any, any, any, infer A, any, any, any, any, any, any, any, any, any, any> ? A : never;

/**
 * An effect the machine named: typed by its declaration, stamped with its id (present when the
 * fact that named it has a position in the log: always, for what a runner carries out).
 */
export type EffectOf<M, K extends string> = Extract<MachineActions<M>, { type: K }> extends infer A
  ? A extends { type: infer T; params: infer P }
    ? { type: T; params: P; id?: string }
    : never
  : never;

/**
 * A handler for every effect of an aggregate: the compiler checks that none is missing and each
 * takes its own params. `TResult` is what a handler gives back (the platform's effect runner,
 * packages/platform/src/runtime/effect-runner.ts, takes the outcome facts to append).
 */
export type EffectHandlers<TEffect extends { type: string }, TContext = void, TResult = void> = {
  [K in TEffect['type']]: (effect: Extract<TEffect, { type: K }>, context: TContext) => Promise<TResult> | TResult;
};

export type Aggregate<M extends AnyStateMachine, K extends string> = {
  readonly machine: M;
  /** The first fact's type: it carries the machine's input. */
  readonly startsWith: string;
  /** The machine's state after its first fact, and the effects that fact names. */
  start(input: InputFrom<M>, position?: number): [SnapshotFrom<M>, Array<EffectOf<M, K>>];
  /** The state after one more fact, and the effects it names (ids from `position`). */
  advance(snapshot: SnapshotFrom<M>, event: EventFromLogic<M>, position?: number): [SnapshotFrom<M>, Array<EffectOf<M, K>>];
  /** Would the machine take this fact now? */
  accepts(snapshot: SnapshotFrom<M>, event: EventFromLogic<M>): boolean;
  /**
   * The state a stream's facts lead to (no effect is carried out), or undefined for a stream
   * that does not start with `startsWith`. `each` sees the state after every fact.
   */
  fold(events: readonly StoredEvent[], each?: (snapshot: SnapshotFrom<M>, event: StoredEvent) => void): SnapshotFrom<M> | undefined;
  /** Fold, and the effects each fact named, with their ids: what a replay compares with what was carried out. */
  history(events: readonly StoredEvent[]): { snapshot: SnapshotFrom<M>; effects: Array<EffectOf<M, K>> } | undefined;
  /**
   * Re-run the machine's decisions against a recorded stream (as Temporal replays a workflow's
   * history against changed code): the first fact of a type the machine handles that it would
   * not take where the log has it, or undefined when every one is taken. Facts of types the
   * machine never handles (a channel opened, a call refused) are the stream's notes, not decisions.
   */
  divergence(events: readonly StoredEvent[]): { event: StoredEvent; state: unknown } | undefined;
};

type MachineAction = { type: string; params?: unknown };

/**
 * What XState's pure `initialTransition` and `transition` do, without their cost: each of those
 * builds a throw-away actor (whose constructor also computes the machine's initial state) to
 * collect the actions of one step — most of what a step costs, and a replay or a live run takes
 * thousands of steps. The aggregates' machines invoke and spawn nothing, so one inert scope per
 * aggregate serves every step; only where a step's actions are collected changes.
 */
const stepperOf = (machine: AnyStateMachine) => {
  let scope: AnyActorScope | undefined;
  let sink: MachineAction[] = [];
  return <T>(step: (scope: AnyActorScope) => T): [T, MachineAction[]] => {
    if (!scope) {
      const self = createActor(machine);
      scope = {
        self,
        system: self.system,
        defer: () => {},
        id: '',
        logger: () => {},
        sessionId: '',
        stopChild: () => {},
        emit: () => {},
        actionExecutor: (action: MachineAction) => void sink.push(action),
      } as unknown as AnyActorScope;
    }
    const collected: MachineAction[] = [];
    sink = collected;
    try {
      return [step(scope), collected];
    } finally {
      sink = [];
    }
  };
};

/** The machine event a stored fact is: its type and its payload. */
export const asMachineEvent = <E>(e: StoredEvent): E => ({ type: e.type, ...e.data }) as E;

export function defineAggregate<M extends AnyStateMachine, const K extends MachineActions<M>['type']>(
  machine: M,
  options: { startsWith: string; effects: readonly K[] },
): Aggregate<M, K & string> {
  type Eff = EffectOf<M, K & string>;
  const named = new Set<string>(options.effects as readonly string[]);
  // XState's own actions (assign, …) never leave `transition`; effects are the machine's named ones.
  const effectsOf = (actions: ReadonlyArray<{ type: string; params?: unknown }>, position: number | undefined): Eff[] =>
    actions
      .filter((a) => named.has(a.type))
      .map((a, index) => ({ type: a.type, params: a.params, ...(position === undefined ? {} : { id: `${position}:${index}` }) }) as unknown as Eff);
  const stepper = stepperOf(machine);
  const start = (input: InputFrom<M>, position?: number): [SnapshotFrom<M>, Eff[]] => {
    const [snapshot, actions] = stepper((scope) => machine.getInitialSnapshot(scope, input));
    return [snapshot as SnapshotFrom<M>, effectsOf(actions, position)];
  };
  const advance = (snapshot: SnapshotFrom<M>, event: EventFromLogic<M>, position?: number): [SnapshotFrom<M>, Eff[]] => {
    const [next, actions] = stepper((scope) => machine.transition(snapshot, event, scope));
    return [next as SnapshotFrom<M>, effectsOf(actions, position)];
  };
  const history = (events: readonly StoredEvent[]) => {
    const [first, ...rest] = events;
    if (!first || first.type !== options.startsWith) return undefined;
    let [snapshot, effects] = start(first.data as InputFrom<M>, first.position);
    for (const e of rest) {
      const [next, named] = advance(snapshot, asMachineEvent<EventFromLogic<M>>(e), e.position);
      snapshot = next;
      effects = [...effects, ...named];
    }
    return { snapshot, effects };
  };
  const handled = handledEvents(machine);
  const divergence = (events: readonly StoredEvent[]) => {
    const [first, ...rest] = events;
    if (!first || first.type !== options.startsWith) return first ? { event: first, state: undefined } : undefined;
    let [snapshot] = start(first.data as InputFrom<M>, first.position);
    for (const e of rest) {
      if (!handled.has(e.type)) continue;
      const event = asMachineEvent<EventFromLogic<M>>(e);
      if (!(snapshot as unknown as { can(ev: unknown): boolean }).can(event)) return { event: e, state: (snapshot as unknown as { value: unknown }).value };
      [snapshot] = advance(snapshot, event, e.position);
    }
    return undefined;
  };
  return {
    machine,
    startsWith: options.startsWith,
    divergence,
    start,
    advance,
    accepts: (snapshot, event) => (snapshot as unknown as { can(e: unknown): boolean }).can(event),
    fold: (events, each) => {
      const [first, ...rest] = events;
      if (!first || first.type !== options.startsWith) return undefined;
      let [snapshot] = start(first.data as InputFrom<M>, first.position);
      each?.(snapshot, first);
      for (const e of rest) {
        [snapshot] = advance(snapshot, asMachineEvent<EventFromLogic<M>>(e), e.position);
        each?.(snapshot, e);
      }
      return snapshot;
    },
    history,
  };
}
