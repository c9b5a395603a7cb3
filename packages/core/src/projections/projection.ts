import type { StoredEvent } from '../events/envelope';

/**
 * A read model: a pure fold of the log. `apply` may mutate and return the state it is given
 * (folding a million events must not copy the world a million times); it never does I/O.
 */
export type Projection<S> = {
  name: string;
  initial: () => S;
  apply: (state: S, event: StoredEvent) => S;
};

export const defineProjection = <S>(p: Projection<S>): Projection<S> => p;
