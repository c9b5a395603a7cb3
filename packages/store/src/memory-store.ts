import type { AppendResult, EventStore, StoredEvent, StreamAppend } from '@amlsim/core';
import { assertExpectedVersion } from './expected-version';
import { toJsonValue } from './json-value';
import { createSubscribers } from './subscribers';

/** A committed event as kept in memory: data and meta stay serialized, like a SQLite row. */
type Row = { position: number; stream: string; version: number; type: string; data: string; meta: string };

/**
 * In-memory event store for unit tests and throw-away runs.
 *
 * It keeps data and meta as JSON text and parses them on every read, exactly as the SQLite
 * store does, so both stores hand back the same values (a Date becomes a string, `undefined`
 * fields vanish) and no caller can mutate the log through an object it got back.
 */
export function createMemoryEventStore(): EventStore {
  const log: Row[] = []; // log[i].position === i + 1: positions are gap-free
  const streams = new Map<string, Row[]>(); // stream -> rows; rows[i].version === i + 1
  const checkpoints = new Map<string, { position: number; state: string }>();
  const subscribers = createSubscribers();

  function appendMany(appends: readonly StreamAppend[]): AppendResult {
    // Stage everything before touching the log, so a conflict in any stream writes nothing.
    const staged: Row[] = [];
    const values: Array<Pick<StoredEvent, 'data' | 'meta'>> = [];
    const stagedVersions = new Map<string, number>();
    let position = log.length;
    for (const { stream, expectedVersion, events } of appends) {
      let version = stagedVersions.get(stream) ?? streams.get(stream)?.length ?? 0;
      assertExpectedVersion(stream, expectedVersion, version);
      for (const event of events) {
        // Serialized from the copy subscribers get (packages/store/src/json-value.ts), as the SQLite store does.
        const data = toJsonValue(event.data) as StoredEvent['data'];
        const meta = toJsonValue(event.meta) as StoredEvent['meta'];
        staged.push({ position: ++position, stream, version: ++version, type: event.type, data: JSON.stringify(data), meta: JSON.stringify(meta) });
        values.push({ data, meta });
      }
      stagedVersions.set(stream, version);
    }

    for (const row of staged) {
      log.push(row);
      let rows = streams.get(row.stream);
      if (!rows) streams.set(row.stream, (rows = []));
      rows.push(row);
    }
    const committed = staged.map((row, i) => ({ position: row.position, stream: row.stream, version: row.version, type: row.type, data: values[i]!.data, meta: values[i]!.meta }));
    if (committed.length > 0) subscribers.publish(committed);
    return { events: committed, lastPosition: log.length };
  }

  return {
    append: (stream, expectedVersion, events) => appendMany([{ stream, expectedVersion, events }]),
    appendMany,
    readStream: (stream, afterVersion = 0) => (streams.get(stream) ?? []).slice(Math.max(0, afterVersion)).map(hydrate),
    streamVersion: (stream) => streams.get(stream)?.length ?? 0,
    readAll: (afterPosition = 0) => ({
      *[Symbol.iterator]() {
        // The log as it was when iteration began, like the SQLite store: a fold that appends
        // while replaying does not see its own output.
        const end = log.length;
        for (let i = Math.max(0, afterPosition); i < end; i++) yield hydrate(log[i]!);
      },
    }),
    headPosition: () => log.length,
    subscribe: (listener) => subscribers.subscribe(listener),
    saveCheckpoint: (name, position, state) => {
      checkpoints.set(name, { position, state: JSON.stringify(state) ?? 'null' });
    },
    loadCheckpoints: () =>
      [...checkpoints]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, { position, state }]) => ({ name, position, state: JSON.parse(state) as unknown })),
    close: () => subscribers.clear(),
  };
}

function hydrate(row: Row): StoredEvent {
  return {
    position: row.position,
    stream: row.stream,
    version: row.version,
    type: row.type,
    data: JSON.parse(row.data) as StoredEvent['data'],
    meta: JSON.parse(row.meta) as StoredEvent['meta'],
  };
}
