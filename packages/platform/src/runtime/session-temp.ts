import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLease, holderCertainlyDead, leaseState, readPidNamespace, readProcessStart, type LeaseOptions, type SessionLease } from '@amlsim/docker';

/**
 * The temp-dir entries of a session: `amlsim-<session>` (the control plane's socket dir),
 * `amlsim-<session>-vm-<name>` and `amlsim-<session>-<service>-<i>` (VM and replica sockets).
 * They live in the temp dir because unix socket paths are limited to 108 bytes.
 *
 * A session holds a lease, `amlsim-<session>.lease` (packages/docker/src/lease.ts), renewed
 * while it runs and removed when it closes. A simulator that dies cannot remove its entries;
 * the next one to start removes those of every lease that has lapsed. The same holds for what
 * else a lease covers: the processes it recorded (`amlsim-<id>-proc-<name>.json`, a registry)
 * and a temporary data dir (`amlsim-data-<id>`, the `--store memory` resources).
 */
const LEASE = /^amlsim-(.+)\.lease$/;
const PROC = /^amlsim-.+-proc-.+\.json$/;

/**
 * A session's entry in the temp dir: `amlsim-<session>` with no parts, else
 * `amlsim-<session>-<part>-…` (every entry of a session is named here, so the sweep finds it).
 */
export const sessionTempPath = (session: string, ...parts: string[]): string => join(tmpdir(), [`amlsim-${session}`, ...parts].join('-'));

/** Takes (and keeps renewing) the lease of `session`: its objects are not swept while it lives. */
export function holdSession(session: string, options: { dir?: string; renewMs?: number } = {}): SessionLease {
  return acquireLease(session, options);
}

/** A process a lease covers: killed by the sweep once the lease lapses. */
export type RecordedProcess = {
  pid: number;
  /** Its command line as /proc shows it: only a process with exactly this one is ever killed. */
  cmdline: string[];
  pidNamespace?: string;
  processStart?: string;
};

const procPath = (dir: string, id: string, name: string) => join(dir, `amlsim-${id}-proc-${name}.json`);

/** Records that the lease `id` covers process `pid` (running `cmdline`); returns a function that forgets it. */
export function recordSessionProcess(id: string, name: string, pid: number, cmdline: string[], dir = tmpdir()): () => void {
  const file = procPath(dir, id, name);
  const ns = readPidNamespace();
  const start = readProcessStart(pid);
  const record: RecordedProcess = { pid, cmdline, ...(ns ? { pidNamespace: ns } : {}), ...(start ? { processStart: start } : {}) };
  writeFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  return () => rmSync(file, { force: true });
}

/** A temporary data dir (`--store memory`) covered by its own lease: a crashed CLI's is swept. */
export type TemporaryDataDir = Disposable & { readonly path: string; release(): void };

/** Makes `amlsim-data-<id>` (mode 0700) in the temp dir, held by a lease until released. */
export function createTemporaryDataDir(options: { dir?: string; renewMs?: number } = {}): TemporaryDataDir {
  const dir = options.dir ?? tmpdir();
  const id = `data-${randomBytes(6).toString('hex')}`;
  const lease = acquireLease(id, options);
  const path = join(dir, `amlsim-${id}`);
  mkdirSync(path, { mode: 0o700 });
  const release = () => {
    rmSync(path, { recursive: true, force: true });
    lease.release();
  };
  return { path, release, [Symbol.dispose]: release };
}

/** What the sweep removed of one lapsed lease. */
export type SweptTemp = {
  /** The lease's id: a session id, or `data-…` for a temporary data dir. */
  session: string;
  why: 'ownerExited' | 'leaseExpired';
  tempDirs: number;
  dataDirs: number;
  registries: number;
};

/**
 * Kills a recorded process if it is certainly the one recorded: in our PID namespace, with the
 * recorded start time and command line. One in another namespace cannot be reached from here.
 */
function killRecorded(file: string): boolean {
  let record: RecordedProcess;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as RecordedProcess;
  } catch {
    return false;
  }
  if (!record.pidNamespace || record.pidNamespace !== readPidNamespace() || !Number.isInteger(record.pid) || record.pid <= 1) return false;
  if (holderCertainlyDead(record)) return false; // gone already, or its pid reused by another
  let cmdline: string[];
  try {
    cmdline = readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return false;
  }
  if (cmdline.join('\0') !== record.cmdline.join('\0')) return false;
  try {
    process.kill(record.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the temp-dir entries, recorded processes and temporary data dir of every lease that
 * has lapsed; returns one record per lease swept. Entries of live leases, and anything with no
 * lease, are left alone. A lease is claimed (renamed) before it is swept, so two sweepers
 * starting at once never both report it.
 */
export function sweepLapsedLeases(options: LeaseOptions = {}): SweptTemp[] {
  const dir = options.dir ?? tmpdir();
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir);
  const swept: SweptTemp[] = [];
  for (const name of names) {
    const id = LEASE.exec(name)?.[1];
    if (!id) continue;
    const state = leaseState(id, { ...options, dir });
    if (state.state !== 'lapsed') continue;
    const claimed = join(dir, `${name}.sweeping-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      renameSync(join(dir, name), claimed);
    } catch {
      continue; // another sweeper took it, or its owner closed meanwhile
    }
    swept.push({ session: id, why: state.why, ...removeSessionEntries(id, names, dir) });
    rmSync(claimed, { force: true });
  }
  return swept;
}

/**
 * What a session left in the temp dir but its lease: recorded processes killed first (a
 * registry still serving from a directory about to go), then its entries removed. The sweep
 * does this for a lapsed lease; a resumed session (packages/platform/src/resume.ts), whose
 * dead simulator's channels and processes it did not all take back, does it as it closes.
 */
export function removeSessionEntries(id: string, names: readonly string[] = readdirSync(tmpdir()), dir = tmpdir()): Omit<SweptTemp, 'session' | 'why'> {
  const prefix = `amlsim-${id}`;
  const entry = { tempDirs: 0, dataDirs: 0, registries: 0 };
  const mine = names.filter((n) => (n === prefix || n.startsWith(`${prefix}-`)) && !LEASE.test(n) && !n.startsWith(`${prefix}.lease`));
  for (const n of mine.filter((n) => PROC.test(n))) {
    if (killRecorded(join(dir, n))) entry.registries++;
    rmSync(join(dir, n), { force: true });
  }
  for (const n of mine.filter((n) => !PROC.test(n))) {
    rmSync(join(dir, n), { recursive: true, force: true });
    if (n === prefix && id.startsWith('data-')) entry.dataDirs++;
    else entry.tempDirs++;
  }
  return entry;
}
