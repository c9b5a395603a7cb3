import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { aliceScenarioYaml, docker, logOf, privateLeaseHome, REPO, runCliAndKill, sessionLeftovers, tempDir } from './helpers';

/**
 * A run on an attached VM (S8.3 unmanaged) survives its simulator (docs/architecture.md "Crash
 * recovery"): the CLI is SIGKILLed while the management code on the user's VM runs the script;
 * `amlsim resume` takes the VM back (the same container, its login agent, its channel at the
 * same socket with the same id), re-attaches the run to the management code still running on it,
 * and the run ends as it would have. A VM that is gone ends its run PlatformRestarted.
 */

const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const PASSWORD = 'Correct-Horse-42';
const cli = (home: string, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });

/** A scenario in `dir` training `sleepy` (sleeps `ms`, then logs slept_ms) on alice's VM, attached as vm1. */
const writeVmScenario = (dir: string, ms: number): string => {
  cpSync(join(REPO, 'scenarios', 'code', 'sleepy'), join(dir, 'code', 'sleepy'), { recursive: true });
  const file = join(dir, 'vm-run.yaml');
  writeFileSync(
    file,
    aliceScenarioYaml('A long run on an attached VM', '{}', [
      `  - createVm: { name: dsvm, username: azureuser, password: ${PASSWORD} }`,
      `  - attachCompute: { workspace: ws1, name: vm1, type: VirtualMachine, vm: dsvm, username: azureuser, password: ${PASSWORD} }`,
      '  - id: r1',
      `    submitRun: { workspace: ws1, experiment: exp1, compute: vm1, source: code/sleepy, script: train.js, args: [${ms}] }`,
      '  - waitForRun: { run: r1, timeout: 2m }',
      '    expect: { status: Completed }',
    ]),
  );
  return file;
};

const RUNNING = (e: StoredEvent) => e.type === 'RunStatusReported' && e.data.status === 'Running';

const runAndKill = async (home: string, scenario: string, dataDir: string, killAt: (e: StoredEvent) => boolean): Promise<{ session: string; runId: string }> => {
  const { killedAt } = await runCliAndKill(scenario, dataDir, killAt, { ...process.env, TMPDIR: home });
  if (!killedAt) throw new Error('the run never reached the kill point');
  return { session: killedAt.meta.session, runId: String(killedAt.data.runId) };
};

/** The VM containers of a session (running or not). */
const vmContainers = (session: string): string[] => docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`, '--filter', 'label=dev.amlsim.role=vm');

/** Positions contiguous, every invariant holds, and the VM password is nowhere in the log. */
const checkLog = (events: StoredEvent[]) => {
  expect(events.every((e, i) => e.position === i + 1)).toBe(true);
  const secrets = new SecretRegistry();
  secrets.add(PASSWORD, 'VM password');
  expect(checkInvariants(events, { secrets }).filter((v) => v.invariant !== 'no-leftovers')).toEqual([]);
  expect(JSON.stringify(events)).not.toContain(PASSWORD);
};

describe('a run on an attached VM whose simulator was killed', () => {
  it('is re-attached on resume: the VM is taken back with its channel, the run Completes with its metrics, nothing left', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const { session, runId } = await runAndKill(home, writeVmScenario(tmp.dir, 4_000), dataDir, RUNNING);
    try {
      // The user's VM runs on without the simulator, and the management code on it.
      expect(docker('ps', '-q', '--filter', `label=dev.amlsim.session=${session}`, '--filter', 'label=dev.amlsim.role=vm')).toHaveLength(1);

      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr).toBe(0);
      expect(resume.stdout).toContain(`"kind":"reattached","session":"${session}","runs":["${runId}"]`);
      expect(resume.stdout).toContain(`"kind":"resumedRun","session":"${session}","runId":"${runId}","status":"Completed"`);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${join(tmp.dir, 'vm-run.yaml')}","passed":true`);
      expect(resume.stdout).not.toContain(PASSWORD);
      expect(resume.stderr).not.toContain(PASSWORD);

      const events = logOf(dataDir);
      const created = events.find((e) => e.type === 'VmCreated')!;
      const vmChannel = events.find((e) => e.type === 'VmChannelOpened')!;
      const vmBack = events.find((e) => e.type === 'VmReattached')!;
      expect(vmBack.meta.session).toBe(session);
      // The same container, the same channel at the same socket.
      expect(vmBack.data).toMatchObject({ vmId: created.data.vmId, host: created.data.host, channel: vmChannel.data.channel, socket: vmChannel.data.socket });
      expect(events.map((e) => e.type)).not.toContain('VmLost');

      const run = events.filter((e) => e.data.runId === runId);
      const types = run.map((e) => e.type);
      const reattached = run.find((e) => e.type === 'RunReattached')!;
      expect(reattached.position).toBeGreaterThan(vmBack.position);
      const opened = run.find((e) => e.type === 'RunChannelOpened')!;
      expect(opened.data).toMatchObject({ kind: 'vm', channel: vmChannel.data.channel });
      expect(reattached.data.channel).toBe(opened.data.channel);
      const started = run.find((e) => e.type === 'ManagementCodeStarted')!;
      expect(reattached.data.container).toBe(`dsvm:${started.data.pid}`);
      // After it: the script's write-back, on the VM's channel with the run's own token, then its end.
      const after = run.slice(run.indexOf(reattached) + 1);
      const written = after.find((e) => e.type === 'MetricsWrittenBack')!;
      expect(written).toBeDefined();
      expect(JSON.stringify(written.data)).toContain('slept_ms');
      expect(written.meta.channel).toBe(vmChannel.data.channel);
      expect(written.meta.tokenId).toBe(run.find((e) => e.type === 'RunTokenIssued')!.data.tokenId);
      expect(types.filter((t) => t === 'ManagementCodeStarted')).toHaveLength(1);
      expect(types.indexOf('RunCompleted')).toBeGreaterThan(types.indexOf('RunReattached'));
      expect(after.find((e) => e.type === 'ManagementCodeExited')?.data.exitCode).toBe(0);
      expect(types).toContain('RunTokenRevoked');
      expect(types).not.toContain('RunFailed');
      checkLog(events);
      expect(cli(home, 'replay', '--data-dir', dataDir).status).toBe(0);
      // The session closed once its run ended: its VM went with it, and nothing else is left.
      expect(vmContainers(session)).toEqual([]);
      expect(sessionLeftovers(home, session)).toEqual([]);
      expect(existsSync(join(dataDir, 'platform', 'sessions', `${session}.sealed`))).toBe(false);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);

  it('killed as its token was issued: on resume it is started on the VM once (driven on, or re-attached) and Completes', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const { session, runId } = await runAndKill(home, writeVmScenario(tmp.dir, 1_000), dataDir, (e) => e.type === 'RunTokenIssued');
    try {
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr).toBe(0);
      expect(resume.stdout).toContain('"passed":true');
      const events = logOf(dataDir);
      expect(events.map((e) => e.type)).toContain('VmReattached');
      const types = events.filter((e) => e.data.runId === runId).map((e) => e.type);
      expect(types.some((t) => t === 'RunResumed' || t === 'RunReattached')).toBe(true);
      // However far the dead simulator got, the run's management code ran once to its end.
      expect(types.filter((t) => t === 'ManagementCodeStarted')).toHaveLength(1);
      expect(types).toContain('RunCompleted');
      expect(types).not.toContain('RunFailed');
      expect(types).not.toContain('RunCallRefused');
      checkLog(events);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);

  it('whose management code gave up while no simulator ran (past its 60 s of retries): its end, kept by the VM, is taken on resume', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const { session, runId } = await runAndKill(home, writeVmScenario(tmp.dir, 500), dataDir, RUNNING);
    try {
      // AMLSIM_CONTROL_PLANE_RETRY_MS (60 s) and a little more: the management code has exited.
      await new Promise((r) => setTimeout(r, 66_000));
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      // The continued scenario expected Completed: it fails, and so does the resume (exit 1).
      expect(resume.status, resume.stderr).toBe(1);
      const run = logOf(dataDir).filter((e) => e.data.runId === runId);
      const types = run.map((e) => e.type);
      const reattached = types.indexOf('RunReattached');
      expect(reattached).toBeGreaterThan(0);
      const exited = run.find((e) => e.type === 'ManagementCodeExited')!;
      expect(exited.position).toBeGreaterThan(run[reattached]!.position);
      expect(exited.data.exitCode).not.toBe(0);
      const failed = run.find((e) => e.type === 'RunFailed')!;
      // It says why in its own words: the control plane did not answer while no simulator was there.
      expect(String(failed.data.reason)).toMatch(/^ControlPlaneUnreachable/);
      expect(types).not.toContain('RunCompleted');
      checkLog(logOf(dataDir));
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);

  it('whose VM was removed while no simulator ran: the VM is recorded lost, the run ends Failed PlatformRestarted, nothing left', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const { session, runId } = await runAndKill(home, writeVmScenario(tmp.dir, 4_000), dataDir, RUNNING);
    try {
      for (const id of vmContainers(session)) spawnSync('docker', ['rm', '-f', id]);
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      // Ended before the scenario goes on: its waitForRun sees it Failed, and the scenario fails.
      expect(resume.status, resume.stderr).toBe(1);
      expect(resume.stdout).not.toContain('"kind":"reattached"');
      const events = logOf(dataDir);
      const lost = events.find((e) => e.type === 'VmLost')!;
      expect(lost.data).toMatchObject({ vm: 'dsvm' });
      expect(String(lost.data.reason)).toMatch(/^PlatformRestarted/);
      expect(events.map((e) => e.type)).not.toContain('VmReattached');
      const run = events.filter((e) => e.data.runId === runId);
      expect(run.map((e) => e.type)).not.toContain('RunReattached');
      const failed = run.find((e) => e.type === 'RunFailed')!;
      expect(String(failed.data.reason)).toMatch(/^PlatformRestarted/);
      checkLog(events);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);
});
