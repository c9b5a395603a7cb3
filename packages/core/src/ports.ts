/**
 * Ports the pure core needs from the outside world. The core never reads a clock or makes
 * an id itself (docs/architecture.md): times and ids travel in event payloads, produced by these.
 */
export type Clock = {
  /** Milliseconds since the epoch, real or virtual. */
  now(): number;
};

export type IdGenerator = {
  /** A new unique id, optionally with a readable prefix (`ws_…`, `run_…`). */
  next(prefix?: string): string;
};
