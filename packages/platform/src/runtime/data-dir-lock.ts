import { closeSync, linkSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SimError } from '@amlsim/core';

/** The lock file's name inside a data dir. */
export const DATA_DIR_LOCK_FILE = 'amlsim.lock';
/** The holder touches the lock this often: a lease that a simulator in another PID namespace can judge. */
export const LOCK_RENEW_MS = 2_000;
/** A lock whose lease was not renewed for this long is stale, when its pid cannot be checked. */
export const LOCK_LEASE_MS = 5 * LOCK_RENEW_MS;

/** What a lock file says about its holder. */
export type DataDirLockHolder = {
  pid: number;
  /** When the holder took the lock (ISO 8601). */
  startedAt: string;
  host: string;
  /** The holder's PID namespace (`pid:[…]`): its pid means something only in the same one. */
  pidNamespace?: string;
  /** The holder's start time in clock ticks since boot (/proc/<pid>/stat): a reused pid has another. */
  processStart?: string;
};

/** The lock this process holds on a data dir; `release()` (or `using`) gives it back. */
export type DataDirLock = {
  readonly dir: string;
  readonly file: string;
  readonly holder: DataDirLockHolder;
  /** The stale lock this one replaced (its holder had died), if any. */
  readonly tookOver?: DataDirLockHolder;
  release(): void;
  [Symbol.dispose](): void;
};

const pidNamespace = (pid: number | 'self'): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
};

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
const processStart = (pid: number | 'self'): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
};

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
};

/**
 * Is the holder of a lock still running? In this PID namespace on this host its pid tells (and
 * its start time, so a reused pid does not count); elsewhere only its lease does: a holder
 * renews the lock file's mtime every LOCK_RENEW_MS.
 */
export const holderAlive = (holder: DataDirLockHolder, leaseRenewedAtMs: number, nowMs = Date.now()): boolean => {
  const sameNamespace = holder.host === hostname() && holder.pidNamespace !== undefined && holder.pidNamespace === pidNamespace('self');
  if (sameNamespace) {
    if (!pidAlive(holder.pid)) return false;
    const start = processStart(holder.pid);
    return holder.processStart === undefined || start === undefined || start === holder.processStart;
  }
  return nowMs - leaseRenewedAtMs < LOCK_LEASE_MS;
};

/** The data dir's lock as it is now: who holds it and whether they still run (readers use this). */
export const readDataDirLock = (dir: string): (DataDirLockHolder & { alive: boolean }) | undefined => {
  const file = join(dir, DATA_DIR_LOCK_FILE);
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as DataDirLockHolder;
    return { ...holder, alive: holderAlive(holder, statSync(file).mtimeMs) };
  } catch {
    return undefined;
  }
};

export const dataDirLocked = (dir: string, holder: DataDirLockHolder): SimError =>
  new SimError(
    'DataDirLocked',
    `The data dir ${dir} is in use by another simulator (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); one simulator writes a data dir at a time. Wait for it to end, or use another --data-dir. Reading it (events, insights, replay) works meanwhile.`,
    { status: 409, retryable: true, details: { pid: holder.pid, host: holder.host, startedAt: holder.startedAt } },
  );

/**
 * Take the data dir for this process: one writer at a time (docs/scenarios.md, "Exit status").
 * The lock file (mode 0600) is made complete under a temporary name and linked into place, so
 * it appears atomically and only if absent (like O_EXCL, and never half-written). A lock whose
 * holder has died is taken over (`tookOver` says whose); a live holder's refuses with
 * `DataDirLocked`. `pid` is for tests that lock on another process's behalf.
 */
export const lockDataDir = (dir: string, options: { pid?: number } = {}): DataDirLock => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, DATA_DIR_LOCK_FILE);
  const pid = options.pid ?? process.pid;
  const start = processStart(pid);
  // The namespace the pid is written in: this process's (a pid given for a test is one of ours too).
  const ns = pidNamespace('self');
  const holder: DataDirLockHolder = {
    pid,
    startedAt: new Date().toISOString(),
    host: hostname(),
    ...(ns ? { pidNamespace: ns } : {}),
    ...(start ? { processStart: start } : {}),
  };
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(holder)}\n`);
  } finally {
    closeSync(fd);
  }
  let tookOver: DataDirLockHolder | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw e;
      }
      const current = readDataDirLock(dir);
      if (current?.alive) throw dataDirLocked(dir, current);
      // A dead holder's lock (or an unreadable one) goes. Renamed aside first, so that of two
      // simulators taking over at once only one removes it; the other retries and finds the winner's.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
        unlinkSync(aside);
      } catch {
        continue;
      }
      if (current) {
        const { alive: _alive, ...dead } = current;
        tookOver = dead;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  // The lease: renewed while this process runs (unref'd, it never keeps the process alive); a
  // lock taken for another pid is that process's to renew.
  const renew = setInterval(() => {
    if (pid !== process.pid) return;
    try {
      const now = new Date();
      utimesSync(file, now, now);
    } catch {
      // the lock went (released or removed by hand): nothing to renew
    }
  }, LOCK_RENEW_MS);
  renew.unref();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(renew);
    try {
      // Only our own lock: one taken over by someone else meanwhile is theirs.
      const now = JSON.parse(readFileSync(file, 'utf8')) as DataDirLockHolder;
      if (now.pid === holder.pid && now.startedAt === holder.startedAt) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  return { dir, file, holder, ...(tookOver ? { tookOver } : {}), release, [Symbol.dispose]: release };
};
