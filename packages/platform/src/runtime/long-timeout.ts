/**
 * The longest delay one Node timer holds: 2^31-1 ms (about 24.8 days). Node fires a longer
 * `setTimeout` after 1 ms (with only a warning), so a token lifetime or an idle timeout past it
 * would run out at once.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** The timer primitives a long timeout is built on; injectable so tests need not wait. */
export type TimerHost = {
  setTimeout(fire: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Wall time in ms; the deadline is measured on it, so a late chunk does not shift the end. */
  now(): number;
};

export const nodeTimerHost: TimerHost = {
  setTimeout: (fire, ms) => setTimeout(fire, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  now: () => Date.now(),
};

export type LongTimeout = {
  /** Stop it; firing after this never happens. Safe to call twice or after it fired. */
  cancel(): void;
};

export type LongTimeoutOptions = {
  /** Do not keep the process alive for this timer alone (Node's `unref`). */
  unref?: boolean;
  host?: TimerHost;
  /** How long one link of the chain may be (tests shorten it); at most MAX_TIMER_DELAY_MS. */
  maxChunkMs?: number;
};

/**
 * `setTimeout` for any delay: a delay longer than one timer holds is a chain of timers, each
 * re-armed for what is left until the deadline, so `fire` runs once, never early. A delay that
 * is not a finite number is refused (a NaN or Infinity timer would otherwise fire at once).
 */
export function setLongTimeout(fire: () => void, delayMs: number, options: LongTimeoutOptions = {}): LongTimeout {
  if (Number.isNaN(delayMs) || delayMs === Infinity) throw new RangeError(`a timer needs a finite delay in ms, got ${delayMs}`);
  const host = options.host ?? nodeTimerHost;
  const chunk = Math.min(options.maxChunkMs ?? MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS);
  const deadline = host.now() + Math.max(0, delayMs);
  let handle: unknown;
  let done = false;
  // Always through the host, even for a delay of 0: a caller gets its cancel function before
  // anything fires, as with setTimeout.
  const arm = () => {
    const left = Math.max(0, deadline - host.now());
    handle = host.setTimeout(left > chunk ? arm : finish, Math.min(left, chunk));
    if (options.unref) (handle as { unref?: () => void } | undefined)?.unref?.();
  };
  // The last link fires without looking at the clock again: a clock read a hair early (timers
  // are ms-granular) must not add a needless extra link.
  const finish = () => {
    if (done) return;
    done = true;
    fire();
  };
  arm();
  return {
    cancel: () => {
      if (done) return;
      done = true;
      host.clearTimeout(handle);
    },
  };
}

/** A promise that resolves after `ms`, however long (see setLongTimeout). */
export const longDelay = (ms: number, host?: TimerHost): Promise<void> =>
  new Promise((resolve) => setLongTimeout(resolve, ms, host ? { host } : {}));
