import { EventEmitter } from 'eventemitter3';
import type { StoredEvent } from '@amlsim/core';

type Listener = (events: StoredEvent[]) => void;

/**
 * Fan-out of committed appends to subscribers.
 *
 * Two guarantees the stores rely on:
 * - Commit order for every listener, even when a listener appends (the effect runner records an
 *   outcome in reaction to an event): a batch published while another is being delivered is
 *   queued and delivered after it, instead of reaching later listeners first.
 * - A throwing listener cannot make a committed append look failed, nor starve the other
 *   listeners: its error is re-thrown on a microtask, so it still surfaces (an uncaught
 *   exception, a failed test) instead of being swallowed.
 */
export function createSubscribers() {
  const emitter = new EventEmitter<{ committed: [StoredEvent[]] }>();
  const queue: StoredEvent[][] = [];
  let delivering = false;

  return {
    subscribe(listener: Listener): () => void {
      const isolated: Listener = (events) => {
        try {
          listener(events);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      };
      emitter.on('committed', isolated);
      return () => {
        emitter.off('committed', isolated);
      };
    },

    publish(events: StoredEvent[]): void {
      queue.push(events);
      if (delivering) return;
      delivering = true;
      try {
        for (let batch = queue.shift(); batch; batch = queue.shift()) emitter.emit('committed', batch);
      } finally {
        delivering = false;
      }
    },

    clear(): void {
      emitter.removeAllListeners();
      queue.length = 0;
    },
  };
}
