/**
 * The event envelope: the one shape every fact in the log has (docs/architecture.md "Events").
 *
 * `position` is the global, gap-free order of the log (1-based); `version` is the order
 * within one stream (1-based). Both are assigned by the store on append, never by callers.
 */
export type EventMeta = {
  /** ISO-8601 time the fact became true, from the platform clock (real or virtual). */
  at: string;
  /** Name of the principal on whose behalf the fact happened, when there is one. */
  principal?: string;
  /** Id shared by every event one command caused (a scenario step, a CLI call). */
  correlationId: string;
  /** Id of the command or event that directly caused this one. */
  causationId: string;
  /**
   * The simulation session (one scenario run = one simulated directory). Several sessions can
   * share one data dir; read models are built per session so their names never collide.
   */
  session: string;
  /**
   * The control-plane channel a compute target's call came in on, when the fact was reported
   * by one (S1.3): the platform verified that the call's run token is bound to this channel.
   */
  channel?: string;
  /** The run token that call presented (its id, never its value). */
  tokenId?: string;
};

/** What a caller hands to the store. */
export type NewEvent<TType extends string = string, TData = Record<string, unknown>> = {
  type: TType;
  data: TData;
  meta: EventMeta;
};

/** What the store hands back: a committed fact. */
export type StoredEvent<TType extends string = string, TData = Record<string, unknown>> =
  NewEvent<TType, TData> & {
    position: number;
    stream: string;
    version: number;
  };

/**
 * Expected version of a stream for optimistic concurrency:
 * a number (the stream's current last version; 0 = the stream must be empty),
 * `'no-stream'` (same as 0) or `'any'` (no check).
 */
export type ExpectedVersion = number | 'no-stream' | 'any';

/** One stream's part of an atomic append that may span several streams. */
export type StreamAppend = {
  stream: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
};

export type AppendResult = {
  /** The committed events, in order, with their assigned positions and versions. */
  events: StoredEvent[];
  /** Global position of the last committed event (the log's head after the append). */
  lastPosition: number;
};

/**
 * The store contract. Synchronous on purpose: the embedded SQLite store commits in
 * microseconds and a synchronous append keeps the command bus free of interleavings
 * between "decide" and "append" (no lost update between check and write).
 */
export type EventStore = {
  /** Append to one stream, atomically. Throws a `WrongExpectedVersion` SimError on conflict; nothing is written then. */
  append(stream: string, expectedVersion: ExpectedVersion, events: NewEvent[]): AppendResult;
  /** Append to several streams in one transaction; all or nothing. */
  appendMany(appends: StreamAppend[]): AppendResult;
  /** Events of one stream with version > `afterVersion` (default 0), in version order. */
  readStream(stream: string, afterVersion?: number): StoredEvent[];
  /** Current version of a stream (0 when it has no events). */
  streamVersion(stream: string): number;
  /** Every event with position > `afterPosition` (default 0), in position order, lazily. */
  readAll(afterPosition?: number): Iterable<StoredEvent>;
  /** Global position of the last event (0 for an empty log). */
  headPosition(): number;
  /** Called after each committed append with its events, in commit order. Returns an unsubscribe function. */
  subscribe(listener: (events: StoredEvent[]) => void): () => void;
  /** Saved derived state (projection checkpoints) for `amlsim replay` to compare against. */
  saveCheckpoint(name: string, position: number, state: unknown): void;
  loadCheckpoints(): Array<{ name: string; position: number; state: unknown }>;
  close(): void;
};
