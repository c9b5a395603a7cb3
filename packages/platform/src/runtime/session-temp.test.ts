import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { leaseFile, readPidNamespace } from '@amlsim/docker';
import { createTemporaryDataDir, holdSession, recordSessionProcess, sweepLapsedLeases } from './session-temp';

const dirs: string[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'amlsim-session-temp-test-'));
  dirs.push(d);
  return d;
};
const entries = (dir: string, session: string) => {
  for (const entry of [`amlsim-${session}`, `amlsim-${session}-vm-box`, `amlsim-${session}-svc_1-0`]) {
    mkdirSync(join(dir, entry));
    writeFileSync(join(dir, entry, 'replica.sock'), '');
  }
};
/** A lease as a simulator in another PID namespace writes it: its pid means nothing here. */
const foreignLease = (dir: string, session: string, ageMs: number) => {
  const file = leaseFile(session, dir);
  writeFileSync(file, JSON.stringify({ id: session, pid: 2, host: 'elsewhere', pidNamespace: 'pid:[1]', startedAt: new Date().toISOString() }));
  const then = new Date(Date.now() - ageMs);
  utimesSync(file, then, then);
};
const deadPid = async () => {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
};

describe('session temp entries and leases', () => {
  it('a lease renewed by its holder keeps its entries past the TTL; one not renewed lapses, and only its entries go', async () => {
    const dir = temp();
    entries(dir, 's_live');
    entries(dir, 's_stale');
    mkdirSync(join(dir, 'amlsim-s_stale2')); // a session whose name merely starts the same
    mkdirSync(join(dir, 'amlsim-unleased')); // no lease: nothing says its owner is gone
    const live = holdSession('s_live', { dir, renewMs: 50 });
    cleanups.push(() => live.release());
    foreignLease(dir, 's_stale', 0);
    await new Promise((r) => setTimeout(r, 400)); // both leases are now older than the TTL, unless renewed

    expect(sweepLapsedLeases({ dir, ttlMs: 300 })).toEqual([{ session: 's_stale', why: 'leaseExpired', tempDirs: 3, dataDirs: 0, registries: 0 }]);
    for (const gone of ['amlsim-s_stale', 'amlsim-s_stale-vm-box', 'amlsim-s_stale-svc_1-0', 'amlsim-s_stale.lease']) expect(existsSync(join(dir, gone))).toBe(false);
    for (const kept of ['amlsim-s_live', 'amlsim-s_live-vm-box', 'amlsim-s_live-svc_1-0', 'amlsim-s_live.lease', 'amlsim-s_stale2', 'amlsim-unleased']) expect(existsSync(join(dir, kept))).toBe(true);

    live.release();
    expect(existsSync(join(dir, 'amlsim-s_live.lease'))).toBe(false);
    expect(sweepLapsedLeases({ dir, ttlMs: 300 })).toEqual([]); // released: its owner closed; nothing is judged
  });

  it('a lease from another PID namespace is alive until its TTL, whatever its pid looks like here', () => {
    const dir = temp();
    entries(dir, 's_other');
    foreignLease(dir, 's_other', 1_000);
    expect(sweepLapsedLeases({ dir, ttlMs: 60_000 })).toEqual([]);
    expect(existsSync(join(dir, 'amlsim-s_other'))).toBe(true);
  });

  it('a holder seen dead from its own PID namespace is swept at once, without waiting for the TTL', async () => {
    const dir = temp();
    entries(dir, 's_dead');
    writeFileSync(leaseFile('s_dead', dir), JSON.stringify({ id: 's_dead', pid: await deadPid(), host: 'here', pidNamespace: readPidNamespace(), startedAt: new Date().toISOString() }));
    expect(sweepLapsedLeases({ dir, ttlMs: 60_000 })).toMatchObject([{ session: 's_dead', why: 'ownerExited', tempDirs: 3 }]);
  });

  it('a temporary data dir and a recorded process go with their lapsed lease', async () => {
    const dir = temp();
    const data = createTemporaryDataDir({ dir, renewMs: 60_000 });
    writeFileSync(join(data.path, 'events.json'), '[]');
    const id = data.path.slice(data.path.lastIndexOf('amlsim-') + 'amlsim-'.length);
    // A process the lease covers (as a registry): it must be killed, not left serving.
    const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    cleanups.push(() => child.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 50));
    recordSessionProcess(id, 'registry-acr', child.pid!, ['/bin/sleep', '30'], dir);
    const exited = once(child, 'exit');
    // An unrelated live process recorded with another command line is never touched.
    const other = spawn('/bin/sleep', ['31'], { stdio: 'ignore' });
    cleanups.push(() => other.kill('SIGKILL'));
    recordSessionProcess(id, 'registry-other', other.pid!, ['/usr/bin/docker-registry', 'serve', '/x.yml'], dir);

    expect(sweepLapsedLeases({ dir, ttlMs: 60_000 })).toEqual([]); // held
    await new Promise((r) => setTimeout(r, 200));
    expect(sweepLapsedLeases({ dir, ttlMs: 100 })).toEqual([{ session: id, why: 'leaseExpired', tempDirs: 0, dataDirs: 1, registries: 1 }]);
    expect(existsSync(data.path)).toBe(false);
    await exited;
    expect(child.signalCode).toBe('SIGKILL');
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    data.release();
  });
});
