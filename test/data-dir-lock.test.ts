import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DATA_DIR_LOCK_FILE, LOCK_LEASE_MS, lockDataDir, readDataDirLock } from '@amlsim/platform';
import { REPO, SCENARIO_DIR, tempDir } from './helpers';

const require = createRequire(join(REPO, 'packages', 'store', 'package.json'));
const Database = require('better-sqlite3') as typeof import('better-sqlite3');

const amlsim = (args: string[]) => {
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts'), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const QUICK = join(SCENARIO_DIR, 'role-matrix.yaml');

/** A live process that is not this one: the holder of a lock taken on its behalf. */
const children: ChildProcess[] = [];
const liveProcess = (): number => {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  children.push(child);
  return child.pid!;
};
/** The pid of a process that has ended (and been reaped). */
const deadPid = (): number => spawnSync('true').pid!;

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('a data dir is written by one simulator at a time', () => {
  it('a second writer is refused with exit 75 naming the holder, and writes nothing', () => {
    using tmp = tempDir();
    const holder = liveProcess();
    using _lock = lockDataDir(tmp.dir, { pid: holder });
    const r = amlsim(['run', QUICK, '--data-dir', tmp.dir]);
    expect(r.code).toBe(75);
    expect(r.stderr).toContain(`DataDirLocked: The data dir ${tmp.dir} is in use by another simulator (pid ${holder} on ${hostname()}`);
    expect(r.stdout).toBe('');
    expect(existsSync(join(tmp.dir, 'events.sqlite'))).toBe(false);
    // The holder's lock is untouched.
    expect(JSON.parse(readFileSync(join(tmp.dir, DATA_DIR_LOCK_FILE), 'utf8'))).toMatchObject({ pid: holder });
  });

  it('takes over the lock of a simulator that died, says so, and leaves no lock behind', () => {
    using tmp = tempDir();
    const dead = deadPid();
    lockDataDir(tmp.dir, { pid: dead }); // never released: its holder is gone
    const r = amlsim(['run', QUICK, '--data-dir', tmp.dir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`took over the data dir's lock from pid ${dead}`);
    expect(r.stdout).toContain('✓ Role matrix of S2.2');
    expect(existsSync(join(tmp.dir, DATA_DIR_LOCK_FILE))).toBe(false);
  });

  it('readers (events, insights, replay) work while a writer holds the data dir', () => {
    using tmp = tempDir();
    expect(amlsim(['run', QUICK, '--data-dir', tmp.dir]).code).toBe(0);
    using _lock = lockDataDir(tmp.dir, { pid: liveProcess() });
    const events = amlsim(['events', '--data-dir', tmp.dir, '--json']);
    expect(events.code).toBe(0);
    expect(events.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toContain('WorkspaceCreated');
    const insights = amlsim(['insights', '--data-dir', tmp.dir]);
    expect(insights.code).toBe(0);
    expect(insights.stderr).toContain('0 record(s)');
    const replay = amlsim(['replay', '--data-dir', tmp.dir]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('read models and aggregates match');
  });

  it('the lock file is the holder\'s alone (0600), names its pid, and goes on release', () => {
    using tmp = tempDir();
    const lock = lockDataDir(tmp.dir);
    const file = join(tmp.dir, DATA_DIR_LOCK_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readDataDirLock(tmp.dir)).toMatchObject({ pid: process.pid, alive: true, host: hostname() });
    expect(() => lockDataDir(tmp.dir)).toThrow(/in use by another simulator \(pid \d+/);
    lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('a reused pid does not hold a lock (its process started at another time)', () => {
    using tmp = tempDir();
    const pid = liveProcess();
    lockDataDir(tmp.dir, { pid });
    const file = join(tmp.dir, DATA_DIR_LOCK_FILE);
    const held = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...held, processStart: String(Number(held.processStart) - 1) }));
    expect(readDataDirLock(tmp.dir)?.alive).toBe(false);
    expect(lockDataDir(tmp.dir).tookOver).toMatchObject({ pid });
  });

  it('a holder in another PID namespace is judged by its lease: alive while renewed, stale once it lapses', () => {
    using tmp = tempDir();
    const file = join(tmp.dir, DATA_DIR_LOCK_FILE);
    // Its pid means nothing here (1 is alive in every namespace): only the lease's age counts.
    writeFileSync(file, JSON.stringify({ pid: 1, startedAt: new Date().toISOString(), host: hostname(), pidNamespace: 'pid:[1]' }), { mode: 0o600 });
    expect(readDataDirLock(tmp.dir)?.alive).toBe(true);
    expect(() => lockDataDir(tmp.dir)).toThrow(/pid 1 /);
    const lapsed = new Date(Date.now() - LOCK_LEASE_MS - 1_000);
    utimesSync(file, lapsed, lapsed);
    expect(readDataDirLock(tmp.dir)?.alive).toBe(false);
    using lock = lockDataDir(tmp.dir);
    expect(lock.tookOver).toMatchObject({ pid: 1, pidNamespace: 'pid:[1]' });
  });
});

describe('amlsim replay exits non-zero on any ✗', () => {
  it('a session that never saved its state (its simulator was killed) is a ✗ and exit 1, unless a live writer is still on it', () => {
    using tmp = tempDir();
    expect(amlsim(['run', QUICK, join(SCENARIO_DIR, 'mfa.yaml'), '--data-dir', tmp.dir]).code).toBe(0);
    // As a simulator killed before the end of its session leaves it: no saved state for the last session.
    const db = new Database(join(tmp.dir, 'events.sqlite'));
    const rows = db.prepare('SELECT name FROM checkpoints ORDER BY position').all() as Array<{ name: string }>;
    expect(rows).toHaveLength(2);
    db.prepare('DELETE FROM checkpoints WHERE name = ?').run(rows[1]!.name);
    db.close();
    const killed = amlsim(['replay', '--data-dir', tmp.dir]);
    expect(killed.stdout).toMatch(/✗ session \S+: \d+ events\n\s+no saved state for this session: it did not finish/);
    expect(killed.code).toBe(1);

    // The same log while a live simulator holds the data dir: its last session is in progress, not a ✗.
    const holder = liveProcess();
    using _lock = lockDataDir(tmp.dir, { pid: holder });
    const live = amlsim(['replay', '--data-dir', tmp.dir]);
    expect(live.stdout).toContain(`still being written by pid ${holder}`);
    expect(live.stdout).not.toContain('✗');
    expect(live.code).toBe(0);
  });
});
