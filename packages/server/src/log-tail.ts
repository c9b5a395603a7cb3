import type { EventStore, StoredEvent } from '@amlsim/core';

/** What a follower of the log is handed: committed events, in log order, each once. */
export type LogTailListener = (events: readonly StoredEvent[]) => void;

export type LogTail = {
  /** Every event committed after this call, in order and each once, until the returned function is called. */
  follow(listener: LogTailListener): () => void;
  /** The last position handed to followers. */
  position(): number;
  close(): void;
};

/** Events handed to followers per call, so a burst from another process reaches them in pieces. */
const BATCH = 1_000;

/**
 * Follows the log's head for the server's live streams.
 *
 * `store.subscribe` sees only what this process appends (packages/store/src/subscribers.ts
 * publishes after this handle's own commits), while `amlsim serve` watches a data dir that an
 * `amlsim run` in another process writes. So the tail never forwards a subscription's batch:
 * a subscription, or a poll of `headPosition()` that finds the head moved, only wakes it, and
 * it reads what follows its position from the store (`readAll(after)`). That hands every
 * follower a gap-free, duplicate-free sequence whoever wrote it — an event of another
 * process committed just before one of ours is read before ours, never skipped.
 */
export function createLogTail(store: EventStore, options: { pollIntervalMs: number }): LogTail {
  let followed = store.headPosition();
  const listeners = new Set<LogTailListener>();
  let scheduled = false;
  let closed = false;

  const hand = (batch: StoredEvent[]) => {
    for (const listener of [...listeners]) listener(batch);
  };
  const pull = () => {
    scheduled = false;
    if (closed) return;
    let batch: StoredEvent[] = [];
    for (const event of store.readAll(followed)) {
      batch.push(event);
      followed = event.position;
      if (batch.length === BATCH) {
        hand(batch);
        batch = [];
      }
    }
    if (batch.length > 0) hand(batch);
  };
  // Deferred: the store calls its subscribers inside `append`; the caller's append returns
  // before any socket is written, and many appends in one tick are read as one batch.
  const wake = () => {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(pull);
  };

  const unsubscribe = store.subscribe(wake);
  const poll = setInterval(() => {
    if (store.headPosition() > followed) wake();
  }, options.pollIntervalMs);
  poll.unref();

  return {
    follow(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    position: () => followed,
    close() {
      closed = true;
      clearInterval(poll);
      unsubscribe();
      listeners.clear();
    },
  };
}
