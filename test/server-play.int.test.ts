import { spawn } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { openSqliteEventStore } from '@amlsim/store';
import { startServer, type PlayerView, type RunningServer } from '@amlsim/server';
import { scenarioPlayer } from '@amlsim/cli';
import { REPO, SCENARIO_DIR, privateLeaseHome, simulatorMidRun, tempDir } from './helpers';

/**
 * `amlsim serve`'s scenario player (docs/server.md "Playing a scenario") over real HTTP on
 * 127.0.0.1, on a real SQLite log, with the CLI's own wiring and the process driver: step mode
 * stops before each step, run mode plays to the end, an invalid upload records nothing, a reset
 * closes the session, one play at a time.
 */

const open: Array<{ server: RunningServer; store: EventStore; tmp: { [Symbol.dispose](): void } }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.server.close();
    o.store.close();
    o.tmp[Symbol.dispose]();
  }
});

const serve = async () => {
  const tmp = tempDir('amlsim-play-');
  const store = openSqliteEventStore({ file: join(tmp.dir, 'events.sqlite') });
  const server = await startServer({ store, dataDir: tmp.dir, port: 0, scenariosDir: SCENARIO_DIR, player: scenarioPlayer(store, tmp.dir) });
  open.push({ server, store, tmp });
  return { server, store, dir: tmp.dir };
};

const call = async <T = PlayerView>(server: RunningServer, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${server.url}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
};

const ofType = (store: EventStore, type: string): StoredEvent[] => [...store.readAll(0)].filter((e) => e.type === type);

const until = async (server: RunningServer, states: string[], ms = 30_000): Promise<PlayerView> => {
  const end = Date.now() + ms;
  for (;;) {
    const { body } = await call(server, 'GET', '/api/play');
    if (states.includes(body.state)) return body;
    if (Date.now() > end) throw new Error(`player still ${body.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('amlsim serve: the scenario player', () => {
  it('step mode stops before each step: each POST /api/play/step plays exactly one, and GET /api/play names the next', async () => {
    const { server, store } = await serve();
    const started = await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'step' });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ state: 'paused', scenario: { name: 'Multi-factor authentication is enforced' }, nextStep: { index: 0, verb: 'signIn' } });
    expect(started.body.nextStep!.yaml).toContain('signIn: { principal: alice, mfa: false }');
    expect(ofType(store, 'ScenarioStarted')).toHaveLength(1);
    expect(ofType(store, 'ScenarioStepEnded')).toHaveLength(0);
    const total = 6;
    for (let i = 0; i < total; i++) {
      const stepped = await call(server, 'POST', '/api/play/step');
      expect(stepped.status).toBe(200);
      expect(ofType(store, 'ScenarioStepEnded').map((e) => e.data.index)).toEqual(Array.from({ length: i + 1 }, (_, k) => k));
      const now = await call(server, 'GET', '/api/play');
      if (i < total - 1) {
        expect(now.body).toMatchObject({ state: 'paused', nextStep: { index: i + 1 } });
        expect(now.body.nextStep!.line).toBeGreaterThan(0);
      } else expect(now.body).toMatchObject({ state: 'finished', passed: true, nextStep: null });
    }
    const idle = await call(server, 'POST', '/api/play/step');
    expect(idle.status).toBe(409);
  });

  it('run mode plays to the end and reports passed; its session closed cleanly', async () => {
    const { server } = await serve();
    const started = await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'run' });
    expect(started.status).toBe(200);
    const done = await until(server, ['finished', 'failed']);
    expect(done).toMatchObject({ state: 'finished', passed: true, failures: [], nextStep: null });
    const { body } = await call<{ sessions: Array<{ id: string; closed: boolean; scenario?: { name: string } }> }>(server, 'GET', '/api/sessions');
    expect(body.sessions).toEqual([expect.objectContaining({ closed: true, scenario: expect.objectContaining({ name: 'Multi-factor authentication is enforced' }) })]);
  });

  it('an uploaded file with a YAML error gets 400 with its file:line:col, and nothing is appended', async () => {
    const { server, store } = await serve();
    const head = store.headPosition();
    const yaml = 'name: broken\nsteps:\n  - signIn: { principal: alice\n';
    const res = await call<{ error: { code: string; message: string; issues: Array<{ file: string; line: number; col: number; message: string }> } }>(server, 'POST', '/api/play', { yaml, name: 'upload.yaml', mode: 'run' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('ScenarioInvalid');
    expect(res.body.error.issues.length).toBeGreaterThan(0);
    const issue = res.body.error.issues[0]!;
    expect(issue.file).toMatch(/upload\.yaml$/);
    expect(issue.line).toBeGreaterThanOrEqual(3);
    expect(res.body.error.message).toContain(`upload.yaml:${issue.line}:${issue.col}: `);
    expect(store.headPosition()).toBe(head);
    expect((await call(server, 'GET', '/api/play')).body.state).toBe('idle');
    // A file outside the scenarios dir is refused, naming it.
    const outside = await call<{ error: { code: string; message: string } }>(server, 'POST', '/api/play', { scenario: '../package.json' });
    expect(outside.status).toBe(400);
    expect(outside.body.error.message).toContain('../package.json');
    expect(store.headPosition()).toBe(head);
  });

  it('a reset during a paused play closes its session cleanly, and a new play can start', async () => {
    const { server, store } = await serve();
    await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'step' });
    await call(server, 'POST', '/api/play/step');
    await call(server, 'POST', '/api/play/step');
    const session = String(ofType(store, 'ScenarioStarted')[0]!.meta.session);
    const reset = await call(server, 'POST', '/api/play/reset');
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ state: 'idle', scenario: null, nextStep: null });
    expect(ofType(store, 'ScenarioStepEnded')).toHaveLength(2);
    const { body } = await call<{ sessions: Array<{ id: string; closed: boolean }> }>(server, 'GET', '/api/sessions');
    expect(body.sessions.find((s) => s.id === session)).toMatchObject({ closed: true });
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`amlsim-${session}`))).toEqual([]);
    const again = await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'run' });
    expect(again.status).toBe(200);
    expect(await until(server, ['finished', 'failed'])).toMatchObject({ state: 'finished', passed: true });
  });

  it('a second play while one plays is 409 naming it; step, pause and resume when idle are 409 saying what is allowed', async () => {
    const { server } = await serve();
    for (const verb of ['step', 'pause', 'resume']) {
      const res = await call<{ error: { code: string; message: string } }>(server, 'POST', `/api/play/${verb}`);
      expect(res.status).toBe(409);
      expect(res.body.error.message).toContain('idle');
      expect(res.body.error.message).toContain('POST /api/play');
    }
    await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'step' });
    const second = await call<{ error: { code: string; message: string } }>(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'run' });
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'Conflict' });
    expect(second.body.error.message).toContain('Multi-factor authentication is enforced');
    await call(server, 'POST', '/api/play/reset');
  });

  it('a play first ends what a killed simulator left in the data dir, as amlsim run does: its run fails PlatformRestarted and its session is recovered before the play begins', async () => {
    const tmp = tempDir('amlsim-play-crashed-');
    const dataDir = tmp.dir;
    const script = join(REPO, 'test', `.play-crashed-child-${process.pid}.mts`);
    writeFileSync(script, simulatorMidRun(dataDir, 'process'));
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: privateLeaseHome(dataDir) } });
    let killed: { runId: string; session: string };
    try {
      killed = await new Promise((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (c) => {
          out += c;
          const m = /RUNNING (\S+) (\S+)/.exec(out);
          if (m) resolve({ runId: m[1]!, session: m[2]! });
        });
        child.stderr.on('data', (c) => (err += c));
        child.on('exit', (code) => reject(new Error(`the simulator exited (${code}) before its run was Running: ${err}`)));
      });
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
      rmSync(script, { force: true });
    }
    const store = openSqliteEventStore({ file: join(dataDir, 'events.sqlite') });
    const server = await startServer({ store, dataDir, port: 0, scenariosDir: SCENARIO_DIR, player: scenarioPlayer(store, dataDir) });
    open.push({ server, store, tmp });
    expect((await call(server, 'POST', '/api/play', { scenario: 'mfa.yaml', mode: 'run' })).status).toBe(200);
    const end = await until(server, ['finished', 'failed'], 60_000);
    expect(end.passed).toBe(true);
    const all = [...store.readAll(0)];
    const recovered = all.filter((e) => e.type === 'SessionRecovered');
    expect(recovered.map((e) => e.data.session)).toEqual([killed.session]);
    const failed = all.find((e) => e.type === 'RunFailed' && e.data.runId === killed.runId);
    expect(String(failed?.data.reason)).toContain('PlatformRestarted');
    // Ended before the play's own session began.
    const started = all.find((e) => e.type === 'ScenarioStarted' && e.meta.session !== killed.session)!;
    expect(recovered[0]!.position).toBeLessThan(started.position);
  });
});
