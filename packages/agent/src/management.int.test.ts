/**
 * The management code against a real control-plane server on a unix socket (docs/control-plane.md),
 * run as a real `node management.cjs` child process with a real training script.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MANAGEMENT_SCRIPT } from './index';

const TOKEN = 'test-token.eyJydW4iOiJydW4tNDIifQ.sig';
const WORKSPACE = 'ws-test';
const RUN_ID = 'run-42';
const PREFIX = `/workspaces/${WORKSPACE}/runs/${RUN_ID}`;

// ---------------------------------------------------------------------------------------------
// A minimal control plane
// ---------------------------------------------------------------------------------------------

interface Call {
  method: string;
  /** Path below PREFIX, e.g. `/status`. */
  route: string;
  body: any;
}

interface Answer {
  status: number;
  body: unknown;
}

interface SnapshotFile {
  path: string;
  content: string;
  mode?: number;
}

interface PlatformOptions {
  files: SnapshotFile[];
  /**
   * Overrides the default answer of a call; `index` counts calls of the same method+route from 1,
   * `workDir` is the run's work dir.
   */
  respond?: (call: Call, index: number, workDir: string) => Answer | undefined;
}

interface Platform {
  socketPath: string;
  calls: Call[];
  /** Calls the server refused for a wrong token or path (must stay empty). */
  refused: string[];
  close(): Promise<void>;
}

function startPlatform(dir: string, options: PlatformOptions): Promise<Platform> {
  const socketPath = path.join(dir, 'cp.sock');
  const calls: Call[] = [];
  const refused: string[] = [];
  const counts = new Map<string, number>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = ({ status, body }: Answer) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        refused.push(`${req.method} ${url}: token`);
        return send({ status: 401, body: { error: { code: 'InvalidAuthenticationToken', message: 'bad token' } } });
      }
      if (!url.startsWith(`${PREFIX}/`)) {
        refused.push(`${req.method} ${url}: path`);
        return send({ status: 404, body: { error: { code: 'NotFound', message: url } } });
      }
      const text = Buffer.concat(chunks).toString('utf8');
      const call: Call = { method: req.method ?? '', route: url.slice(PREFIX.length), body: text ? JSON.parse(text) : undefined };
      calls.push(call);
      const key = `${call.method} ${call.route}`;
      const index = (counts.get(key) ?? 0) + 1;
      counts.set(key, index);
      send(options.respond?.(call, index, path.join(dir, 'work')) ?? defaultAnswer(call, options.files, dir));
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () =>
      resolve({
        socketPath,
        calls,
        refused,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      }),
    );
  });
}

/** `{DIR}` in a snapshot path stands for the test's temp dir (to aim absolute paths at it). */
function defaultAnswer(call: Call, files: SnapshotFile[], dir: string): Answer {
  switch (`${call.method} ${call.route}`) {
    case 'GET /snapshot':
      return {
        status: 200,
        body: {
          snapshotId: 'snap-1',
          files: files.map((f) => ({ path: f.path.replace('{DIR}', dir), mode: f.mode ?? 0o644, content: Buffer.from(f.content).toString('base64') })),
        },
      };
    case 'POST /heartbeat':
      return { status: 200, body: { ok: true, cancelRequested: false } };
    case 'POST /metrics':
      return { status: 200, body: { ok: true, accepted: call.body.rows.length } };
    case 'POST /status':
    case 'PUT /outputs':
    case 'POST /logs':
    case 'POST /complete':
      return { status: 200, body: { ok: true } };
    default:
      return { status: 404, body: { error: { code: 'NotFound', message: call.route } } };
  }
}

// ---------------------------------------------------------------------------------------------
// Running the management code
// ---------------------------------------------------------------------------------------------

interface RunOptions extends PlatformOptions {
  script?: string;
  args?: string[];
  userEnv?: Record<string, string>;
  token?: string;
  /** Run the script as a child process (AMLSIM_SCRIPT_ISOLATION=process) instead of a worker thread. */
  isolation?: 'process' | 'thread';
  /** `main`: on the management code's own thread (AMLSIM_SCRIPT_HOST=main, managed compute); default: the describe's. */
  host?: 'main' | 'thread';
}

/** Where the tests of the running describe block run the script (each block runs for both hosts). */
let currentHost: 'main' | 'thread' = 'thread';

interface RunResult {
  dir: string;
  workDir: string;
  calls: Call[];
  refused: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function runManagement(options: RunOptions): Promise<RunResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'amlsim-agent-'));
  tempDirs.push(dir);
  const workDir = path.join(dir, 'work');
  const platform = await startPlatform(dir, options);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AZUREML_RUN_TOKEN: options.token ?? TOKEN,
    AZUREML_RUN_TOKEN_EXPIRY: String(Math.floor(Date.now() / 1000) + 3600),
    AZUREML_RUN_ID: RUN_ID,
    AZUREML_ARM_SUBSCRIPTION: '00000000-0000-0000-0000-000000000001',
    AZUREML_ARM_RESOURCEGROUP: 'rg-test',
    AZUREML_ARM_WORKSPACE_NAME: WORKSPACE,
    AZUREML_ARM_PROJECT_NAME: 'exp-test',
    AZUREML_SERVICE_ENDPOINT: `unix://${platform.socketPath}`,
    AMLSIM_SCRIPT: options.script ?? 'train.js',
    AMLSIM_ARGS: JSON.stringify(options.args ?? []),
    AMLSIM_USER_ENV: JSON.stringify(options.userEnv ?? {}),
    AMLSIM_WORK_DIR: workDir,
    AMLSIM_HEARTBEAT_MS: '100',
    ...(options.isolation ? { AMLSIM_SCRIPT_ISOLATION: options.isolation } : {}),
    ...((options.host ?? currentHost) === 'main' ? { AMLSIM_SCRIPT_HOST: 'main' } : {}),
  };
  const started = Date.now();
  try {
    const child = spawn(process.execPath, [MANAGEMENT_SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`management did not finish in time\n${stderr}`));
      }, 30_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    return { dir, workDir, calls: platform.calls, refused: platform.refused, exitCode, stdout, stderr, ms: Date.now() - started };
  } finally {
    await platform.close();
  }
}

/** `METHOD /route` (with the status for /status), consecutive repeats collapsed. */
function sequence(calls: Call[]): string[] {
  const names = calls.map((c) => `${c.method} ${c.route}${c.route === '/status' ? ` ${c.body.status}` : ''}`);
  return names.filter((name, i) => name !== names[i - 1]);
}

function only(calls: Call[], method: string, route: string): Call[] {
  return calls.filter((c) => c.method === method && c.route === route);
}

function completeBody(result: RunResult) {
  const completes = only(result.calls, 'POST', '/complete');
  expect(completes).toHaveLength(1);
  return completes[0]!.body;
}

const HELPER = `exports.loss = (i) => 1 / (i + 1);\n`;

// ---------------------------------------------------------------------------------------------

// Every behaviour holds wherever the script runs: in a thread of its own (attached VMs, where
// heartbeats alone tell liveness) and on the management code's own thread (managed compute).
describe.each(['thread', 'main'] as const)('management code (S8.3, S8.4) against a control plane on a unix socket, the script on the %s thread', (host) => {
  beforeEach(() => {
    currentHost = host;
  });

  it('runs a CommonJS script through every step and writes back 600 metrics in 3 batches', async () => {
    const train = `
      const { Run } = require('@amlsim/run');
      const { loss } = require('./lib/helper.js');
      const fs = require('node:fs');
      const run = Run.getContext();
      for (let i = 0; i < 600; i++) run.log('loss', loss(i));
      fs.mkdirSync('outputs/nested/deep', { recursive: true });
      fs.writeFileSync('outputs/model.txt', 'weights');
      fs.writeFileSync('outputs/nested/deep/w.bin', Buffer.from([0, 1, 2, 255]));
      fs.writeFileSync('outputs/info.json', JSON.stringify({
        args: process.argv.slice(2), myVar: process.env.MY_VAR, runId: run.id, experiment: run.experiment,
        cwd: process.cwd(), metricsFile: process.env.AMLSIM_METRICS_FILE,
      }));
      console.log('training done');
      console.error('a warning');
    `;
    const result = await runManagement({
      files: [{ path: 'train.js', content: train }, { path: 'lib/helper.js', content: HELPER }],
      args: ['--epochs', '3'],
      // AZUREML_* belongs to the platform: the user's env cannot spoof the run id.
      userEnv: { MY_VAR: 'hello', AZUREML_RUN_ID: 'spoofed' },
    });

    expect(result.refused).toEqual([]);
    expect(result.exitCode).toBe(0);
    expect(sequence(result.calls)).toEqual([
      'POST /status Preparing',
      'GET /snapshot',
      'POST /status Running',
      'POST /heartbeat',
      'POST /logs',
      'POST /status Finalizing',
      'POST /metrics',
      'PUT /outputs',
      'POST /complete',
    ]);
    expect(only(result.calls, 'POST', '/heartbeat').length).toBeGreaterThanOrEqual(1);

    const batches = only(result.calls, 'POST', '/metrics').map((c) => c.body);
    expect(batches.map((b) => b.batch)).toEqual([1, 2, 3]);
    expect(batches.map((b) => b.rows.length)).toEqual([250, 250, 100]);
    const rows = batches.flatMap((b) => b.rows);
    expect(rows.map((r: { step: number }) => r.step)).toEqual([...Array(600).keys()]);
    expect(rows[0]).toMatchObject({ kind: 'scalar', name: 'loss', value: 1, step: 0 });
    expect(rows[599]).toMatchObject({ kind: 'scalar', name: 'loss', value: 1 / 600, step: 599 });
    expect(Number.isNaN(Date.parse(rows[0].at))).toBe(false);

    const outputs = Object.fromEntries(
      only(result.calls, 'PUT', '/outputs').map((c) => [c.body.path, Buffer.from(c.body.content, 'base64')]),
    );
    expect(Object.keys(outputs).sort()).toEqual(['info.json', 'model.txt', 'nested/deep/w.bin']);
    expect(outputs['model.txt']!.toString()).toBe('weights');
    expect([...outputs['nested/deep/w.bin']!]).toEqual([0, 1, 2, 255]);
    const info = JSON.parse(outputs['info.json']!.toString());
    expect(info).toMatchObject({ args: ['--epochs', '3'], myVar: 'hello', runId: RUN_ID, experiment: 'exp-test' });
    expect(info.cwd).toBe(result.workDir);
    expect(info.metricsFile).toBe(path.join(result.workDir, '.amlsim', 'metrics.jsonl'));

    const logs = only(result.calls, 'POST', '/logs')[0]!.body;
    expect(logs.stdout).toContain('training done');
    expect(logs.stderr).toContain('a warning');
    // Forwarded to the management process's own streams (what `docker logs` shows).
    expect(result.stdout).toContain('training done');
    expect(result.stderr).toContain('a warning');
    expect(result.stderr).toContain('[amlsim] GET /snapshot');

    expect(completeBody(result)).toEqual({ exitCode: 0 });
    expect(existsSync(path.join(result.workDir, 'lib', 'helper.js'))).toBe(true);
    expect(existsSync(path.join(result.workDir, 'node_modules', '@amlsim', 'run', 'package.json'))).toBe(true);
  });

  it('runs an ESM script importing @amlsim/run; logList, logRow and tag rows arrive', async () => {
    const train = `
      import { Run } from '@amlsim/run';
      import runModule from '@amlsim/run';
      import { createRequire } from 'node:module';
      const run = Run.getContext();
      // import and require share one context (one step counter per name).
      const viaRequire = createRequire(import.meta.url)('@amlsim/run').Run.getContext();
      if (viaRequire !== run || runModule.Run !== Run) throw new Error('two run contexts');
      run.log('acc', 0.5);
      viaRequire.log('acc', 0.75);
      run.logList('accuracies', [0.5, 0.75, 0.9]);
      run.logRow('eval', { epoch: 1, f1: 0.8, best: true });
      run.tag('framework', 'plain-node');
      run.tag('epochs', 3);
    `;
    const result = await runManagement({ files: [{ path: 'train.mjs', content: train }], script: 'train.mjs' });

    expect(result.refused).toEqual([]);
    expect(result.exitCode).toBe(0);
    const batches = only(result.calls, 'POST', '/metrics').map((c) => c.body);
    expect(batches.map((b) => b.batch)).toEqual([1]);
    const rows = batches[0].rows.map(({ at, ...rest }: { at: string }) => {
      expect(Number.isNaN(Date.parse(at))).toBe(false);
      return rest;
    });
    expect(rows).toEqual([
      { kind: 'scalar', name: 'acc', value: 0.5, step: 0 },
      { kind: 'scalar', name: 'acc', value: 0.75, step: 1 },
      { kind: 'list', name: 'accuracies', values: [0.5, 0.75, 0.9] },
      { kind: 'row', name: 'eval', row: { epoch: 1, f1: 0.8, best: true } },
      { kind: 'tag', name: 'framework', value: 'plain-node' },
      { kind: 'tag', name: 'epochs', value: '3' },
    ]);
    expect(completeBody(result)).toEqual({ exitCode: 0 });
  });

  it('completes a script that never logs with no metric batches and no outputs', async () => {
    const result = await runManagement({ files: [{ path: 'train.js', content: `console.log('hello');` }] });

    expect(result.exitCode).toBe(0);
    expect(sequence(result.calls)).toEqual([
      'POST /status Preparing',
      'GET /snapshot',
      'POST /status Running',
      'POST /heartbeat',
      'POST /logs',
      'POST /status Finalizing',
      'POST /complete',
    ]);
    expect(only(result.calls, 'POST', '/metrics')).toEqual([]);
    expect(completeBody(result)).toEqual({ exitCode: 0 });
  });

  it('reports a failing script: stderr tail in /logs, no Finalizing, /complete with its exit code', async () => {
    const train = `
      require('@amlsim/run').Run.getContext().log('before-crash', 1);
      console.log('some output');
      console.error('boom: the data set is missing');
      process.exit(3);
    `;
    const result = await runManagement({ files: [{ path: 'train.js', content: train }] });

    expect(result.exitCode).toBe(3);
    expect(sequence(result.calls)).toEqual([
      'POST /status Preparing',
      'GET /snapshot',
      'POST /status Running',
      'POST /heartbeat',
      'POST /logs',
      'POST /complete',
    ]);
    const logs = only(result.calls, 'POST', '/logs')[0]!.body;
    expect(logs.stderr).toContain('boom: the data set is missing');
    expect(logs.stdout).toContain('some output');
    expect(completeBody(result)).toEqual({ exitCode: 3 });
  });

  it('keeps only the last 64 KiB of a long output in /logs', async () => {
    const train = `process.stdout.write('x'.repeat(200_000) + '€'.repeat(10) + 'END\\n');`;
    const result = await runManagement({ files: [{ path: 'train.js', content: train }] });

    expect(result.exitCode).toBe(0);
    const { stdout } = only(result.calls, 'POST', '/logs')[0]!.body;
    expect(Buffer.byteLength(stdout)).toBeLessThanOrEqual(64 * 1024);
    expect(Buffer.byteLength(stdout)).toBeGreaterThan(64 * 1024 - 4);
    expect(stdout.endsWith(`${'€'.repeat(10)}END\n`)).toBe(true);
    expect(result.stdout.length).toBeGreaterThan(200_000); // forwarded in full
  });

  it('keeps the stderr tail within 64 KiB even for bytes that are not UTF-8', async () => {
    const train = `process.stderr.write(Buffer.alloc(100_000, 0xff)); process.stderr.write('END');`;
    const result = await runManagement({ files: [{ path: 'train.js', content: train }] });

    expect(result.exitCode).toBe(0);
    const { stderr } = only(result.calls, 'POST', '/logs')[0]!.body;
    expect(Buffer.byteLength(stderr)).toBeLessThanOrEqual(64 * 1024);
    expect(stderr.endsWith('\uFFFDEND')).toBe(true);
  });

  it('stops a long-running script when a heartbeat answers cancelRequested (SIGTERM: exit 143)', async () => {
    const train = `console.log('started'); setInterval(() => {}, 1000);`;
    const result = await runManagement({
      files: [{ path: 'train.js', content: train }],
      respond: (call, index) =>
        call.route === '/heartbeat' && index >= 3 ? { status: 200, body: { ok: true, cancelRequested: true } } : undefined,
    });

    expect(result.exitCode).toBe(143);
    expect(only(result.calls, 'POST', '/heartbeat')).toHaveLength(3); // none after the cancel
    expect(sequence(result.calls)).toEqual([
      'POST /status Preparing',
      'GET /snapshot',
      'POST /status Running',
      'POST /heartbeat',
      'POST /logs',
      'POST /complete',
    ]);
    expect(completeBody(result)).toEqual({ exitCode: 143 });
    expect(result.stderr).toContain('cancel requested');
    expect(result.ms).toBeLessThan(10_000);
  });

  it('process isolation: kills a script that ignores SIGTERM after the grace period (SIGKILL: exit 137)', async () => {
    const train = `
      process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      require('node:fs').writeFileSync('ready', '');
      setInterval(() => {}, 1000);
    `;
    const result = await runManagement({
      isolation: 'process',
      files: [{ path: 'train.js', content: train }],
      // Cancel once the handler is installed (the first heartbeat goes out right at spawn).
      respond: (call, _index, workDir) =>
        call.route === '/heartbeat' && existsSync(path.join(workDir, 'ready'))
          ? { status: 200, body: { ok: true, cancelRequested: true } }
          : undefined,
    });

    expect(result.exitCode).toBe(137);
    expect(completeBody(result)).toEqual({ exitCode: 137 });
    expect(only(result.calls, 'POST', '/logs')[0]!.body.stdout).toContain('ignoring SIGTERM');
  });

  it('thread isolation (the default): a script that ignores SIGTERM is still stopped at once on cancel (143)', async () => {
    const train = `
      process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      require('node:fs').writeFileSync('ready', '');
      setInterval(() => {}, 1000);
    `;
    const result = await runManagement({
      files: [{ path: 'train.js', content: train }],
      respond: (call, _index, workDir) =>
        call.route === '/heartbeat' && existsSync(path.join(workDir, 'ready'))
          ? { status: 200, body: { ok: true, cancelRequested: true } }
          : undefined,
    });
    expect(result.exitCode).toBe(143);
    expect(completeBody(result)).toEqual({ exitCode: 143 });
  });

  it('a script requiring a package its environment lacks ends with ModuleNotFoundError naming it (S8.3 step 1); a missing relative file does not', async () => {
    const cjs = await runManagement({ files: [{ path: 'train.js', content: `require('left-pad/lib');` }] });
    expect(cjs.exitCode).toBe(1);
    expect(completeBody(cjs)).toEqual({ exitCode: 1, error: expect.stringMatching(/^ModuleNotFoundError: No module named 'left-pad': .*add it to the run's environment dependencies/) });
    const esm = await runManagement({ files: [{ path: 'train.mjs', content: `import '@scope/missing/x.js';` }], script: 'train.mjs' });
    expect(completeBody(esm)).toEqual({ exitCode: 1, error: expect.stringMatching(/^ModuleNotFoundError: No module named '@scope\/missing'/) });
    const relative = await runManagement({ files: [{ path: 'train.js', content: `require('./not-there');` }] });
    expect(completeBody(relative)).toEqual({ exitCode: 1 });
  });

  it('thread isolation: an uncaught error reaches the log tail and ends the script with 1', async () => {
    const result = await runManagement({ files: [{ path: 'train.js', content: `throw new Error('no label column');` }] });
    expect(result.exitCode).toBe(1);
    expect(only(result.calls, 'POST', '/logs')[0]!.body.stderr).toContain('Error: no label column');
  });

  it('process.exit(0) from deep in the script ends it there, and what it logged before is still written back', async () => {
    const train = `
      const run = require('@amlsim/run').Run.getContext();
      run.log('loss', 0.5);
      require('node:fs').mkdirSync('outputs', { recursive: true });
      require('node:fs').writeFileSync('outputs/model.txt', 'w');
      const deep = (n) => (n === 0 ? process.exit(0) : deep(n - 1));
      deep(50);
      console.log('after exit: must not run');
    `;
    const result = await runManagement({ files: [{ path: 'train.js', content: train }] });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain('after exit');
    expect(sequence(result.calls)).toEqual(['POST /status Preparing', 'GET /snapshot', 'POST /status Running', 'POST /heartbeat', 'POST /logs', 'POST /status Finalizing', 'POST /metrics', 'PUT /outputs', 'POST /complete']);
    expect(only(result.calls, 'POST', '/metrics')[0]!.body.rows).toHaveLength(1);
    expect(completeBody(result)).toEqual({ exitCode: 0 });
  });

  it('a script that sets process.exitCode and ends ends with that code', async () => {
    const result = await runManagement({ files: [{ path: 'train.js', content: `setTimeout(() => { process.exitCode = 4; }, 20);` }] });
    expect(result.exitCode).toBe(4);
    expect(completeBody(result)).toEqual({ exitCode: 4 });
  });

  it('an unhandled rejection ends the script with 1 and reaches the log tail', async () => {
    const result = await runManagement({ files: [{ path: 'train.js', content: `Promise.reject(new Error('lost the GPU'));` }] });
    expect(result.exitCode).toBe(1);
    expect(only(result.calls, 'POST', '/logs')[0]!.body.stderr).toContain('lost the GPU');
  });

  it('exits 1 with the reason when a write-back call is refused (expired token), after trying /complete', async () => {
    const train = `
      const fs = require('node:fs');
      require('@amlsim/run').Run.getContext().log('loss', 0.1);
      fs.mkdirSync('outputs'); fs.writeFileSync('outputs/model.txt', 'w');
    `;
    const result = await runManagement({
      files: [{ path: 'train.js', content: train }],
      respond: (call) =>
        call.route === '/metrics'
          ? { status: 401, body: { error: { code: 'ExpiredAuthenticationToken', message: 'the run token expired' } } }
          : undefined,
    });

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('amlsim management: ExpiredAuthenticationToken: the run token expired');
    expect(only(result.calls, 'PUT', '/outputs')).toEqual([]);
    expect(result.calls.at(-1)!.route).toBe('/complete');
    expect(completeBody(result)).toEqual({ exitCode: 1, error: 'ExpiredAuthenticationToken: the run token expired' });
  });

  it('exits 1 when the snapshot download is refused, without running anything', async () => {
    const result = await runManagement({
      files: [{ path: 'train.js', content: `console.log('must not run');` }],
      respond: (call) =>
        call.route === '/snapshot'
          ? { status: 403, body: { error: { code: 'AuthorizationFailed', message: 'token is for another workspace' } } }
          : undefined,
    });

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('amlsim management: AuthorizationFailed: token is for another workspace');
    expect(sequence(result.calls)).toEqual(['POST /status Preparing', 'GET /snapshot', 'POST /complete']);
    expect(completeBody(result)).toEqual({ exitCode: 1, error: 'AuthorizationFailed: token is for another workspace' });
    expect(result.stdout).not.toContain('must not run');
  });

  it('exits 1 when every call is refused (wrong token) even though /complete fails too', async () => {
    const result = await runManagement({ files: [{ path: 'train.js', content: '' }], token: 'not-the-token' });

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('amlsim management: InvalidAuthenticationToken: bad token');
    expect(result.refused.map((r) => r.split(' ')[0])).toEqual(['POST', 'POST']); // /status, then /complete
  });

  it.each(['../evil.js', 'lib/../../evil.js', '{DIR}/evil.js', '{DIR}/work/evil.js'])(
    'refuses the snapshot path %s and writes nothing',
    async (evilPath) => {
      const result = await runManagement({
        files: [
          { path: 'train.js', content: `console.log('must not run');` },
          { path: evilPath, content: `console.log('evil');` },
        ],
      });

      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toContain('amlsim management: InvalidSnapshot');
      expect(existsSync(path.join(result.dir, 'evil.js'))).toBe(false);
      expect(existsSync(path.join(result.workDir, 'evil.js'))).toBe(false);
      // Checked before anything is written: not even the valid file is there.
      expect(existsSync(path.join(result.workDir, 'train.js'))).toBe(false);
      expect(sequence(result.calls)).toEqual(['POST /status Preparing', 'GET /snapshot', 'POST /complete']);
      expect(completeBody(result).error).toMatch(/^InvalidSnapshot: /);
    },
  );

  it('applies snapshot file modes', async () => {
    const train = `
      const fs = require('node:fs');
      fs.mkdirSync('outputs');
      fs.writeFileSync('outputs/mode.txt', (fs.statSync('run.sh').mode & 0o777).toString(8));
    `;
    const result = await runManagement({
      files: [{ path: 'train.js', content: train }, { path: 'run.sh', content: '#!/bin/sh\n', mode: 0o755 }],
    });
    expect(result.exitCode).toBe(0);
    const output = only(result.calls, 'PUT', '/outputs')[0]!.body;
    expect(Buffer.from(output.content, 'base64').toString()).toBe('755');
    expect(readFileSync(path.join(result.workDir, 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');
  });
});
