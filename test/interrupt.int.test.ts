import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, SCENARIO_DIR, tempDir } from './helpers';

/**
 * Ctrl-C and SIGTERM stop `amlsim run` cleanly: the live run ends Canceled with the reason,
 * one SessionInterrupted is recorded, nothing of the session is left in Docker, and the exit
 * code says which signal it was. The CLI is started both ways a user starts it: through tsx
 * (two processes: tsx's wrapper and the simulator; the signal goes to the simulator, as a
 * terminal's Ctrl-C does — tsx's own relay SIGKILLs a child that does not acknowledge within
 * 60 ms, which a loaded machine can miss) and through bin/amlsim.js (one process).
 */
const docker = (args: string[]) => spawnSync('docker', args, { encoding: 'utf8' });
const dockerUp = docker(['info', '--format', '{{.ServerVersion}}']).status === 0;

const ENTRIES = {
  tsx: [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts')],
  bin: [join(REPO, 'packages', 'cli', 'bin', 'amlsim.js')],
} as const;

const LONG_RUN = `name: A run that would take ten minutes
tenant:
  principals:
    alice: { kind: user }
steps:
  - signIn: alice
  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }
  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute }
  - id: long
    submitRun: { workspace: ws1, experiment: long, compute: cpu, source: ${join(SCENARIO_DIR, 'code', 'sleepy')}, script: train.js, args: [600000] }
  - waitForRun: { run: long, timeout: 15m }
    expect: { status: Completed }
`;

/** The same run, its container frozen as soon as it starts (it never reports, never hears a cancel). */
const FROZEN_RUN = LONG_RUN.replace('  - waitForRun:', '  - fault: { freezeContainer: { run: long } }\n  - waitForRun:');

/** The simulator itself: tsx's wrapper's only child. */
const simulatorPid = (entry: keyof typeof ENTRIES, pid: number): number => {
  if (entry === 'bin') return pid;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  return children[0]!;
};

type Line = { kind: string; type?: string; data?: Record<string, unknown>; meta?: { session: string } };

/**
 * Start `amlsim run --json` on the long scenario, and once the run is Running
 * send `signals` (the second one right after the CLI says it is stopping). Resolves with the
 * exit code, the output and the session id.
 */
/** When the first signal goes: by default once the run reports Running. */
type Trigger = (line: Line) => boolean;
const RUNNING: Trigger = (line) => line.kind === 'event' && line.type === 'RunStatusReported' && line.data?.status === 'Running';

const runAndSignal = (entry: keyof typeof ENTRIES, dataDir: string, scenario: string, signals: NodeJS.Signals[], trigger: Trigger = RUNNING) =>
  new Promise<{ code: number | null; stdout: string; stderr: string; session: string; stoppedInMs: number }>((resolve, reject) => {
    const child = spawn(process.execPath, [...ENTRIES[entry], 'run', scenario, '--json', '--data-dir', dataDir, '--allow-path', SCENARIO_DIR], {
      cwd: REPO,
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    let session = '';
    let sentAt = 0;
    let partial = '';
    let secondArmed = false;
    const pending = [...signals];
    const send = () => {
      const signal = pending.shift();
      if (signal) process.kill(simulatorPid(entry, child.pid!), signal);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`amlsim did not end in time\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, 150_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      // Whole lines only: a chunk may end in the middle of one.
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const text of lines) {
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as Line;
        if (line.meta?.session) session = line.meta.session;
        if (trigger(line) && pending.length === signals.length) {
          sentAt = Date.now();
          send();
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      // The second one a moment after the first: one sent together with it is the same Ctrl-C relayed.
      if (/stopping/.test(stderr) && pending.length > 0 && !secondArmed) {
        secondArmed = true;
        setTimeout(send, 300);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, session, stoppedInMs: Date.now() - sentAt });
    });
  });

const eventsOf = (dataDir: string): Line[] => {
  const r = spawnSync(process.execPath, [...ENTRIES.tsx, 'events', '--data-dir', dataDir, '--json'], { cwd: REPO, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
};

const leftInDocker = (session: string) => ({
  containers: docker(['ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`]).stdout.trim(),
  volumes: docker(['volume', 'ls', '-q', '--filter', `label=dev.amlsim.session=${session}`]).stdout.trim(),
});

/** What a test that failed half-way might leave: removed by the session's label. */
const removeSession = (session: string) => {
  if (!session) return;
  const { containers, volumes } = leftInDocker(session);
  if (containers) docker(['rm', '-f', ...containers.split('\n')]);
  if (volumes) docker(['volume', 'rm', '-f', ...volumes.split('\n')]);
};

describe.skipIf(!dockerUp)('amlsim run stops cleanly on SIGINT and SIGTERM (docker driver)', () => {
  it.each([
    ['SIGINT', 'tsx', 130],
    ['SIGTERM', 'bin', 143],
  ] as const)('%s (through %s): the run ends Canceled with the reason, one SessionInterrupted, nothing left, exit %i', async (signal, entry, exitCode) => {
    using tmp = tempDir();
    const scenario = join(tmp.dir, 'long.yaml');
    writeFileSync(scenario, LONG_RUN);
    const dataDir = join(tmp.dir, 'data');
    const r = await runAndSignal(entry, dataDir, scenario, [signal]);
    try {
      expect(r.stderr).toContain(`${signal}: stopping`);
      expect(r.code).toBe(exitCode);
      const events = eventsOf(dataDir);
      const types = events.map((e) => e.type);
      const interrupted = events.filter((e) => e.type === 'SessionInterrupted');
      expect(interrupted).toHaveLength(1);
      expect(interrupted[0]!.data).toMatchObject({ signal, reason: `the simulator was interrupted (${signal})` });
      const runId = (interrupted[0]!.data!.canceledRuns as string[])[0];
      expect(interrupted[0]!.data!.canceledRuns).toHaveLength(1);
      expect(events.find((e) => e.type === 'RunCancelRequested')?.data).toMatchObject({ runId, reason: `the simulator was interrupted (${signal})` });
      expect(events.find((e) => e.type === 'RunCanceled')?.data).toMatchObject({ runId, reason: `the simulator was interrupted (${signal})` });
      // The run ended the way a canceled run does: its container exited, then its token died and its node went back.
      const at = (t: string) => types.indexOf(t);
      expect(at('SessionInterrupted')).toBeLessThan(at('RunCancelRequested'));
      expect(at('ContainerExited')).toBeGreaterThan(at('RunCancelRequested'));
      expect(at('RunTokenRevoked')).toBeGreaterThan(at('RunCanceled'));
      expect(types).toContain('NodeReleased');
      expect(types).not.toContain('RunCompleted');
      expect(leftInDocker(r.session)).toEqual({ containers: '', volumes: '' });
      // Nor its sockets' directories (one per control-plane channel) in the temp dir.
      expect(readdirSync(tmpdir()).filter((f) => f.includes(r.session))).toEqual([]);
      // The scenario's result is still reported: its step in flight ended with Interrupted.
      const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line & { error?: string });
      expect(steps.find((l) => l.kind === 'step' && l.error === 'Interrupted')).toBeDefined();
    } finally {
      removeSession(r.session);
    }
  }, 180_000);

  it('a second signal during the stop exits at once', async () => {
    using tmp = tempDir();
    const scenario = join(tmp.dir, 'long.yaml');
    // A frozen container cannot hear the cancel: the stop waits for its kill (seconds), and the
    // second signal comes while it does.
    writeFileSync(scenario, FROZEN_RUN);
    const r = await runAndSignal('bin', join(tmp.dir, 'data'), scenario, ['SIGINT', 'SIGINT'], (line) => line.kind === 'event' && line.type === 'ContainerStarted');
    try {
      expect(r.stderr, r.stderr).toContain("SIGINT again: exiting at once");
      expect(r.code).toBe(130);
      // At once: well before the cancel could have stopped the run's container.
      expect(r.stoppedInMs).toBeLessThan(3_000);
    } finally {
      removeSession(r.session);
    }
  }, 180_000);
});
