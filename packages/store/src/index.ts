import { join } from 'node:path';
import type { EventStore } from '@amlsim/core';
import { createMemoryEventStore } from './memory-store';
import { openSqliteEventStore } from './sqlite-store';

export { createMemoryEventStore } from './memory-store';
export { openSqliteEventStore, SQLITE_SCHEMA_VERSION, type SqliteEventStoreOptions } from './sqlite-store';

export type EventStoreKind = 'memory' | 'sqlite';

/**
 * Opens the store the composition root asked for. The SQLite log lives at
 * `<dataDir>/events.sqlite` (docs/architecture.md "Data directory"); the memory store ignores `dataDir`.
 */
export function openEventStore(kind: EventStoreKind, dataDir: string): EventStore {
  return kind === 'memory' ? createMemoryEventStore() : openSqliteEventStore({ file: join(dataDir, 'events.sqlite') });
}
