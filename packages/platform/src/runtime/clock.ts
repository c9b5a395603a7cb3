import type { Clock } from '@amlsim/core';
import { longDelay, type TimerHost } from './long-timeout';

/**
 * The platform clock: real (wall time) or virtual (moves only when told, for scenarios that
 * need hours to pass in milliseconds: token expiry, scale-down). Everything that needs "now"
 * reads it from here, never from Date.now().
 */
export type SimClock = Clock & {
  readonly kind: 'real' | 'virtual';
  /** Move a virtual clock forward. A real clock refuses. */
  advance(ms: number): void;
  /** Let time pass: a real wait on a real clock, an advance on a virtual one. */
  sleep(ms: number): Promise<void>;
};

/** @param timers what `sleep` waits on (tests pass a fake one); its `now` is the clock's. */
export const realClock = (timers?: TimerHost): SimClock => ({
  kind: 'real',
  now: () => (timers ? timers.now() : Date.now()),
  advance: () => {
    throw new Error('advanceClock needs the virtual clock (options.clock: virtual)');
  },
  // A chained timer: a plain setTimeout of more than 2^31-1 ms would return at once.
  sleep: (ms) => longDelay(ms, timers),
});

/** Virtual time starts at a fixed instant, so two runs of a scenario print the same times. */
export const VIRTUAL_EPOCH = Date.parse('2025-01-01T09:00:00.000Z');

export const virtualClock = (start = VIRTUAL_EPOCH): SimClock => {
  let now = start;
  return {
    kind: 'virtual',
    now: () => now,
    advance: (ms) => {
      if (!(ms >= 0)) throw new Error(`cannot move the clock by ${ms} ms`);
      now += ms;
    },
    sleep: async (ms) => {
      now += ms;
    },
  };
};
