import { transition, type AnyStateMachine } from 'xstate';

/**
 * The event types a machine handles anywhere in its states: what a replay re-checks against it
 * (facts of other types are the stream's notes, not its decisions).
 */
export const handledEvents = (machine: AnyStateMachine): ReadonlySet<string> => new Set<string>((machine as unknown as { root: { events: string[] } }).root.events);

/**
 * The next state of a flat status machine (no context, no guards: where a fact leads depends on
 * the state and the fact's type alone, like the node and web-service lifecycles): asked of the
 * machine itself the first time, remembered after. A replay folds these for every node and
 * service fact; resolving a snapshot per fact would cost more than the rest of the fold.
 */
export function statusTransitions<S extends string, E extends { type: string }>(machine: AnyStateMachine): (state: S, event: E) => S | undefined {
  const memo = new Map<string, S | null>();
  return (state, event) => {
    const key = `${state}\u0000${event.type}`;
    let next = memo.get(key);
    if (next === undefined) {
      const snapshot = machine.resolveState({ value: state, context: {} });
      next = snapshot.can(event) ? (transition(machine, snapshot, event)[0].value as S) : null;
      memo.set(key, next);
    }
    return next ?? undefined;
  };
}
