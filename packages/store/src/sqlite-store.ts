import { chmodSync, closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { errors, isSimError, type AppendResult, type EventStore, type StoredEvent, type StreamAppend } from '@amlsim/core';
import { assertExpectedVersion } from './expected-version';
import { toJsonValue } from './json-value';
import { createSubscribers } from './subscribers';

/** Schema version this code writes and reads, kept in `PRAGMA user_version`. */
export const SQLITE_SCHEMA_VERSION = 1;

export type SqliteEventStoreOptions = {
  /** Path of the database file; its directory is created (mode 0700) when missing. */
  file: string;
  /** Rows per query when `readAll` pages through the log (default 10,000). */
  readPageSize?: number;
};

/** A row as read with `.raw()`: arrays are cheaper to build than objects. */
type Row = [position: number, stream: string, version: number, type: string, data: string, meta: string];

const COLUMNS = 'position, stream, version, type, data, meta';
const FIELDS = 6;
const MAX_ROWS_PER_INSERT = 64; // 384 parameters, far below SQLite's limit of 32,766

/**
 * The embedded, durable event store (docs/architecture.md "Data directory").
 *
 * One SQLite transaction per append, WAL journal with `synchronous = NORMAL`: a commit is a
 * WAL append without fsync, so it survives a crash of the process (not of the machine), which
 * is the durability a local simulator needs and is an order of magnitude faster.
 */
export function openSqliteEventStore(options: SqliteEventStoreOptions): EventStore {
  const { file } = options;
  const pageSize = options.readPageSize ?? 10_000;
  const db = openValidated(file);
  const subscribers = createSubscribers();

  const stmt = {
    head: db.prepare('SELECT coalesce(max(position), 0) FROM events').pluck(),
    // max() on the UNIQUE(stream, version) index is a single b-tree seek.
    version: db.prepare('SELECT coalesce(max(version), 0) FROM events WHERE stream = ?').pluck(),
    readStream: db.prepare(`SELECT ${COLUMNS} FROM events WHERE stream = ? AND version > ? ORDER BY version`).raw(),
    readPage: db
      .prepare(`SELECT ${COLUMNS} FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`)
      .raw(),
    saveCheckpoint: db.prepare(
      'INSERT INTO checkpoints (name, position, state) VALUES (?, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET position = excluded.position, state = excluded.state',
    ),
    loadCheckpoints: db.prepare('SELECT name, position, state FROM checkpoints ORDER BY name'),
  };

  // Multi-row INSERTs, one statement per power-of-two row count (1, 2, 4 … 64) prepared on
  // first use: an append of 100 events is 3 calls into SQLite instead of 100, which pays for
  // parsing the committed events back (below) and keeps batched appends near raw speed.
  const inserts: Database.Statement[] = [];
  function insertRows(params: unknown[]): void {
    const total = params.length / FIELDS;
    for (let done = 0; done < total; ) {
      const rows = Math.min(MAX_ROWS_PER_INSERT, 1 << (31 - Math.clz32(total - done))); // largest power of two that fits
      const insert = (inserts[rows] ??= db.prepare(
        `INSERT INTO events (${COLUMNS}) VALUES ${Array<string>(rows).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`,
      ));
      insert.run(rows === total ? params : params.slice(done * FIELDS, (done + rows) * FIELDS));
      done += rows;
    }
  }

  // Versions and the head are read inside the transaction, never cached: another process
  // (a second `amlsim` command on the same data dir) may have appended since.
  // IMMEDIATE takes the write lock up front, so the check and the write see the same log.
  const appendTx = db.transaction((appends: readonly StreamAppend[]): StoredEvent[] => {
    let position = stmt.head.get() as number;
    const committed: StoredEvent[] = [];
    for (const { stream, expectedVersion, events } of appends) {
      let version = stmt.version.get(stream) as number;
      assertExpectedVersion(stream, expectedVersion, version); // throws -> rollback
      const params: unknown[] = [];
      for (const event of events) {
        // What is stored is the serialization of what subscribers get (packages/store/src/json-value.ts):
        // live subscribers and a replay fold the very same values.
        const data = toJsonValue(event.data) as StoredEvent['data'];
        const meta = toJsonValue(event.meta) as StoredEvent['meta'];
        params.push(++position, stream, ++version, event.type, JSON.stringify(data), JSON.stringify(meta));
        committed.push({ position, stream, version, type: event.type, data, meta });
      }
      insertRows(params); // before the next part, whose version query may be for this stream
    }
    return committed;
  });

  // One event to one stream — most appends the platform makes — is one statement in
  // autocommit: the version check and the insert run in the statement's own write transaction
  // (SQLite takes the write lock when a writing statement starts, before it reads), the
  // position is the rowid SQLite assigns (one past the largest: the log is never deleted from,
  // so positions stay contiguous), and no BEGIN, head query or COMMIT is paid on top.
  const appendOne = {
    checked: db.prepare(
      `INSERT INTO events (${COLUMNS}) SELECT NULL, ?, coalesce(max(version), 0) + 1, ?, ?, ? FROM events WHERE stream = ? ` +
        'HAVING coalesce(max(version), 0) = ? RETURNING position, version',
    ).raw(),
    any: db.prepare(
      `INSERT INTO events (${COLUMNS}) SELECT NULL, ?, coalesce(max(version), 0) + 1, ?, ?, ? FROM events WHERE stream = ? ` +
        'RETURNING position, version',
    ).raw(),
  };
  function appendSingle({ stream, expectedVersion, events }: StreamAppend): StoredEvent[] {
    const event = events[0]!;
    const data = toJsonValue(event.data) as StoredEvent['data'];
    const meta = toJsonValue(event.meta) as StoredEvent['meta'];
    const dataText = JSON.stringify(data);
    const metaText = JSON.stringify(meta);
    const row = (expectedVersion === 'any'
      ? appendOne.any.get(stream, event.type, dataText, metaText, stream)
      : appendOne.checked.get(stream, event.type, dataText, metaText, stream, expectedVersion === 'no-stream' ? 0 : expectedVersion)) as
      | [number, number]
      | undefined;
    if (!row) {
      // Nothing was written: the stream is not at the expected version.
      assertExpectedVersion(stream, expectedVersion, stmt.version.get(stream) as number);
      // It has moved to it since (another handle appended in between): still a conflict.
      throw errors.wrongExpectedVersion(stream, expectedVersion, stmt.version.get(stream) as number);
    }
    return [{ position: row[0], stream, version: row[1], type: event.type, data, meta }];
  }

  function appendMany(appends: readonly StreamAppend[]): AppendResult {
    let committed: StoredEvent[];
    try {
      committed = appends.length === 1 && appends[0]!.events.length === 1 ? appendSingle(appends[0]!) : appendTx.immediate(appends);
    } catch (err) {
      throw asConflict(err, appends);
    }
    // Only here is the transaction committed: a rolled-back append never reaches a listener.
    const last = committed[committed.length - 1];
    if (last) subscribers.publish(committed);
    return { events: committed, lastPosition: last ? last.position : (stmt.head.get() as number) };
  }

  /**
   * Another handle on the same file (a second `amlsim` command on the data dir, a second store
   * object) may have taken the version or position this append meant to write. The reads inside
   * the transaction make that a WrongExpectedVersion already; should a UNIQUE or PRIMARY KEY
   * constraint fire all the same, the caller still gets the typed, retryable conflict (naming
   * the stream whose version is taken, as the log now holds it), never the raw SQLite error.
   */
  function asConflict(err: unknown, appends: readonly StreamAppend[]): unknown {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'SQLITE_CONSTRAINT_UNIQUE' && code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') return err;
    const moved = appends.find((a) => a.expectedVersion !== 'any' && (stmt.version.get(a.stream) as number) !== (a.expectedVersion === 'no-stream' ? 0 : a.expectedVersion)) ?? appends[0]!;
    const conflict = errors.wrongExpectedVersion(moved.stream, moved.expectedVersion, stmt.version.get(moved.stream) as number);
    conflict.cause = err;
    return conflict;
  }

  return {
    append: (stream, expectedVersion, events) => appendMany([{ stream, expectedVersion, events }]),
    appendMany,
    readStream: (stream, afterVersion = 0) => (stmt.readStream.all(stream, afterVersion) as Row[]).map(hydrate),
    streamVersion: (stream) => stmt.version.get(stream) as number,
    readAll: (afterPosition = 0) => ({
      *[Symbol.iterator]() {
        // Pages rather than one long `iterate()`: memory stays flat over millions of events,
        // no read transaction is held open while the caller folds (it would keep the WAL
        // from being checkpointed), and the connection stays free for appends in between.
        // `end` pins the log as it was when iteration began, so pages agree with each other.
        const end = stmt.head.get() as number;
        let after = afterPosition;
        for (;;) {
          const rows = stmt.readPage.all(after, end, pageSize) as Row[];
          for (const row of rows) yield hydrate(row);
          if (rows.length < pageSize) return;
          after = rows[rows.length - 1]![0];
        }
      },
    }),
    headPosition: () => stmt.head.get() as number,
    subscribe: (listener) => subscribers.subscribe(listener),
    saveCheckpoint: (name, position, state) => {
      stmt.saveCheckpoint.run(name, position, JSON.stringify(state) ?? 'null');
    },
    loadCheckpoints: () =>
      (stmt.loadCheckpoints.all() as Array<{ name: string; position: number; state: string | null }>).map((row) => ({
        name: row.name,
        position: row.position,
        state: row.state === null ? null : (JSON.parse(row.state) as unknown),
      })),
    close: () => {
      subscribers.clear();
      if (db.open) db.close();
    },
  };
}

function hydrate(row: Row): StoredEvent {
  return {
    position: row[0],
    stream: row[1],
    version: row[2],
    type: row[3],
    data: JSON.parse(row[4]) as StoredEvent['data'],
    meta: JSON.parse(row[5]) as StoredEvent['meta'],
  };
}

/**
 * Opens the file, refusing anything that is not our schema before writing a single byte:
 * `journal_mode = WAL` and `CREATE TABLE` rewrite the header, so they come only after the
 * checks. A refused file is left exactly as it was (the error messages promise it).
 */
function openValidated(file: string): Database.Database {
  let state = inspectHeader(file);
  if (state === 'missing') {
    // The log holds who did what to which workspace: readable by its owner only. A directory
    // the store creates is 0700; the file is created 0600 before SQLite opens it (an empty file
    // is a new database to SQLite), and SQLite gives the -wal and -shm files the database
    // file's mode.
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(file, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw errors.storeUnreadable(file, reason(err));
    }
    state = inspectHeader(file);
  }

  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: state !== 'missing' });
  } catch (err) {
    throw errors.storeUnreadable(file, reason(err));
  }

  try {
    let found: number;
    let tables: string[];
    try {
      found = db.pragma('user_version', { simple: true }) as number;
      tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    } catch (err) {
      throw errors.storeUnreadable(file, reason(err)); // e.g. SQLITE_NOTADB, SQLITE_CORRUPT
    }
    if (found > SQLITE_SCHEMA_VERSION) throw errors.storeSchemaTooNew(file, found, SQLITE_SCHEMA_VERSION);
    if (found === 0 && tables.length > 0) {
      // Someone else's database: adding our tables to it would be a change they did not ask for.
      throw errors.storeUnreadable(file, `it is a SQLite database but not an amlsim event store (tables: ${tables.join(', ')})`);
    }
    if (found === SQLITE_SCHEMA_VERSION && !(tables.includes('events') && tables.includes('checkpoints'))) {
      throw errors.storeUnreadable(file, `schema version ${found} but the events or checkpoints table is missing`);
    }

    // Validated: from here on we may write.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw errors.storeUnreadable(file, `cannot use write-ahead logging here (journal mode stays '${String(mode)}')`);
    db.pragma('synchronous = NORMAL');
    if (found === 0) createSchema(db);
    // A log from before modes were set (or copied in with a wide umask) is tightened too.
    for (const path of [file, `${file}-wal`, `${file}-shm`]) chmodIfPresent(path, 0o600);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function createSchema(db: Database.Database): void {
  // One transaction: a crash leaves either no tables and version 0, or everything and version 1.
  db.transaction(() => {
    db.exec(`
      CREATE TABLE events (
        position INTEGER PRIMARY KEY,
        stream   TEXT NOT NULL,
        version  INTEGER NOT NULL,
        type     TEXT NOT NULL,
        data     TEXT NOT NULL,
        meta     TEXT NOT NULL,
        UNIQUE (stream, version)
      );
      CREATE TABLE checkpoints (
        name     TEXT PRIMARY KEY,
        position INTEGER,
        state    TEXT
      );
    `);
    db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
  }).immediate();
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Reads the first 16 bytes ourselves, with a read-only descriptor, so a file that is not a
 * SQLite database is refused before SQLite ever opens it.
 * An empty file is what SQLite itself treats as a new database.
 */
function inspectHeader(file: string): 'missing' | 'empty' | 'sqlite' {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw errors.storeUnreadable(file, reason(err));
  }
  try {
    const header = Buffer.alloc(SQLITE_MAGIC.length);
    const read = readSync(fd, header, 0, header.length, 0);
    if (read === 0) return 'empty';
    if (read < header.length || !header.equals(SQLITE_MAGIC)) {
      throw errors.storeUnreadable(file, 'it is not a SQLite database (the header is not "SQLite format 3")');
    }
    return 'sqlite';
  } catch (err) {
    throw isSimError(err) ? err : errors.storeUnreadable(file, reason(err));
  } finally {
    closeSync(fd);
  }
}

function chmodIfPresent(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err));
