import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryEventStore, openEventStore } from '@amlsim/store';
import { createPlatform, virtualClock, type Platform, type RbacMode } from '@amlsim/platform';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { onTestFinished } from 'vitest';

export const REPO = join(import.meta.dirname, '..');
export const SCENARIO_DIR = join(REPO, 'scenarios');

/** A temporary directory removed by the returned disposer. */
export const tempDir = (prefix = 'amlsim-test-'): { dir: string; [Symbol.dispose](): void } => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
};

export const storeOf = (kind: 'memory' | 'sqlite', dir: string): EventStore =>
  kind === 'memory' ? createMemoryEventStore() : openEventStore('sqlite', dir);

/** A platform with alice (Owner of sub-1) and bob, on a virtual clock; closed when the test ends. */
export const testPlatform = async (
  dir: string,
  options: { store?: EventStore; mfa?: 'required' | 'optional'; rbacMode?: RbacMode } = {},
): Promise<{ platform: Platform; store: EventStore }> => {
  const store = options.store ?? createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir: dir,
    clock: virtualClock(),
    rbacMode: options.rbacMode ?? 'enforce',
    tenant: {
      mfa: options.mfa ?? 'optional',
      principals: { alice: { kind: 'user' }, bob: { kind: 'user' } },
      subscriptions: { 'sub-1': { owners: ['alice'] } },
    },
  });
  onTestFinished(async () => {
    await platform.close();
  });
  return { platform, store };
};

/** Every file below `dir`, recursively, with its bytes. */
export const allFiles = (dir: string): Array<{ path: string; bytes: Buffer }> =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const path = join(d.parentPath, d.name);
      return { path, bytes: readFileSync(path) };
    });

export const scenarioFiles = (): string[] =>
  readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(SCENARIO_DIR, f));

/**
 * alice (Owner of sub-1) signed in, with workspace ws1, on the given compute driver: the set-up
 * most end-to-end tests start from. Close the platform when done (`platform.close()`).
 */
export const alicePlatform = async (dir: string, driver: 'docker' | 'process' = 'docker', store: EventStore = createMemoryEventStore()) => {
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver,
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  return { platform, store, token };
};

/** The amlsim CLI, run to its end (tsx, as `pnpm amlsim` would): status, stdout, stderr. */
export const amlsim = (...args: string[]) => amlsimWith({}, ...args);

/** The same, with `env` added to the environment (e.g. a TMPDIR of its own: see `privateLeaseHome`). */
export const amlsimWith = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts'), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
  });

/**
 * A temp dir (TMPDIR) of its own for a test's simulators: a lease is judged only by sweepers of
 * the same lease home (packages/docker/src/sweep.ts), so what a test kills is swept by that
 * test's own next simulator, never first by another test's starting meanwhile.
 */
export const privateLeaseHome = (dir: string): string => {
  const home = join(dir, 't');
  mkdirSync(home, { recursive: true });
  return home;
};

/**
 * `amlsim run <scenario> --data-dir <dataDir> --json` (the built CLI, one process), SIGKILLed
 * at the first event `killAt` says (`n`: how many events came so far). Resolves once it
 * exited, with the sessions of the events it printed, how many, and the event it was killed at.
 */
export const runCliAndKill = (
  scenario: string,
  dataDir: string,
  killAt: ((e: StoredEvent, n: number) => boolean) | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ sessions: Set<string>; events: number; killedAt?: StoredEvent }> =>
  new Promise((resolve, reject) => {
    const bin = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
    const child = spawn(process.execPath, [bin, 'run', scenario, '--data-dir', dataDir, '--json'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
    const sessions = new Set<string>();
    let n = 0;
    let killedAt: StoredEvent | undefined;
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('{"kind":"event"')) continue;
        const e = JSON.parse(line) as StoredEvent;
        sessions.add(e.meta.session);
        n++;
        if (!killedAt && killAt?.(e, n)) {
          killedAt = e;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', () => resolve({ sessions, events: n, ...(killedAt ? { killedAt } : {}) }));
  });

/**
 * The text of a scenario with one user, alice, signed in and owning ws1 (created in eastus):
 * `steps` are the YAML lines that follow (each starting `  - `).
 */
export const aliceScenarioYaml = (name: string, options: string, steps: string[]): string =>
  [
    `name: ${name}`,
    `options: ${options}`,
    'tenant:',
    '  principals:',
    '    alice: { kind: user }',
    'steps:',
    '  - signIn: alice',
    '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
    ...steps,
    '',
  ].join('\n');

/** Call a control-plane socket as a compute target would (POST, a metrics body), with any token. */
export const callControlPlane = (socketPath: string, path: string, token: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ batch: 9, rows: [] }));
  });

/** Running, that is: a killed process that init has not reaped yet (a zombie) is not. */
export const isRunning = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
};

/** The lines `docker <args>` prints (ids, names), none on an error. */
export const docker = (...args: string[]): string[] => spawnSync('docker', args, { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);

/** Every event of the data dir's log, read apart from any platform (what a killed simulator left). */
export const logOf = (dataDir: string): StoredEvent[] => {
  const store = openEventStore('sqlite', dataDir);
  try {
    return [...store.readAll()];
  } finally {
    store.close();
  }
};

/**
 * What is left of a session on this machine: its containers, volumes and images (by the
 * session label), registry processes, and temp entries under `home` (the TMPDIR it ran with).
 */
export const sessionLeftovers = (home: string, session: string): string[] => {
  const label = `label=dev.amlsim.session=${session}`;
  const registries = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('docker-registry') && l.includes(session));
  return [
    ...docker('ps', '-aq', '--filter', label).map((c) => `container ${c}`),
    ...docker('volume', 'ls', '-q', '--filter', label).map((v) => `volume ${v}`),
    ...docker('images', '-q', '--filter', label).map((i) => `image ${i}`),
    ...registries.map((r) => `registry ${r}`),
    ...readdirSync(home).filter((f) => f.startsWith(`amlsim-${session}`)).map((f) => `temp ${f}`),
  ];
};

/**
 * A simulator's source that gets a run Running (the process or docker driver, a sleepy script)
 * on `dataDir`, prints `RUNNING <runId> <session>` and waits to be killed: what the crash and
 * recovery tests kill with SIGKILL mid-run.
 */
export const simulatorMidRun = (dataDir: string, driver: string) => `
import { createPlatform } from '@amlsim/platform';
import { openEventStore } from '@amlsim/store';
const store = openEventStore('sqlite', ${JSON.stringify(dataDir)});
const platform = await createPlatform({ store, dataDir: ${JSON.stringify(dataDir)}, driver: ${JSON.stringify(driver)},
  tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } } });
const token = await platform.directory.signIn('alice', { mfa: false });
await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: ${JSON.stringify(join(SCENARIO_DIR, 'code', 'sleepy'))}, script: 'train.js', args: ['60000'] });
await platform.runs.waitFor(runId, 60_000, 'Running');
console.log('RUNNING ' + runId + ' ' + platform.session);
setInterval(() => {}, 1000);
`;
