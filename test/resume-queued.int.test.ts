import { spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { aliceScenarioYaml, docker, logOf, privateLeaseHome, REPO, runCliAndKill, sessionLeftovers, tempDir } from './helpers';

/**
 * Runs whose target had not started when their simulator was SIGKILLed are driven on by
 * `amlsim resume` (docs/architecture.md "Crash recovery"): a run queued behind another on a
 * one-node cluster, a run whose node was still being provisioned — each is carried on from its
 * next step with a new token (the old one's value died with the simulator) and Completes with
 * its metrics. The clusters are folded from the log: an idle node whose scale-down fell due
 * while no simulator ran is deprovisioned by the cluster's workflow, one still within its idle
 * time is kept and given to the next run.
 */

const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const cli = (home: string, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });

/** A scenario file in `dir` with the `sleepy` code next to it. */
const writeScenario = (dir: string, steps: string[]): string => {
  cpSync(join(REPO, 'scenarios', 'code', 'sleepy'), join(dir, 'code', 'sleepy'), { recursive: true });
  const file = join(dir, 'resume-queued.yaml');
  writeFileSync(file, aliceScenarioYaml('Runs that had not started', '{}', steps));
  return file;
};
const submit = (id: string, compute: string, ms: number) => [`  - id: ${id}`, `    submitRun: { workspace: ws1, experiment: exp1, compute: ${compute}, source: code/sleepy, script: train.js, args: [${ms}] }`];
const waitCompleted = (id: string) => [`  - waitForRun: { run: ${id}, timeout: 2m }`, '    expect: { status: Completed }'];

/** What a failed test may leave of its session: removed, whatever the test's outcome. */
const removeSession = (session: string | undefined) => {
  if (!session) return;
  for (const c of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', c]);
  for (const v of docker('volume', 'ls', '-q', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['volume', 'rm', '-f', v]);
};

const checkLog = (events: StoredEvent[]) => {
  expect(events.every((e, i) => e.position === i + 1)).toBe(true);
  expect(checkInvariants(events, { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers')).toEqual([]);
};

/** Run the scenario and SIGKILL the CLI at the first event `killAt` says; the session it was killed in. */
const runAndKill = async (home: string, scenario: string, dataDir: string, killAt: (e: StoredEvent) => boolean): Promise<string> => {
  const { killedAt } = await runCliAndKill(scenario, dataDir, killAt, { ...process.env, TMPDIR: home });
  if (!killedAt) throw new Error('the scenario never reached the kill point');
  return killedAt.meta.session;
};

const runIdsOf = (events: StoredEvent[]): string[] => events.filter((e) => e.type === 'RunSubmitted').map((e) => String(e.data.runId));

/** The run's facts after it was driven on: a RunResumed, a new token, then its target's start, its write-back and its end. */
const expectDrivenOnToCompletion = (events: StoredEvent[], runId: string, from: string) => {
  const run = events.filter((e) => e.data.runId === runId && e.stream.startsWith('run-'));
  const types = run.map((e) => e.type);
  const resumed = run.find((e) => e.type === 'RunResumed')!;
  expect(resumed, types.join(' ')).toBeDefined();
  expect(resumed.data.from).toBe(from);
  const tokens = run.filter((e) => e.type === 'RunTokenIssued');
  // The token its dead simulator issued is replaced: its value was never logged, so it was lost.
  expect(tokens).toHaveLength(2);
  expect(resumed.data.replacedToken).toBe(tokens[0]!.data.tokenId);
  expect(tokens[1]!.position).toBeGreaterThan(resumed.position);
  expect(tokens[1]!.data.channel).toBe(tokens[0]!.data.channel);
  const started = run.find((e) => e.type === 'ContainerStarted')!;
  expect(started.position).toBeGreaterThan(resumed.position);
  const written = run.filter((e) => e.type === 'MetricsWrittenBack');
  expect(JSON.stringify(written.map((m) => m.data))).toContain('slept_ms');
  // Its calls came with the new token.
  expect(written.every((m) => m.meta.tokenId === tokens[1]!.data.tokenId)).toBe(true);
  expect(types).toContain('RunCompleted');
  expect(types).not.toContain('RunFailed');
  expect(types).toContain('RunChannelClosed');
};

describe('runs whose target had not started when their simulator died are driven on by resume', () => {
  it('a run queued behind another on a one-node cluster runs once the first ends, and Completes with its metrics', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const scenario = writeScenario(tmp.dir, [
      '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1 }',
      ...submit('r1', 'cpu', 3_000),
      ...submit('r2', 'cpu', 200),
      ...waitCompleted('r1'),
      ...waitCompleted('r2'),
    ]);
    let session: string | undefined;
    try {
      // Killed while r1 runs its script: r2 waits in the queue for the cluster's only node.
      session = await runAndKill(home, scenario, dataDir, (e) => e.type === 'RunStatusReported' && e.data.status === 'Running');
      const before = logOf(dataDir);
      const [r1, r2] = runIdsOf(before);
      expect(before.some((e) => e.type === 'RunQueued' && e.data.runId === r2)).toBe(true);
      expect(before.some((e) => e.type === 'NodeAssigned' && e.data.runId === r2)).toBe(false);

      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr + resume.stdout.slice(-3000)).toBe(0);
      expect(resume.stdout).toContain(`"kind":"reattached","session":"${session}","runs":["${r1}"]`);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${scenario}","passed":true`);
      expect(resume.stdout).not.toContain('"kind":"lostRun"');

      const events = logOf(dataDir);
      expectDrivenOnToCompletion(events, r2!, 'Queued');
      // The node r1 gave back went to r2: the cluster's one node, promised once.
      const assigned = events.filter((e) => e.type === 'NodeAssigned');
      expect(assigned.map((e) => [e.data.runId, e.data.node])).toEqual([
        [r1, 'node-1'],
        [r2, 'node-1'],
      ]);
      expect(events.filter((e) => e.type === 'NodeProvisioningStarted')).toHaveLength(1);
      const released = events.find((e) => e.type === 'NodeReleased' && e.data.runId === r1)!;
      expect(assigned[1]!.position).toBeGreaterThan(released.position);
      expect(events.some((e) => e.type === 'RunFailed')).toBe(false);
      checkLog(events);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      removeSession(session);
    }
  }, 180_000);

  it('a run whose node was still being provisioned gets that node, provisioned again, and Completes', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const scenario = writeScenario(tmp.dir, [
      '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1 }',
      ...submit('r1', 'cpu', 200),
      ...waitCompleted('r1'),
    ]);
    let session: string | undefined;
    try {
      session = await runAndKill(home, scenario, dataDir, (e) => e.type === 'NodeProvisioningStarted');
      const before = logOf(dataDir);
      const [r1] = runIdsOf(before);
      // Killed mid-provisioning: the node's start is in the log, its outcome is not.
      expect(before.map((e) => e.type)).not.toContain('NodeProvisioned');

      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr + resume.stdout.slice(-3000)).toBe(0);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${scenario}","passed":true`);

      const events = logOf(dataDir);
      expectDrivenOnToCompletion(events, r1!, 'Queued');
      // One node, provisioned once to its end: no second node made for the run, none failed for the restart.
      const compute = events.filter((e) => e.stream.startsWith('compute-'));
      expect(compute.filter((e) => e.type === 'NodeProvisioningStarted').map((e) => e.data.node)).toEqual(['node-1']);
      expect(compute.filter((e) => e.type === 'NodeProvisioned').map((e) => e.data.node)).toEqual(['node-1']);
      expect(compute.map((e) => e.type)).not.toContain('NodeProvisioningFailed');
      const resumed = events.find((e) => e.type === 'RunResumed')!;
      expect(compute.find((e) => e.type === 'NodeProvisioned')!.position).toBeGreaterThan(resumed.position);
      checkLog(events);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      removeSession(session);
    }
  }, 180_000);

  it("an idle node whose scale-down fell due meanwhile is deprovisioned by its cluster's workflow; one still within its idle time is kept and reused", async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const scenario = writeScenario(tmp.dir, [
      '  - createCompute: { workspace: ws1, name: quick, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1, idleSecondsBeforeScaledown: 4 }',
      '  - createCompute: { workspace: ws1, name: slow, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1, idleSecondsBeforeScaledown: 600 }',
      ...submit('r1', 'quick', 200),
      ...submit('r2', 'slow', 200),
      ...waitCompleted('r1'),
      ...waitCompleted('r2'),
      ...submit('r3', 'slow', 200),
      ...waitCompleted('r3'),
    ]);
    let session: string | undefined;
    try {
      // Killed once both nodes are idle (both runs gave theirs back), before quick's idle time is up.
      let released = 0;
      session = await runAndKill(home, scenario, dataDir, (e) => e.type === 'NodeReleased' && ++released === 2);
      const before = logOf(dataDir);
      expect(before.map((e) => e.type)).not.toContain('ClusterIdleTimeoutElapsed');
      const lastRelease = Date.parse(before.findLast((e) => e.type === 'NodeReleased')!.meta.at);
      // Down for longer than quick's idle time, far shorter than slow's.
      await new Promise((r) => setTimeout(r, Math.max(0, lastRelease + 5_000 - Date.now())));

      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr + resume.stdout.slice(-3000)).toBe(0);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${scenario}","passed":true`);

      const events = logOf(dataDir);
      const computeIdOf = (name: string) => String(events.find((e) => e.type === 'ComputeCreated' && e.data.compute === name)!.data.computeId);
      const of = (name: string) => events.filter((e) => e.stream.startsWith('compute-') && e.data.computeId === computeIdOf(name));
      // quick's node: scaled down by the workflow in the resumed session, with the workflow's reason.
      const quick = of('quick');
      const elapsed = quick.find((e) => e.type === 'ClusterIdleTimeoutElapsed')!;
      expect(elapsed).toBeDefined();
      expect(elapsed.meta.session).toBe(session);
      const gone = quick.filter((e) => e.type === 'NodeDeprovisioned');
      expect(gone.map((e) => [e.data.node, e.data.reason])).toEqual([['node-1', 'idle for 4s with no run queued (S4.6)']]);
      expect(gone[0]!.position).toBeGreaterThan(elapsed.position);
      // slow's node: kept over the restart and given to r3; no second node made.
      const slow = of('slow');
      const [, , r3] = runIdsOf(events);
      expect(slow.filter((e) => e.type === 'NodeProvisioningStarted')).toHaveLength(1);
      // NodeAssigned is the run's fact (on its stream).
      const slowAssigned = events.filter((e) => e.type === 'NodeAssigned' && e.data.computeId === computeIdOf('slow'));
      expect(slowAssigned.map((e) => [e.data.runId, e.data.node]).at(-1)).toEqual([r3, 'node-1']);
      const r3Events = events.filter((e) => e.data.runId === r3 && e.stream.startsWith('run-')).map((e) => e.type);
      expect(r3Events).toContain('RunCompleted');
      const assignedToR3 = slowAssigned.at(-1)!;
      expect(slow.filter((e) => e.type === 'NodeDeprovisioned').every((e) => e.position > assignedToR3.position)).toBe(true);
      expect(events.some((e) => e.type === 'RunFailed')).toBe(false);
      checkLog(events);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      removeSession(session);
    }
  }, 180_000);
});
