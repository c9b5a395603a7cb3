import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connectDocker } from '@amlsim/docker';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { foldRun, runStatusOf, STREAMS, type StoredEvent } from '@amlsim/core';
import { nanoIds, recoverAbandonedSessions } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { openEventStore } from '@amlsim/store';
import { REPO, SCENARIO_DIR, tempDir, isRunning, amlsim, amlsimWith, privateLeaseHome, simulatorMidRun } from './helpers';

/**
 * A simulator killed with SIGKILL mid-run leaves a log whose run, node and channel say they
 * are alive. The next one that holds the data dir ends them with facts (RunFailed
 * PlatformRestarted, token revoked, node released and deprovisioned, channel closed, one
 * SessionRecovered) and the log satisfies every invariant again.
 */


describe.each(['process', 'docker'])('recovery after SIGKILL (driver %s)', (driver) => {
  it('the next simulator ends the killed session: the run fails PlatformRestarted, its node goes, every invariant holds', async () => {
    using tmp = tempDir();
    let killed: string | undefined;
    const dataDir = join(tmp.dir, 'data');
    const script = join(REPO, 'test', `.recovery-child-${process.pid}-${driver}.mts`);
    writeFileSync(script, simulatorMidRun(dataDir, driver));
    // Its own lease home: the killed session is swept by this test's resume, not first by another test's simulator.
    const home = privateLeaseHome(tmp.dir);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: home } });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (c) => {
          out += c;
          const m = /RUNNING \S+ \S+/.exec(out);
          if (m) resolve(m[0]);
        });
        child.stderr.on('data', (c) => (err += c));
        child.on('exit', (code) => reject(new Error(`the simulator exited (${code}) before its run was Running: ${err}`)));
      });
      const [, runId, session] = line.split(' ') as [string, string, string];
      killed = session;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      const store = openEventStore('sqlite', dataDir);
      try {
        const before = [...store.readAll()];
        expect(runStatusOf(foldRun(before.filter((e) => e.stream === STREAMS.run(runId)))!.snapshot)).toBe('Running');
        if (driver === 'process') {
          // The management process died with its simulator: it was started to.
          const container = String(before.find((e) => e.type === 'ContainerStarted')!.data.container);
          const pid = Number(container.replace('pid-', ''));
          for (let i = 0; i < 250 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 20));
          expect(isRunning(pid)).toBe(false);
        }
        const recovered = recoverAbandonedSessions(store, { by: 'test', ids: nanoIds(), now: Date.now });
        expect(recovered).toEqual([expect.objectContaining({ session, runs: [runId], nodes: ['cpu/node-1'] })]);
        const after: StoredEvent[] = [...store.readAll()];
        // Nothing lost or duplicated: positions stay contiguous.
        expect(after.map((e) => e.position)).toEqual(after.map((_, i) => i + 1));
        const run = foldRun(after.filter((e) => e.stream === STREAMS.run(runId)))!;
        expect(runStatusOf(run.snapshot)).toBe('Failed');
        expect(run.snapshot.context.reason).toContain('PlatformRestarted');
        expect(after.filter((e) => e.type === 'SessionRecovered').map((e) => e.data.session)).toEqual([session]);
        const { SecretRegistry } = await import('@amlsim/platform');
        const violations = checkInvariants(after, { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers');
        expect(violations.map((v) => `${v.invariant}: ${v.message}`)).toEqual([]);
        // Twice is once.
        expect(recoverAbandonedSessions(store, { by: 'test', ids: nanoIds(), now: Date.now })).toEqual([]);
      } finally {
        store.close();
      }
      // The CLI agrees: nothing left to recover, and replay finds the recovered session as it was saved.
      const resume = amlsimWith({ TMPDIR: home }, 'resume', '--data-dir', dataDir);
      expect(resume.status).toBe(0);
      // Nothing left to recover in the log (what the killed simulator left running is swept).
      expect(resume.stderr).not.toContain('recovered session');
      expect(resume.stderr).toContain(`swept what session ${session} left`);
      const replayed = amlsim('replay', '--data-dir', dataDir);
      expect(replayed.stdout).toContain(`↻ session ${session}`);
      expect(replayed.status).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      // Docker containers outlive a killed simulator; the next start's sweep takes them once its
      // lease lapses. This test does not wait for that: it removes the session's objects itself.
      if (killed && driver === 'docker') {
        const engine = await connectDocker();
        await engine.sweep({ session: killed });
        await engine.close();
      }
      (await import('node:fs')).rmSync(script, { force: true });
    }
  }, 120_000);
});

describe('amlsim resume', () => {
  it('takes the data dir, ends a killed session it finds, and says what it ended', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const script = join(REPO, 'test', `.recovery-child-${process.pid}-cli.mts`);
    writeFileSync(script, simulatorMidRun(dataDir, 'process'));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const session = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c) => {
          out += c;
          const m = /RUNNING \S+ (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`the simulator exited (${code}) early`)));
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // Before: replay says the killed session has nothing saved (exit 1).
      expect(amlsim('replay', '--data-dir', dataDir).status).toBe(1);
      const resume = amlsim('resume', '--data-dir', dataDir);
      expect(resume.status).toBe(0);
      // The session goes on first: its run, whose process died with the simulator, fails at once; then recovery ends the rest.
      expect(resume.stderr).toContain(`failed PlatformRestarted: its target did not outlive the simulator`);
      expect(resume.stderr).toContain(`recovered session ${session}`);
      expect(resume.stderr).toContain('1 node(s) deprovisioned');
      const events = amlsim('events', '--data-dir', dataDir, '--json');
      const types = events.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
      expect(types.filter((t) => t === 'SessionRecovered')).toHaveLength(1);
      expect(amlsim('replay', '--data-dir', dataDir).status).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      (await import('node:fs')).rmSync(script, { force: true });
    }
  }, 120_000);
});

describe('amlsim resume on a data dir with no log', () => {
  it('exits 2, says so, and makes nothing', () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'none');
    const r = amlsim('resume', '--data-dir', dataDir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`no event log at ${join(dataDir, 'events.sqlite')}`);
    expect(existsSync(dataDir)).toBe(false);
  });
});
