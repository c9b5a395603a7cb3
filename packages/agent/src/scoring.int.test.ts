/**
 * The scoring server of a web-service replica and the scoring-script check (S8.5), run as real
 * `node scoring/server.mjs` / `node scoring/check-script.mjs` child processes with real scoring
 * scripts; the server is called over its unix socket the way the scoring gateway calls it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AGENT_DIR,
  AGENT_IMAGE_DIR,
  AGENT_IMAGE_SCORING_CHECK_SCRIPT,
  AGENT_IMAGE_SCORING_SERVER,
  SCORING_CHECK_SCRIPT,
  SCORING_SERVER,
  agentFiles,
  scoringFiles,
} from './index';

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const tempDirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'amlsim-scoring-'));
  tempDirs.push(dir);
  return dir;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Spawned {
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  exit: Promise<Exit>;
}

function spawnNode(script: string, args: string[], env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [script, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.on('data', (c: Buffer) => (output.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output.stderr += c.toString()));
  const exit = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, output, exit };
}

interface Replica extends Spawned {
  dir: string;
  socketPath: string;
  scriptPath: string;
  modelDir: string;
}

interface ReplicaOptions {
  /** The scoring script's source. */
  script: string;
  /** Its file name (decides CommonJS or ESM). */
  name?: string;
  /** Files put into AZUREML_MODEL_DIR. */
  model?: Record<string, string>;
  env?: Record<string, string>;
  /** Reuse a directory (and so the socket path) of an earlier replica. */
  dir?: string;
}

function startReplica(options: ReplicaOptions): Replica {
  const dir = options.dir ?? tempDir();
  const scriptPath = path.join(dir, 'app', options.name ?? 'score.js');
  mkdirSync(path.dirname(scriptPath), { recursive: true });
  writeFileSync(scriptPath, options.script);
  const modelDir = path.join(dir, 'model');
  mkdirSync(modelDir, { recursive: true });
  for (const [name, content] of Object.entries(options.model ?? {})) writeFileSync(path.join(modelDir, name), content);
  const socketPath = path.join(dir, 'replica.sock');
  const spawned = spawnNode(SCORING_SERVER, [], {
    AMLSIM_SCORING_SCRIPT: scriptPath,
    AMLSIM_SCORING_SOCKET: socketPath,
    AZUREML_MODEL_DIR: modelDir,
    ...options.env,
  });
  return { ...spawned, dir, socketPath, scriptPath, modelDir };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
  reusedSocket: boolean;
}

interface CallOptions {
  body?: string | Buffer | string[];
  headers?: Record<string, string>;
  agent?: http.Agent;
}

/** One HTTP call over the replica's socket; `body` as an array is sent chunked, piece by piece. */
function call(socketPath: string, method: string, urlPath: string, options: CallOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath,
      method,
      path: urlPath,
      headers: { 'content-type': 'application/json', ...options.headers },
      agent: options.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
      });
    });
    if (Array.isArray(options.body)) {
      for (const piece of options.body) req.write(piece);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

function score(replica: Replica, input: unknown, options: CallOptions = {}): Promise<Answer> {
  return call(replica.socketPath, 'POST', '/score', { ...options, body: JSON.stringify(input) });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The first answer to GET / once the socket accepts connections (it exists before init()
 * finishes). Fails if the replica exits first.
 */
async function firstLiveness(replica: Replica, timeoutMs = 10_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (replica.child.exitCode !== null) {
      throw new Error(`replica exited with ${replica.child.exitCode}\n${replica.output.stderr}`);
    }
    try {
      return await call(replica.socketPath, 'GET', '/');
    } catch (err) {
      // ENOENT before the socket exists, ECONNREFUSED between bind and listen.
      if (Date.now() > deadline) throw new Error(`replica never answered: ${String(err)}\n${replica.output.stderr}`);
      await sleep(10);
    }
  }
}

/** Waits until GET / answers 200. */
async function healthy(replica: Replica, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await firstLiveness(replica, timeoutMs);
    if (answer.status === 200) return;
    if (Date.now() > deadline) throw new Error(`replica not healthy: ${answer.status} ${answer.text}\n${replica.output.stderr}`);
    await sleep(20);
  }
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function exitWithin(spawned: Spawned, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not exit within ${ms} ms\n${spawned.output.stderr}`)), ms);
  });
  try {
    return await Promise.race([spawned.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function lastLine(text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? '';
}

// ---------------------------------------------------------------------------------------------
// Scoring scripts
// ---------------------------------------------------------------------------------------------

const CJS_SCRIPT = `
let factor;
function init() {
  factor = 2;
  console.log('init done');
}
function run(input) {
  return { doubled: input.values.map((v) => v * factor) };
}
module.exports = { init, run };
`;

const ESM_SCRIPT = `
import { setTimeout as sleep } from 'node:timers/promises';
let model;
export async function init() {
  await sleep(50);
  model = { bias: 10 };
}
export async function run(input) {
  await sleep(5);
  return input.map((x) => x + model.bias);
}
`;

const MODEL_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
let model;
exports.init = () => {
  model = JSON.parse(fs.readFileSync(path.join(process.env.AZUREML_MODEL_DIR, 'model.json'), 'utf8'));
};
exports.run = ({ data }) => ({
  model: model.name,
  predictions: data.map((row) => row.reduce((sum, x, i) => sum + x * model.weights[i], model.bias)),
});
`;

const FAILING_SCRIPT = `
exports.run = async (input) => {
  switch (input.mode) {
    case 'throw': throw new Error('the input has no "data" field');
    case 'throw-string': throw 'plain string thrown';
    case 'circular': { const o = {}; o.self = o; return o; }
    case 'undefined': return undefined;
    case 'bigint': return { n: 10n };
    default: return { ok: true };
  }
};
`;

const SLOW_SCRIPT = `
const { setTimeout: sleep } = require('node:timers/promises');
exports.run = async (input) => {
  console.log('run started');
  await sleep(input.ms ?? 300);
  return { slept: input.ms ?? 300 };
};
`;

// ---------------------------------------------------------------------------------------------

describe('scoring server (S8.5) on a unix socket', () => {
  it('serves a CommonJS script with sync init/run; socket 0666, request id echoed, one log line without the body', async () => {
    const replica = startReplica({ script: CJS_SCRIPT });
    await healthy(replica);

    expect(statSync(replica.socketPath).mode & 0o777).toBe(0o666);
    const live = await call(replica.socketPath, 'GET', '/');
    expect(live.status).toBe(200);
    expect(live.json).toEqual({ status: 'Healthy' });

    const answer = await score(
      replica,
      { values: [1, 2, 3.5], patient: 'Jane Doe, born 1970-01-01' },
      { headers: { 'x-ms-request-id': 'req-0001' } },
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers['x-ms-request-id']).toBe('req-0001');
    expect(answer.json).toEqual({ doubled: [2, 4, 7] });

    // A generated id when the gateway sends none.
    const other = await score(replica, { values: [] });
    expect(other.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    await waitFor(() => replica.output.stdout.includes(other.headers['x-ms-request-id'] as string), 'the log line');
    const lines = replica.output.stdout.split('\n').filter((l) => l.includes('/score'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[amlsim scoring\] \S+Z POST \/score 200 \d+\.\dms req-0001$/);
    expect(replica.output.stdout).toContain('init done');
    // No body in the logs (it may hold personal data).
    expect(replica.output.stdout + replica.output.stderr).not.toContain('Jane Doe');
  });

  it('serves an ESM script (.mjs) with async init and async run, concurrently', async () => {
    const replica = startReplica({ script: ESM_SCRIPT, name: 'score.mjs' });
    await healthy(replica);

    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => score(replica, [i, i + 1])));
    answers.forEach((answer, i) => {
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual([i + 10, i + 11]);
    });
  });

  it('serves a default-exported object (ESM) and keeps `this`', async () => {
    const script = `
      export default {
        prefix: undefined,
        init() { this.prefix = 'label-'; },
        run(input) { return this.prefix + input.id; },
      };
    `;
    const replica = startReplica({ script, name: 'score.mjs' });
    await healthy(replica);
    const answer = await score(replica, { id: 7 });
    expect(answer.status).toBe(200);
    expect(answer.json).toBe('label-7');
  });

  it('init() loads the model from AZUREML_MODEL_DIR and run() uses it', async () => {
    const model = { name: 'linear-v1', weights: [2, 3], bias: 1 };
    const replica = startReplica({ script: MODEL_SCRIPT, model: { 'model.json': JSON.stringify(model) } });
    await healthy(replica);

    const answer = await score(replica, { data: [[1, 1], [2, 0], [0, 0]] });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ model: 'linear-v1', predictions: [6, 5, 1] });
  });

  it('answers 500 ScoringError with the message when run throws or returns something that is not JSON, and keeps serving', async () => {
    const replica = startReplica({ script: FAILING_SCRIPT });
    await healthy(replica);

    const thrown = await score(replica, { mode: 'throw' });
    expect(thrown.status).toBe(500);
    expect(thrown.json).toEqual({ error: { code: 'ScoringError', message: 'the input has no "data" field' } });

    const thrownString = await score(replica, { mode: 'throw-string' });
    expect(thrownString.status).toBe(500);
    expect(thrownString.json).toEqual({ error: { code: 'ScoringError', message: 'plain string thrown' } });

    for (const mode of ['circular', 'undefined', 'bigint']) {
      const answer = await score(replica, { mode });
      expect(answer.status, mode).toBe(500);
      expect(answer.json.error.code).toBe('ScoringError');
      expect(answer.json.error.message).toMatch(/not JSON-serializable/);
    }

    // The stack goes to the replica's stderr (docker logs), the request line to stdout.
    expect(replica.output.stderr).toContain('the input has no "data" field');
    expect(replica.output.stdout).toMatch(/POST \/score 500 /);

    const ok = await score(replica, { mode: 'fine' });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ ok: true });
  });

  it('answers 400 BadRequest to a body that is not JSON (or empty), 404/405 elsewhere', async () => {
    const replica = startReplica({ script: CJS_SCRIPT });
    await healthy(replica);

    const notJson = await call(replica.socketPath, 'POST', '/score', { body: 'values=1,2,3' });
    expect(notJson.status).toBe(400);
    expect(notJson.json.error.code).toBe('BadRequest');
    expect(notJson.json.error.message).toMatch(/^the request body is not valid JSON/);

    const empty = await call(replica.socketPath, 'POST', '/score', { body: '' });
    expect(empty.status).toBe(400);
    expect(empty.json.error.code).toBe('BadRequest');

    const get = await call(replica.socketPath, 'GET', '/score');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');

    const missing = await call(replica.socketPath, 'POST', '/predict', { body: '{}' });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NotFound');

    // A query string is ignored for routing and not logged.
    const withQuery = await call(replica.socketPath, 'POST', '/score?user=jane', { body: JSON.stringify({ values: [1] }) });
    expect(withQuery.status).toBe(200);
    await waitFor(() => replica.output.stdout.split('\n').filter((l) => l.includes('POST /score')).length === 3, 'log lines');
    expect(replica.output.stdout).not.toContain('user=jane');
  });

  it('answers 413 to a body over the limit, declared or chunked, and keeps serving', async () => {
    const replica = startReplica({ script: CJS_SCRIPT, env: { AMLSIM_SCORING_MAX_BODY_BYTES: '1024' } });
    await healthy(replica);
    const big = JSON.stringify({ values: Array.from({ length: 600 }, () => 1) });
    expect(big.length).toBeGreaterThan(1024);

    const declared = await call(replica.socketPath, 'POST', '/score', { body: big });
    expect(declared.status).toBe(413);
    expect(declared.json.error.code).toBe('PayloadTooLarge');

    const chunked = await call(replica.socketPath, 'POST', '/score', { body: [big.slice(0, 800), big.slice(800)] });
    expect(chunked.status).toBe(413);

    const small = await score(replica, { values: [1] });
    expect(small.status).toBe(200);
  });

  it('keeps connections alive between requests', async () => {
    const replica = startReplica({ script: CJS_SCRIPT });
    await healthy(replica);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await score(replica, { values: [i] }, { agent }));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(answers.map((a) => a.reusedSocket)).toEqual([false, true, true]);
      expect(answers[0]!.headers.connection).toBe('keep-alive');
    } finally {
      agent.destroy();
    }
  });

  it('liveness is 503 while init() runs and 200 after; /score is 503 until then', async () => {
    const script = `
      const { setTimeout: sleep } = require('node:timers/promises');
      exports.init = async () => { await sleep(300); };
      exports.run = () => 'ready';
    `;
    const started = Date.now();
    const replica = startReplica({ script });

    const first = await firstLiveness(replica);
    expect(first.status).toBe(503);
    expect(first.json).toEqual({ status: 'Initializing' });
    const early = await score(replica, {});
    expect(early.status).toBe(503);
    expect(early.json.error.code).toBe('ServiceUnavailable');

    await healthy(replica);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    const answer = await score(replica, {});
    expect(answer.status).toBe(200);
    expect(answer.json).toBe('ready');
  });

  it('exits 1 with the message on stderr when init() throws', async () => {
    const script = `
      exports.init = () => { throw new Error('model.pkl not found in the model directory'); };
      exports.run = () => 1;
    `;
    const replica = startReplica({ script });
    const exit = await exitWithin(replica, 10_000);
    expect(exit.code).toBe(1);
    expect(lastLine(replica.output.stderr)).toBe(
      'amlsim scoring: ScoringInitFailed: init() failed: model.pkl not found in the model directory',
    );
    expect(replica.output.stderr).toMatch(/at (Object\.)?exports\.init|at .*score\.js:2/); // the stack, above
  });

  it('exits 1 with the reason when the script does not load or has no run()', async () => {
    const broken = startReplica({ script: `throw new Error('cannot import tensorflow');` });
    expect((await exitWithin(broken, 10_000)).code).toBe(1);
    expect(lastLine(broken.output.stderr)).toBe(
      `amlsim scoring: ScoringScriptLoadFailed: loading ${broken.scriptPath} failed: Error: cannot import tensorflow`,
    );

    const noRun = startReplica({ script: `exports.init = () => {}; exports.predict = () => 1;` });
    expect((await exitWithin(noRun, 10_000)).code).toBe(1);
    expect(lastLine(noRun.output.stderr)).toBe(
      `amlsim scoring: ScoringScriptInvalid: ${noRun.scriptPath} does not export a run(input) function (it exports: init, predict)`,
    );
  });

  it('exits 1 when its configuration is missing', async () => {
    const spawned = spawnNode(SCORING_SERVER, [], { AMLSIM_SCORING_SCRIPT: '/nowhere/score.js' });
    expect((await exitWithin(spawned, 10_000)).code).toBe(1);
    expect(lastLine(spawned.output.stderr)).toBe(
      'amlsim scoring: InvalidConfiguration: environment variable AMLSIM_SCORING_SOCKET is not set',
    );
  });

  it('SIGTERM: stops accepting, finishes the in-flight request, exits 0', async () => {
    const replica = startReplica({ script: SLOW_SCRIPT });
    await healthy(replica);

    const inFlight = score(replica, { ms: 400 });
    await waitFor(() => replica.output.stdout.includes('run started'), 'run() to start');
    replica.child.kill('SIGTERM');
    await waitFor(() => replica.output.stderr.includes('received SIGTERM'), 'the signal to arrive');

    // No new connections…
    await expect(call(replica.socketPath, 'GET', '/')).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    // …but the request under way is answered.
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ slept: 400 });
    expect(answer.headers.connection).toBe('close');

    const exit = await exitWithin(replica, 5_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM with an idle keep-alive connection open exits 0 at once', async () => {
    const replica = startReplica({ script: CJS_SCRIPT });
    await healthy(replica);
    const agent = new http.Agent({ keepAlive: true });
    try {
      expect((await score(replica, { values: [1] }, { agent })).status).toBe(200);
      const signaled = Date.now();
      replica.child.kill('SIGTERM');
      const exit = await exitWithin(replica, 5_000);
      expect(exit.code).toBe(0);
      expect(Date.now() - signaled).toBeLessThan(2_000);
    } finally {
      agent.destroy();
    }
  });

  it('SIGTERM during init() exits 0', async () => {
    const script = `
      exports.init = () => new Promise(() => {}); // never finishes
      exports.run = () => 1;
    `;
    const replica = startReplica({ script });
    expect((await firstLiveness(replica)).status).toBe(503);
    replica.child.kill('SIGTERM');
    expect((await exitWithin(replica, 5_000)).code).toBe(0);
  });

  it('replaces the stale socket of a killed replica (restart on the same path)', async () => {
    const first = startReplica({ script: CJS_SCRIPT });
    await healthy(first);
    first.child.kill('SIGKILL');
    await first.exit;
    expect(existsSync(first.socketPath)).toBe(true);

    const second = startReplica({ script: CJS_SCRIPT, dir: first.dir });
    await healthy(second);
    expect((await score(second, { values: [21] })).json).toEqual({ doubled: [42] });
  });
});

// ---------------------------------------------------------------------------------------------

interface CheckResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function check(dir: string, name: string, source: string, extra: Record<string, string> = {}): Promise<CheckResult & { file: string }> {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, source);
  for (const [rel, content] of Object.entries(extra)) writeFileSync(path.join(dir, rel), content);
  const spawned = spawnNode(SCORING_CHECK_SCRIPT, [file], {});
  const exit = await exitWithin(spawned, 30_000);
  return { code: exit.code, ...spawned.output, file };
}

describe('scoring-script check (S8.5: a broken scoring script fails the image)', () => {
  it('accepts a good CommonJS script and a good ESM script without calling init()', async () => {
    const dir = tempDir();
    const cjs = await check(dir, 'score.js', CJS_SCRIPT);
    expect(cjs.code).toBe(0);
    expect(cjs.stdout).toContain(`${cjs.file}: valid scoring script (exports init, run)`);
    expect(cjs.stdout).not.toContain('init done'); // init() is not called

    const esm = await check(dir, 'score.mjs', ESM_SCRIPT);
    expect(esm.code).toBe(0);

    const initThrows = await check(dir, 'throws.js', `exports.init = () => { throw new Error('x'); }; exports.run = () => 1;`);
    expect(initThrows.code).toBe(0);
  });

  it('exits 0 even if the script leaves a timer running', async () => {
    const result = await check(tempDir(), 'score.js', `setInterval(() => {}, 1000); exports.run = () => 1;`);
    expect(result.code).toBe(0);
  });

  it('reports an ESM syntax error with its location', async () => {
    const source = `export function run(input) {\n  return input +;\n}\n`;
    const result = await check(tempDir(), 'score.mjs', source);
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toBe(`amlsim scoring: ScoringScriptSyntaxError: ${result.file}:2:17: Unexpected token ';'`);
    expect(result.stderr).toContain(`${result.file}:2\n  return input +;\n                ^\n`);
  });

  it('reports a CommonJS syntax error with its location', async () => {
    const source = `exports.run = (input) => {\n  const x = ;\n};\n`;
    const result = await check(tempDir(), 'score.js', source);
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toBe(`amlsim scoring: ScoringScriptSyntaxError: ${result.file}:2:13: Unexpected token ';'`);
  });

  it('reports a syntax error in a module the script imports, naming that module', async () => {
    const dir = tempDir();
    const result = await check(dir, 'score.mjs', `import { helper } from './helper.mjs';\nexport const run = helper;\n`, {
      'helper.mjs': `export function helper(x) {\n  return x +;\n}\n`,
    });
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toBe(
      `amlsim scoring: ScoringScriptSyntaxError: ${path.join(dir, 'helper.mjs')}:2:13: Unexpected token ';' (imported by ${result.file})`,
    );
  });

  it('reports a missing run() clearly', async () => {
    const result = await check(tempDir(), 'score.js', `exports.init = () => {};\nexports.predict = (x) => x;\n`);
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toBe(
      `amlsim scoring: ScoringScriptInvalid: ${result.file} does not export a run(input) function (it exports: init, predict)`,
    );
  });

  it('reports run or init that are not functions', async () => {
    const dir = tempDir();
    const run = await check(dir, 'a.mjs', `export const run = 'not a function';`);
    expect(run.code).toBe(1);
    expect(lastLine(run.stderr)).toBe(`amlsim scoring: ScoringScriptInvalid: ${run.file} exports run, but it is a string, not a function`);
    const init = await check(dir, 'b.mjs', `export const run = () => 1; export const init = { model: 1 };`);
    expect(init.code).toBe(1);
    expect(lastLine(init.stderr)).toBe(`amlsim scoring: ScoringScriptInvalid: ${init.file} exports init, but it is an object, not a function`);
  });

  it('reports a script that fails to load, and a missing file', async () => {
    const dir = tempDir();
    const missingDep = await check(dir, 'score.js', `require('tensorflow-js-not-installed');\nexports.run = () => 1;\n`);
    expect(missingDep.code).toBe(1);
    expect(lastLine(missingDep.stderr)).toMatch(
      /^amlsim scoring: ScoringScriptLoadFailed: loading .*score\.js failed: Error: Cannot find module 'tensorflow-js-not-installed'/,
    );

    const spawned = spawnNode(SCORING_CHECK_SCRIPT, [path.join(dir, 'nope.js')], {});
    expect((await exitWithin(spawned, 10_000)).code).toBe(1);
    expect(lastLine(spawned.output.stderr)).toBe(`amlsim scoring: ScoringScriptNotFound: scoring script ${path.join(dir, 'nope.js')} not found (ENOENT)`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('scoring files for an inference image', () => {
  it('lists the server, the check and what they import under /amlsim/agent/scoring/, apart from agentFiles()', () => {
    const files = scoringFiles();
    const paths = files.map((f) => f.path);
    expect(paths).toContain(AGENT_IMAGE_SCORING_SERVER);
    expect(paths).toContain(AGENT_IMAGE_SCORING_CHECK_SCRIPT);
    for (const file of files) {
      expect(file.path.startsWith(`${AGENT_IMAGE_DIR}/scoring/`)).toBe(true);
      expect(path.relative(AGENT_DIR, file.hostPath)).toBe(file.path.slice(`${AGENT_IMAGE_DIR}/`.length));
      expect(file.mode).toBe(0o644);
      // Every relative import of a listed file is listed too; nothing but node: built-ins otherwise.
      const source = readFileSync(file.hostPath, 'utf8');
      for (const [, spec] of source.matchAll(/from '([^']+)'/g)) {
        if (spec!.startsWith('node:')) continue;
        expect(spec!.startsWith('./'), `${file.path} imports ${spec}`).toBe(true);
        expect(paths).toContain(path.posix.join(path.posix.dirname(file.path), spec!));
      }
    }
    expect(agentFiles().some((f) => f.path.includes('/scoring/'))).toBe(false);
  });

  it('runs from a copy of just those files', async () => {
    const root = tempDir();
    for (const file of scoringFiles()) {
      const target = path.join(root, file.path);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(file.hostPath, target);
    }
    const scriptPath = path.join(root, 'score.js');
    writeFileSync(scriptPath, CJS_SCRIPT);
    const spawned = spawnNode(path.join(root, AGENT_IMAGE_SCORING_CHECK_SCRIPT), [scriptPath], {});
    expect((await exitWithin(spawned, 10_000)).code).toBe(0);
  });
});

describe('scoring server in a virtual network (S3.1): AMLSIM_SCORING_PORT', () => {
  const freePort = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const probe = http.createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
  const post = (port: number, body: unknown): Promise<{ status: number; json: any }> =>
    new Promise((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/score', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
        let answer = '';
        res.on('data', (c: Buffer) => (answer += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(answer) }));
      });
      req.on('error', reject);
      req.end(text);
    });

  it('serves the same routes on 127.0.0.1:<port> as on its socket, and only on loopback', async () => {
    const port = await freePort();
    const replica = startReplica({ script: CJS_SCRIPT, env: { AMLSIM_SCORING_PORT: String(port) } });
    await healthy(replica);
    expect(await post(port, { values: [1, 2] })).toEqual({ status: 200, json: { doubled: [2, 4] } });
    expect((await score(replica, { values: [3] })).json).toEqual({ doubled: [6] });
    expect(replica.output.stderr).toContain(`and 127.0.0.1:${port}`);
    // SIGTERM stops both listeners.
    replica.child.kill('SIGTERM');
    expect((await exitWithin(replica, 10_000)).code).toBe(0);
  });

  it('refuses a port that is not one', async () => {
    const replica = startReplica({ script: CJS_SCRIPT, env: { AMLSIM_SCORING_PORT: '70000' } });
    expect((await exitWithin(replica, 10_000)).code).toBe(1);
    expect(replica.output.stderr.trim().split('\n').at(-1)).toMatch(/^amlsim scoring: InvalidConfiguration: AMLSIM_SCORING_PORT must be a port number/);
  });
});
