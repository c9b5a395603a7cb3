import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { aliceScenarioYaml, docker, logOf, privateLeaseHome, REPO, runCliAndKill, sessionLeftovers, tempDir } from './helpers';

/**
 * A run survives its simulator (docs/control-plane.md "When the platform restarts"): the CLI is
 * SIGKILLed while a run's container runs its script; `amlsim resume` goes on with the dead
 * session, re-attaches the container (same channel, same token), and the run ends as it would
 * have — Completed with its metrics written back — or, when its token fell due while nothing
 * ran, with the expiry fired first. A container that is gone ends the run PlatformRestarted.
 */

const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const homeOf = privateLeaseHome;
const cli = (home: string, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });

/** A scenario in `dir` training `sleepy` (sleeps `ms`, then logs slept_ms) on a one-node cluster. */
const writeScenario = (dir: string, ms: number, options = '{}'): string => {
  cpSync(join(REPO, 'scenarios', 'code', 'sleepy'), join(dir, 'code', 'sleepy'), { recursive: true });
  const file = join(dir, 'long-run.yaml');
  writeFileSync(
    file,
    aliceScenarioYaml('A long run', options, [
      '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1 }',
      '  - id: r1',
      `    submitRun: { workspace: ws1, experiment: exp1, compute: cpu, source: code/sleepy, script: train.js, args: [${ms}] }`,
      '  - waitForRun: { run: r1, timeout: 2m }',
      '    expect: { status: Completed }',
    ]),
  );
  return file;
};

/** Run `scenario`, SIGKILL the CLI once the run's script is running; resolves with the session and run. */
const RUNNING = (e: StoredEvent) => e.type === 'RunStatusReported' && e.data.status === 'Running';

const runAndKillWhileRunning = async (home: string, scenario: string, dataDir: string, killAt = RUNNING): Promise<{ session: string; runId: string }> => {
  const { killedAt } = await runCliAndKill(scenario, dataDir, killAt, { ...process.env, TMPDIR: home });
  if (!killedAt) throw new Error('the run never reached the kill point');
  return { session: killedAt.meta.session, runId: String(killedAt.data.runId) };
};


const checkLog = (events: StoredEvent[]) => {
  expect(events.every((e, i) => e.position === i + 1)).toBe(true);
  expect(checkInvariants(events, { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers')).toEqual([]);
};

describe('a run whose container outlived its simulator is re-attached by resume', () => {
  it('goes on with the run: same channel and token, metrics written back, Completed, nothing left', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = homeOf(tmp.dir);
    const { session, runId } = await runAndKillWhileRunning(home, writeScenario(tmp.dir, 4_000), dataDir);
    // The container runs on without its simulator.
    expect(docker('ps', '-q', '--filter', `label=dev.amlsim.run=${runId}`)).toHaveLength(1);

    const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
    expect(resume.status, resume.stderr).toBe(0);
    expect(resume.stdout).toContain(`"kind":"reattached","session":"${session}","runs":["${runId}"]`);
    expect(resume.stdout).toContain(`"kind":"resumedRun","session":"${session}","runId":"${runId}","status":"Completed"`);
    // The scenario's remaining step (waitForRun, expect Completed) was played in the same session, and passed.
    expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${join(tmp.dir, 'long-run.yaml')}","passed":true`);

    const events = logOf(dataDir);
    const run = events.filter((e) => e.data.runId === runId);
    const types = run.map((e) => e.type);
    const reattached = run.find((e) => e.type === 'RunReattached')!;
    expect(reattached.meta.session).toBe(session); // the same session goes on, not a new one
    const opened = run.find((e) => e.type === 'RunChannelOpened')!;
    expect(reattached.data.channel).toBe(opened.data.channel);
    expect(reattached.data.socket).toBe(opened.data.socket);
    // After it: the script's write-back, on the run's own channel with its own token, then its end.
    const after = run.slice(run.indexOf(reattached) + 1);
    const written = after.find((e) => e.type === 'MetricsWrittenBack')!;
    expect(written).toBeDefined();
    const issued = run.find((e) => e.type === 'RunTokenIssued')!;
    expect(written.meta.channel).toBe(opened.data.channel);
    expect(written.meta.tokenId).toBe(issued.data.tokenId);
    expect(types.indexOf('RunCompleted')).toBeGreaterThan(types.indexOf('RunReattached'));
    expect(types).toContain('RunTokenRevoked');
    expect(types).not.toContain('RunFailed');
    const metrics = events.filter((e) => e.type === 'MetricsWrittenBack' && e.data.runId === runId);
    expect(JSON.stringify(metrics.map((m) => m.data))).toContain('slept_ms');
    checkLog(events);
    expect(cli(home, 'replay', '--data-dir', dataDir).status).toBe(0);
    // The session closed once its run ended: nothing of it is left, nor its saved key.
    expect(sessionLeftovers(home, session)).toEqual([]);
    expect(existsSync(join(dataDir, 'platform', 'sessions', `${session}.sealed`))).toBe(false);
  }, 180_000);

  it("killed between the script's end and the run's: the end it named is carried out on resume, and the end reported again is taken once", async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = homeOf(tmp.dir);
    const { session, runId } = await runAndKillWhileRunning(home, writeScenario(tmp.dir, 200), dataDir, (e) => e.type === 'RunScriptEnded');
    const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
    expect(resume.status, resume.stderr).toBe(0);
    expect(resume.stdout).toContain('"kind":"continued"');
    expect(resume.stdout).toContain('"passed":true');
    const run = logOf(dataDir).filter((e) => e.data.runId === runId);
    const types = run.map((e) => e.type);
    expect(types.filter((t) => t === 'RunScriptEnded')).toHaveLength(1);
    expect(types).toContain('RunCompleted');
    expect(types).not.toContain('RunFailed');
    expect(types.filter((t) => t === 'NodeReleased')).toHaveLength(1);
    checkLog(logOf(dataDir));
    expect(sessionLeftovers(home, session)).toEqual([]);
  }, 180_000);

  it('killed once its run had ended but before its container ran down: the exit, the node back to its cluster and the closed channel are recorded on resume, as they would have been', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = homeOf(tmp.dir);
    const { session, runId } = await runAndKillWhileRunning(home, writeScenario(tmp.dir, 200), dataDir, (e) => e.type === 'RunCompleted');
    const killedAfter = logOf(dataDir).filter((e) => e.data.runId === runId).length;
    const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
    expect(resume.status, resume.stderr).toBe(0);
    expect(resume.stdout).toContain('"passed":true');
    const run = logOf(dataDir).filter((e) => e.data.runId === runId);
    const after = run.slice(killedAfter).map((e) => e.type);
    expect(after).toContain('RunReattached');
    expect(after).toEqual(expect.arrayContaining(['ContainerExited', 'NodeReleased', 'RunChannelClosed']));
    const types = run.map((e) => e.type);
    expect(types.filter((t) => t === 'RunCompleted')).toHaveLength(1);
    expect(types.filter((t) => t === 'RunTokenRevoked')).toHaveLength(1);
    expect(types).not.toContain('RunFailed');
    // Ended in the resumed session by its own facts, not by recovery.
    expect(run.filter((e) => e.type === 'NodeReleased').every((e) => !String(e.data.reason ?? '').startsWith('PlatformRestarted'))).toBe(true);
    checkLog(logOf(dataDir));
    expect(sessionLeftovers(home, session)).toEqual([]);
  }, 180_000);

  it('a token that fell due while no simulator ran expires first; the run then fails on its refused calls', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = homeOf(tmp.dir);
    const { session, runId } = await runAndKillWhileRunning(home, writeScenario(tmp.dir, 12_000, '{ runTokenTtl: 6s }'), dataDir);
    await new Promise((r) => setTimeout(r, 7_000)); // past the token's expiry
    const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
    // The continued scenario expected Completed: it fails, and so does the resume (exit 1).
    expect(resume.status, resume.stderr).toBe(1);
    expect(resume.stdout).toContain(`"kind":"continued","session":"${session}"`);
    expect(resume.stdout).toContain('"passed":false');
    const run = logOf(dataDir).filter((e) => e.data.runId === runId);
    const types = run.map((e) => e.type);
    // In order: taken back, then the timer that fell due, then the refusals and the end.
    expect(types.indexOf('RunTokenExpired')).toBe(types.indexOf('RunReattached') + 1);
    expect(types).not.toContain('RunTokenRevoked');
    expect(run.some((e) => e.type === 'RunCallRefused' && String(e.data.code) === 'ExpiredAuthenticationToken')).toBe(true);
    expect(types).toContain('RunFailed');
    checkLog(logOf(dataDir));
    expect(sessionLeftovers(home, session)).toEqual([]);
  }, 180_000);

  it('a run whose container is gone ends Failed PlatformRestarted', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = homeOf(tmp.dir);
    const { session, runId } = await runAndKillWhileRunning(home, writeScenario(tmp.dir, 4_000), dataDir);
    for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.run=${runId}`)) spawnSync('docker', ['rm', '-f', id]);
    const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
    // Ended before the scenario goes on: its waitForRun sees it Failed, not Running, and the scenario fails.
    expect(resume.status, resume.stderr).toBe(1);
    expect(resume.stdout).toMatch(/"kind":"step","index":4,"verb":"waitForRun","line":\d+,"ok":false,"mismatch":"[^"]*Failed/);
    expect(resume.stdout).not.toContain('"kind":"reattached"');
    const run = logOf(dataDir).filter((e) => e.data.runId === runId);
    expect(run.map((e) => e.type)).not.toContain('RunReattached');
    const failed = run.find((e) => e.type === 'RunFailed')!;
    expect(String(failed.data.reason)).toMatch(/^PlatformRestarted/);
    checkLog(logOf(dataDir));
    expect(sessionLeftovers(home, session)).toEqual([]);
  }, 180_000);
});
