import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SimError, type EventStore, type NewEvent } from '@amlsim/core';
import { describeEventStoreContract } from './event-store.contract';
import { openSqliteEventStore, SQLITE_SCHEMA_VERSION } from './sqlite-store';
import { openEventStore } from './index';

const root = mkdtempSync(join(tmpdir(), 'amlsim-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `case-${++counter}`, 'events.sqlite');

const ev = (type: string, data: Record<string, unknown> = {}): NewEvent => ({
  type,
  data,
  meta: { at: '2024-05-01T12:00:00.000Z', correlationId: 'corr-1', causationId: 'cmd-1', session: 'session-1' },
});

function openError(file: string): SimError {
  try {
    openSqliteEventStore({ file }).close();
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error(`expected opening ${file} to fail`);
}

// The file each store of the contract was opened on, so the suite can open a second handle on it.
const fileOf = new WeakMap<EventStore, string>();
const openFresh = (options: { readPageSize?: number } = {}): EventStore => {
  const file = freshFile();
  const store = openSqliteEventStore({ file, ...options });
  fileOf.set(store, file);
  return store;
};
const openSecondHandle = (store: EventStore): EventStore => openSqliteEventStore({ file: fileOf.get(store)! });

describeEventStoreContract('sqlite', () => openFresh(), { openSecondHandle });
// Small pages, so the contract's readAll cases also cross page boundaries.
describeEventStoreContract('sqlite, 2-row read pages', () => openFresh({ readPageSize: 2 }), { openSecondHandle });

describe('SQLite event store', () => {
  it('creates the missing directory, uses WAL and records the schema version', () => {
    const file = freshFile();
    openSqliteEventStore({ file }).close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('keeps the log to its owner: db, -wal and -shm are 0600 and a directory it creates is 0700, whatever the umask', () => {
    const previous = process.umask(0); // the widest umask: modes must not depend on it
    try {
      const parent = join(root, `modes-${++counter}`);
      const file = join(parent, 'data', 'events.sqlite');
      const store = openSqliteEventStore({ file });
      try {
        store.append('run-1', 'no-stream', [ev('RunSubmitted')]); // WAL and SHM exist while the store is open
        const mode = (path: string) => statSync(path).mode & 0o777;
        expect([file, `${file}-wal`, `${file}-shm`].map((path) => [path, mode(path)])).toEqual([file, `${file}-wal`, `${file}-shm`].map((path) => [path, 0o600]));
        expect(mode(join(parent, 'data'))).toBe(0o700);
        expect(mode(parent)).toBe(0o700);
      } finally {
        store.close();
      }
      // An existing log with a wide mode is tightened when opened; its directory, not ours, is left alone.
      chmodSync(file, 0o644);
      chmodSync(join(parent, 'data'), 0o755);
      openSqliteEventStore({ file }).close();
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(parent, 'data')).mode & 0o777).toBe(0o755);
    } finally {
      process.umask(previous);
    }
  });

  it('keeps events, versions and checkpoints across reopen and continues the positions', () => {
    const file = freshFile();
    const first = openSqliteEventStore({ file });
    first.append('run-1', 'no-stream', [ev('RunSubmitted', { id: 'run-1' }), ev('RunQueued')]);
    first.append('compute-1', 'no-stream', [ev('ComputeCreated')]);
    first.saveCheckpoint('runs', 3, { count: 1 });
    const written = [...first.readAll()];
    first.close();

    const second = openSqliteEventStore({ file });
    try {
      expect([...second.readAll()]).toEqual(written);
      expect(second.headPosition()).toBe(3);
      expect(second.streamVersion('run-1')).toBe(2);
      expect(second.loadCheckpoints()).toEqual([{ name: 'runs', position: 3, state: { count: 1 } }]);
      expect(() => second.append('run-1', 1, [ev('Late')])).toThrow(SimError);
      expect(second.append('run-1', 2, [ev('RunStarted')]).events[0]).toMatchObject({ position: 4, version: 3 });
    } finally {
      second.close();
    }
  });

  it('writes appends of any size (split into multi-row inserts) with contiguous positions and versions', () => {
    const store = openSqliteEventStore({ file: freshFile() });
    try {
      let total = 0;
      for (let size = 1; size <= 130; size += 3) {
        const before = store.streamVersion('run-1');
        const { events } = store.appendMany([
          { stream: 'run-1', expectedVersion: before, events: Array.from({ length: size }, (_, i) => ev('Step', { size, i })) },
          { stream: `side-${size}`, expectedVersion: 'no-stream', events: [ev('Other', { size })] },
        ]);
        expect(events.map((e) => e.position)).toEqual(Array.from({ length: size + 1 }, (_, i) => total + i + 1));
        total += size + 1;
      }
      expect(store.headPosition()).toBe(total);
      const stream = store.readStream('run-1');
      expect(stream.map((e) => e.version)).toEqual(Array.from({ length: stream.length }, (_, i) => i + 1));
      expect([...store.readAll()].map((e) => e.position)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(stream.filter((e) => e.data.size === 100).map((e) => e.data.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    } finally {
      store.close();
    }
  });

  it('reads a log larger than one page lazily and in order', () => {
    const store = openSqliteEventStore({ file: freshFile(), readPageSize: 1000 });
    try {
      const appends = Array.from({ length: 25 }, (_, batch) => ({
        stream: `run-${batch}`,
        expectedVersion: 'no-stream' as const,
        events: Array.from({ length: 100 }, (_, i) => ev('Step', { i })),
      }));
      store.appendMany(appends);
      const iterator = store.readAll(1200)[Symbol.iterator]();
      expect(iterator.next().value).toMatchObject({ position: 1201, stream: 'run-12', version: 1 });
      let expected = 1202;
      for (let step = iterator.next(); !step.done; step = iterator.next()) expect(step.value.position).toBe(expected++);
      expect(expected).toBe(2501);
    } finally {
      store.close();
    }
  });

  // 'delete' too: a newer amlsim might not use WAL, and switching a file to WAL rewrites its header.
  it.each(['wal', 'delete'])('refuses a store written by a newer schema (%s journal), naming the file, and leaves it unchanged', (mode) => {
    const file = freshFile();
    const store = openSqliteEventStore({ file });
    store.append('run-1', 'no-stream', [ev('RunSubmitted')]);
    store.close();
    const db = new Database(file);
    db.pragma(`journal_mode = ${mode}`);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    const bytes = readFileSync(file);

    const err = openError(file);
    expect(err.code).toBe('StoreSchemaTooNew');
    expect(err.message).toContain(file);
    expect(err.details).toEqual({ file, found: SQLITE_SCHEMA_VERSION + 1, supported: SQLITE_SCHEMA_VERSION });
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it.each([
    ['random bytes', Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 256))],
    ['text', Buffer.from('{"this is": "not a database"}\n')],
    ['a SQLite header followed by garbage', Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(4080, 0xab)])],
  ])('refuses a corrupt file (%s), naming the file, and leaves its bytes unchanged', (_, garbage) => {
    const file = join(root, `corrupt-${++counter}.sqlite`);
    writeFileSync(file, garbage);

    const err = openError(file);
    expect(err.code).toBe('StoreUnreadable');
    expect(err.message).toContain(file);
    expect(readFileSync(file).equals(garbage)).toBe(true);
  });

  it("refuses someone else's SQLite database instead of adding tables to it", () => {
    const file = join(root, `foreign-${++counter}.sqlite`);
    const db = new Database(file);
    db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    db.close();
    const bytes = readFileSync(file);

    const err = openError(file);
    expect(err.code).toBe('StoreUnreadable');
    expect(err.message).toContain(file);
    expect(err.message).toContain('notes');
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('openEventStore puts the SQLite log at <dataDir>/events.sqlite', () => {
    const dataDir = join(root, `data-${++counter}`);
    const store = openEventStore('sqlite', dataDir);
    store.append('run-1', 'no-stream', [ev('RunSubmitted')]);
    store.close();
    const reopened = openSqliteEventStore({ file: join(dataDir, 'events.sqlite') });
    try {
      expect(reopened.headPosition()).toBe(1);
    } finally {
      reopened.close();
    }
    expect(openEventStore('memory', dataDir).headPosition()).toBe(0);
  });
});
