import type { EventDataMap, EventType } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';

export type EventOf<K extends EventType> = StoredEvent<K, EventDataMap[K]>;

/** One handler per event type the read model cares about; it mutates the state it is given. */
export type ProjectionHandlers<S> = { [K in EventType]?: (state: S, event: EventOf<K>) => void };

/**
 * A read model: a pure fold of the log, written as a handler per event type (the keys are the
 * list of types it reads, so dispatch is one lookup and no list can drift from the code).
 * Handlers mutate the state: folding a million events must not copy the world a million
 * times. No handler does I/O or reads a clock.
 */
export type Projection<S> = {
  name: string;
  initial: () => S;
  on: ProjectionHandlers<S>;
};

export const defineProjection = <S>(p: Projection<S>): Projection<S> => p;

/** Fold one event into a projection's state (events it has no handler for pass through). */
export const applyProjection = <S>(p: Projection<S>, state: S, event: StoredEvent): S => {
  const handler = p.on[event.type as EventType] as ((s: S, e: StoredEvent) => void) | undefined;
  handler?.(state, event);
  return state;
};
