import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Session leases: how a start-up sweep tells a live simulator from a dead one.
 *
 * A pid is no such signal: a simulator in another PID namespace (two CI jobs on one Docker
 * engine, or `unshare --pid`) has pids that mean nothing here, so "no such process" said
 * nothing about it, and the sweep used to kill its running containers. Instead each session
 * holds a lease: the file `amlsim-<id>.lease` in the temp dir, whose mtime the owner renews
 * every {@link LEASE_RENEW_MS} with an unref'd timer, and removes when it closes. A lease is
 * alive until it has not been renewed for {@link LEASE_TTL_MS}, whoever looks at it, from any
 * namespace that sees the same temp dir (as testcontainers' reaper removes a session's objects
 * when its connection drops, not when a pid looks dead).
 *
 * The pid is kept only as a fast path that cannot be wrong: a sweeper in the lease holder's
 * own PID namespace that finds no process with that pid (or one started at another time: a
 * reused pid) knows the holder is dead at once, without waiting for the TTL.
 *
 * Docker objects of a session are labelled with the temp dir's *lease home* (a random id kept
 * in `amlsim-lease-home`), and only when the session held a lease as they were made: a sweeper
 * judges an object only if it sees the same lease home, so a simulator whose temp dir is not
 * ours (another container sharing the engine) is never judged dead for want of a lease file.
 */

/** How often a holder renews its lease. */
export const LEASE_RENEW_MS = 2_000;
/**
 * A lease not renewed for this long has lapsed. Much longer than the renewal period, so a
 * holder whose event loop was busy for a while (a long replay) is not taken for dead.
 */
export const LEASE_TTL_MS = 30_000;

const HOME_FILE = 'amlsim-lease-home';

/** What a lease file says about its holder. */
export interface LeaseHolder {
  id: string;
  pid: number;
  host: string;
  /** `pid:[inode]` of the holder's PID namespace: its pid means something only there. */
  pidNamespace?: string;
  /** The holder's start time (clock ticks since boot, /proc/<pid>/stat field 22): a reused pid has another. */
  processStart?: string;
  startedAt: string;
}

/** Where leases are kept and when they lapse. */
export interface LeaseOptions {
  /** The directory of lease files; default the temp dir. */
  dir?: string;
  /** A lease not renewed for this long has lapsed; default {@link LEASE_TTL_MS}. */
  ttlMs?: number;
}

/** A lease this process holds. */
export interface SessionLease extends Disposable {
  readonly id: string;
  readonly file: string;
  /** The lease home of its directory (see {@link leaseHome}). */
  readonly home: string;
  /** Renews it now (the timer does so every renewal period). */
  renew(): void;
  /** Removes the lease: the session closed cleanly. Idempotent. */
  release(): void;
}

/**
 * How a lease looks to a sweeper: `held` (alive), `lapsed` (its holder is dead: `ownerExited`
 * when the fast path saw it, `leaseExpired` when it was not renewed in time), or `absent` (the
 * holder released it, or another sweeper took it).
 */
export type LeaseState = { state: 'held'; holder?: LeaseHolder } | { state: 'lapsed'; why: 'ownerExited' | 'leaseExpired'; holder?: LeaseHolder } | { state: 'absent' };

export const leaseFile = (id: string, dir: string = tmpdir()): string => join(dir, `amlsim-${id}.lease`);

/** The lease home of `dir`: a random id made once per temp dir, so labels can say which temp dir holds their lease. */
export function leaseHome(dir: string = tmpdir()): string {
  const file = join(dir, HOME_FILE);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    try {
      writeFileSync(file, `${randomBytes(8).toString('hex')}\n`, { flag: 'wx', mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it first: use theirs
    }
    return readFileSync(file, 'utf8').trim();
  }
}

export const readPidNamespace = (pid: number | 'self' = 'self'): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
};

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
export const readProcessStart = (pid: number | 'self' = 'self'): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
};

/**
 * Whether `holder` is certainly dead, judged from here: only in its own PID namespace (else
 * its pid names nobody here) and only when no process has its pid, or the one that has it
 * started at another time. `false` means "cannot tell", never "alive".
 */
export function holderCertainlyDead(holder: Pick<LeaseHolder, 'pid' | 'pidNamespace' | 'processStart'>): boolean {
  const ours = readPidNamespace();
  if (!ours || !holder.pidNamespace || holder.pidNamespace !== ours) return false;
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  const start = readProcessStart(holder.pid);
  return holder.processStart !== undefined && start !== undefined && start !== holder.processStart;
}

/** Takes a lease on `id` for this process and renews it until released. */
export function acquireLease(id: string, options: { dir?: string; renewMs?: number } = {}): SessionLease {
  const dir = options.dir ?? tmpdir();
  const file = leaseFile(id, dir);
  const home = leaseHome(dir);
  const holder: LeaseHolder = {
    id,
    pid: process.pid,
    host: hostname(),
    ...optional('pidNamespace', readPidNamespace()),
    ...optional('processStart', readProcessStart()),
    startedAt: new Date().toISOString(),
  };
  const write = () => {
    // Written whole, then renamed: a sweeper never reads half a lease.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(holder)}\n`, { mode: 0o644 });
    renameSync(tmp, file);
  };
  write();
  let released = false;
  const renew = () => {
    if (released) return;
    const now = new Date();
    try {
      utimesSync(file, now, now);
    } catch (e) {
      // Gone while we live: a sweeper took us for dead (this process was stopped for longer
      // than the TTL). Take it again, so what is left of the session is not swept too.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') write();
    }
  };
  const timer = setInterval(renew, options.renewMs ?? LEASE_RENEW_MS);
  timer.unref();
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(timer);
    rmSync(file, { force: true });
  };
  return { id, file, home, renew, release, [Symbol.dispose]: release };
}

/** How the lease on `id` looks from here (see {@link LeaseState}). */
export function leaseState(id: string, options: LeaseOptions & { now?: number } = {}): LeaseState {
  const file = leaseFile(id, options.dir);
  let mtimeMs: number;
  let holder: LeaseHolder | undefined;
  try {
    mtimeMs = statSync(file).mtimeMs;
    holder = JSON.parse(readFileSync(file, 'utf8')) as LeaseHolder;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    holder = undefined; // unreadable content: judge by its age alone
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return { state: 'absent' };
    }
  }
  const h = holder ? { holder } : {};
  if (holder && holderCertainlyDead(holder)) return { state: 'lapsed', why: 'ownerExited', ...h };
  if ((options.now ?? Date.now()) - mtimeMs > (options.ttlMs ?? LEASE_TTL_MS)) return { state: 'lapsed', why: 'leaseExpired', ...h };
  return { state: 'held', ...h };
}

const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } => (value === undefined ? {} : ({ [key]: value } as { [P in K]?: V }));
