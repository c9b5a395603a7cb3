import type { ServerResponse } from 'node:http';
import type { EventStore, StoredEvent } from '@amlsim/core';
import type { LogTail } from './log-tail';

export type EventStreamOptions = {
  /** Milliseconds between heartbeat comments, so that proxies and browsers keep an idle stream open. */
  heartbeatMs: number;
  /** Live events a client may have waiting; past this it is too slow and is closed (it reconnects with Last-Event-ID). */
  maxQueuedEvents: number;
  /** What an EventSource waits before reconnecting, sent as the stream's `retry:` field. */
  retryMs: number;
};

/** One event as a Server-Sent Events message: its log position is its id, so a reconnect says where it stopped. */
export const sseMessage = (event: StoredEvent): string => `id: ${event.position}\nevent: fact\ndata: ${JSON.stringify(event)}\n\n`;

/**
 * Streams the log to one client: every event after `after`, then the live ones, with no gap
 * and no duplicate (docs/server.md "GET /api/events/stream").
 *
 * The client follows the tail *before* the backlog is read: an event committed while the
 * backlog is read is either in the backlog (it ends at the head as it was when reading began,
 * packages/store/src/sqlite-store.ts `readAll`) or handed by the tail afterwards, and what
 * comes both ways is dropped by position (nothing at or below the last one sent goes out
 * twice). Nothing is written while the socket's buffer is full: the backlog waits for
 * `drain`, live events wait in a queue capped at `maxQueuedEvents`; a client that lets it
 * overflow is disconnected rather than let the server's memory grow without bound.
 */
export function streamEvents(
  response: ServerResponse,
  store: EventStore,
  tail: LogTail,
  after: number,
  options: EventStreamOptions,
): void {
  let lastSent = after;
  const queue: StoredEvent[] = [];
  let closed = false;
  let pumping = true; // the backlog pumps first
  let wakeOnDrain: (() => void) | undefined;

  const close = () => {
    if (closed) return;
    closed = true;
    stopFollowing();
    clearInterval(heartbeat);
    queue.length = 0;
    wakeOnDrain?.();
    if (!response.destroyed) response.end();
  };

  const stopFollowing = tail.follow((events) => {
    if (closed) return;
    for (const event of events) if (event.position > lastSent) queue.push(event);
    if (queue.length > options.maxQueuedEvents) {
      // Too slow to keep up: it resumes from its Last-Event-ID when it reconnects.
      response.destroy();
      close();
      return;
    }
    if (!pumping) void pump();
  });

  response.on('close', close);
  response.on('drain', () => {
    const wake = wakeOnDrain;
    wakeOnDrain = undefined;
    wake?.();
  });
  const drained = () => new Promise<void>((resolve) => (wakeOnDrain = resolve));

  const heartbeat = setInterval(() => {
    // A comment line; skipped while the socket is backed up (the data already keeps it busy).
    if (!closed && response.writableNeedDrain === false) response.write(': heartbeat\n\n');
  }, options.heartbeatMs);
  heartbeat.unref();

  const send = async (event: StoredEvent) => {
    if (event.position <= lastSent) return;
    lastSent = event.position;
    if (!response.write(sseMessage(event))) await drained();
  };

  async function pump(): Promise<void> {
    pumping = true;
    try {
      while (!closed && queue.length > 0) await send(queue.shift()!);
    } finally {
      pumping = false;
    }
  }

  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // A reverse proxy must pass each message on as it comes, not buffer the response.
    'x-accel-buffering': 'no',
  });
  response.write(`retry: ${options.retryMs}\n\n`);

  void (async () => {
    try {
      for (const event of store.readAll(after)) {
        if (closed) return;
        await send(event);
      }
      await pump();
    } catch {
      // The store was closed under the stream (the server is stopping): end it.
      close();
    }
  })();
}
