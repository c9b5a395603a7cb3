/**
 * amlsim management code — the initial command of a compute target's container, or a child
 * process of the process driver (S8.3: "AML runs management code on the target"; managed
 * compute: "start the container with an initial command — that management code").
 *
 * It is the only client of the run control plane (docs/control-plane.md): HTTP/1.1 over the
 * unix socket named by AZUREML_SERVICE_ENDPOINT, every call authenticated with the run's AML
 * token (S1.3). The container has no network; this socket is its only way out.
 *
 *   1. POST /status Preparing; GET /snapshot; write the files under AMLSIM_WORK_DIR
 *      (S8.3 step 1 prepare the environment, step 2 download the code)
 *   2. copy @amlsim/run into <work>/node_modules; set the variables (S8.3 step 3)
 *   3. POST /status Running; run `node <script> <args…>` (S8.3 step 4), heartbeating
 *   4. POST /logs; on exit 0: POST /status Finalizing, POST /metrics batches, PUT /outputs (S8.4)
 *   5. POST /complete { exitCode }; exit with the script's code
 *
 * Plain JavaScript, Node built-ins only: it is copied into FROM-scratch images holding just
 * the node binary and busybox. The run module is found at ../run relative to this file.
 */

'use strict';
// CommonJS, not an ES module: Node 20 starts its ES module loader for an .mjs entry point, and
// that costs ~20 ms of CPU per run container (bench/training-bench.ts measures what a run costs).
// child_process and worker_threads are loaded only by the hosts that use them: on managed
// compute the script runs on this thread, and loading them would cost every run.
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_HEARTBEAT_MS = 2_000;
/**
 * How long a call keeps trying while nothing listens on the socket (docs/control-plane.md,
 * "When the platform restarts"): a simulator that died and is resumed opens the run's channel
 * again at the same path, and the run goes on. Only a call that never reached the platform
 * (no socket, or no listener) is tried again, so none is carried out twice.
 */
const UNREACHABLE_RETRY_MS = Number(process.env.AMLSIM_CONTROL_PLANE_RETRY_MS ?? 60_000);
/** Grace period between SIGTERM and SIGKILL when a run is canceled. */
const KILL_GRACE_MS = 2_000;
/** docs/control-plane.md: log tails of at most 64 KiB each. */
const LOG_TAIL_BYTES = 64 * 1024;
/** docs/control-plane.md: at most 250 rows per POST /metrics. */
const METRICS_BATCH_SIZE = 250;
/** How long to wait for the script's pipes to close once it exited (a grandchild may hold them). */
const PIPE_DRAIN_MS = 2_000;

const RUN_MODULE_DIR = path.join(__dirname, '..', 'run');

/** A failure with a code, reported to the platform as `<code>: <message>`. */
class ManagementError extends Error {
  /** @param {string} code @param {string} message @param {number} [status] HTTP status of a refusal */
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function step(text) {
  process.stderr.write(`[amlsim] ${text}\n`);
}

// ---------------------------------------------------------------------------------------------
// Configuration (docs/control-plane.md "Environment given to the management code")
// ---------------------------------------------------------------------------------------------

function required(env, name) {
  const value = env[name];
  if (!value) throw new ManagementError('InvalidConfiguration', `environment variable ${name} is not set`);
  return value;
}

/** The parts needed to call the platform; read first so even a bad configuration can be reported. */
function readConnection(env) {
  const endpoint = required(env, 'AZUREML_SERVICE_ENDPOINT');
  if (!endpoint.startsWith('unix://') || endpoint.length === 'unix://'.length) {
    throw new ManagementError(
      'InvalidConfiguration',
      `AZUREML_SERVICE_ENDPOINT must be unix://<socket path>, got '${endpoint}'`,
    );
  }
  return {
    socketPath: endpoint.slice('unix://'.length),
    token: required(env, 'AZUREML_RUN_TOKEN'),
    workspace: required(env, 'AZUREML_ARM_WORKSPACE_NAME'),
    runId: required(env, 'AZUREML_RUN_ID'),
  };
}

function parseJson(env, name, fallback, check, expected) {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ManagementError('InvalidConfiguration', `${name} is not valid JSON`);
  }
  if (!check(value)) throw new ManagementError('InvalidConfiguration', `${name} must be ${expected}`);
  return value;
}

function readRunConfig(env) {
  const workDir = path.resolve(required(env, 'AMLSIM_WORK_DIR'));
  const script = required(env, 'AMLSIM_SCRIPT');
  const args = parseJson(
    env, 'AMLSIM_ARGS', [],
    (v) => Array.isArray(v) && v.every((a) => typeof a === 'string'),
    'a JSON array of strings',
  );
  const userEnv = parseJson(
    env, 'AMLSIM_USER_ENV', {},
    (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
    'a JSON object',
  );
  const heartbeatMs = Number(env.AMLSIM_HEARTBEAT_MS || DEFAULT_HEARTBEAT_MS);
  if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0) {
    throw new ManagementError('InvalidConfiguration', `AMLSIM_HEARTBEAT_MS must be a positive number`);
  }
  return { workDir, script, args, userEnv, heartbeatMs };
}

// ---------------------------------------------------------------------------------------------
// The control-plane client: HTTP/1.1 over the unix socket, bearer token on every call (S1.3)
// ---------------------------------------------------------------------------------------------

function createClient({ socketPath, token, workspace, runId }) {
  const base = `/workspaces/${encodeURIComponent(workspace)}/runs/${encodeURIComponent(runId)}`;

  /**
   * `once`, tried again (backing off to 2 s) while the platform is unreachable, for up to
   * UNREACHABLE_RETRY_MS; `retry: false` for a call whose next tick replaces it (heartbeat).
   */
  async function call(method, route, body, { retry = true } = {}) {
    const deadline = Date.now() + UNREACHABLE_RETRY_MS;
    for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
      try {
        return await once(method, route, body);
      } catch (err) {
        if (!retry || !err.notReached || Date.now() + wait > deadline) throw err;
        step(`${method} ${route}: ${err.message}; trying again in ${wait} ms`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** Resolves with the parsed answer of a 2xx; rejects with a ManagementError otherwise. */
  function once(method, route, body) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      // agent: false — one connection per call, so no idle keep-alive socket outlives the run.
      // servername: '' — a unix socket has no TLS server name; without it the agent works one
      // out of the Host header with net.isIP, whose regular expressions cost ~10 ms of CPU to
      // build on first use, a tenth of this code's whole run.
      const req = http.request({ socketPath, method, path: `${base}${route}`, headers, agent: false, servername: '' });
      // A deadline for the whole exchange, not just socket idleness: a stuck platform must not
      // keep a finished run's container alive forever.
      const timer = setTimeout(() => {
        req.destroy(new ManagementError('ControlPlaneTimeout', `${method} ${route}: no answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      req.on('error', (err) => {
        clearTimeout(timer);
        if (err instanceof ManagementError) return reject(err);
        const unreachable = new ManagementError('ControlPlaneUnreachable', `${method} ${route}: ${err.message}`);
        // No socket, or nothing listening on it: the request never reached the platform. Or
        // the platform went while it answered (ECONNRESET): the call may have been carried
        // out, and sending it again is safe — the platform takes each call's fact at most once
        // (a status it is in already, a metrics batch by its number, an end it has).
        unreachable.notReached = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET';
        reject(unreachable);
      });
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (err) => req.destroy(err));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let answer;
          try {
            answer = text ? JSON.parse(text) : {};
          } catch {
            answer = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(answer ?? {});
          reject(refusal(method, route, status, answer, text));
        });
      });
      req.end(payload);
    });
  }

  return {
    getSnapshot: () => call('GET', '/snapshot'),
    status: (status, detail) => call('POST', '/status', detail === undefined ? { status } : { status, detail }),
    heartbeat: () => call('POST', '/heartbeat', {}, { retry: false }),
    metrics: (batch, rows) => call('POST', '/metrics', { batch, rows }),
    output: (relPath, content) => call('PUT', '/outputs', { path: relPath, content: content.toString('base64') }),
    logs: (stdout, stderr) => call('POST', '/logs', { stdout, stderr }),
    complete: (exitCode, error) => call('POST', '/complete', error === undefined ? { exitCode } : { exitCode, error }),
  };
}

/** The platform's `{ error: { code, message } }` answer as a ManagementError. */
function refusal(method, route, status, answer, text) {
  const error = answer && typeof answer === 'object' ? answer.error : undefined;
  if (error && typeof error.code === 'string') {
    return new ManagementError(error.code, String(error.message ?? ''), status);
  }
  const snippet = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return new ManagementError(`HTTP${status}`, `${method} ${route} answered ${status}${snippet ? `: ${snippet}` : ''}`, status);
}

// ---------------------------------------------------------------------------------------------
// Steps 1–2: download the code, make @amlsim/run resolvable (S8.3 steps 1–3)
// ---------------------------------------------------------------------------------------------

/**
 * The absolute path of `rel` inside `root`, or a ManagementError if it would land elsewhere
 * (absolute paths, `..`): a snapshot must never write outside the work dir.
 */
function insideDir(root, rel, what) {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) {
    throw new ManagementError('InvalidSnapshot', `${what} has an invalid path ${JSON.stringify(rel)}`);
  }
  const target = path.resolve(root, rel);
  if (path.isAbsolute(rel) || !target.startsWith(root + path.sep)) {
    throw new ManagementError('InvalidSnapshot', `${what} path '${rel}' escapes the work directory`);
  }
  return target;
}

/** Writes every snapshot file under workDir; all paths are checked before anything is written. */
function writeSnapshot(workDir, snapshot) {
  const files = snapshot && Array.isArray(snapshot.files) ? snapshot.files : undefined;
  if (!files) throw new ManagementError('InvalidSnapshot', 'snapshot answer has no files array');
  const planned = files.map((file) => {
    const target = insideDir(workDir, file && file.path, 'snapshot file');
    if (typeof file.content !== 'string') {
      throw new ManagementError('InvalidSnapshot', `snapshot file '${file.path}' has no base64 content`);
    }
    const mode = Number.isInteger(file.mode) ? file.mode & 0o777 : 0o644;
    return { target, mode, content: Buffer.from(file.content, 'base64') };
  });
  for (const { target, mode, content } of planned) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode });
    fs.chmodSync(target, mode); // writeFileSync's mode is filtered by the umask
  }
  return planned.length;
}

/**
 * Copies the run-context library to <work>/node_modules/@amlsim/run so both
 * `require('@amlsim/run')` and `import … from '@amlsim/run'` resolve from any script in the
 * snapshot (Node looks up node_modules from the script's directory upwards).
 */
function installRunModule(workDir) {
  const target = path.join(workDir, 'node_modules', '@amlsim', 'run');
  fs.mkdirSync(target, { recursive: true });
  for (const entry of fs.readdirSync(RUN_MODULE_DIR, { withFileTypes: true })) {
    if (entry.isFile()) fs.copyFileSync(path.join(RUN_MODULE_DIR, entry.name), path.join(target, entry.name));
  }
}

/**
 * S8.3 step 1 on the process driver: the run's environment, installed with npm on the host in
 * AMLSIM_ENVIRONMENT_DIR, is linked package by package into <work>/node_modules, where
 * require() and import find it (in a container the packages are in the image's /node_modules).
 */
function linkEnvironment(workDir) {
  const dir = process.env.AMLSIM_ENVIRONMENT_DIR;
  if (!dir) return 0;
  const source = path.join(dir, 'node_modules');
  const target = path.join(workDir, 'node_modules');
  let linked = 0;
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || !entry.isDirectory()) continue;
    const names = entry.name.startsWith('@') ? fs.readdirSync(path.join(source, entry.name)).map((n) => `${entry.name}/${n}`) : [entry.name];
    for (const name of names) {
      if (name === '@amlsim/run') continue; // the run-context library is the platform's
      fs.mkdirSync(path.dirname(path.join(target, name)), { recursive: true });
      fs.rmSync(path.join(target, name), { recursive: true, force: true });
      fs.symlinkSync(path.join(source, name), path.join(target, name), 'dir');
      linked++;
    }
  }
  return linked;
}

/** A fresh, empty metrics file (a snapshot must not smuggle in rows of its own). */
function prepareMetricsFile(workDir) {
  const dir = path.join(workDir, '.amlsim');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), '');
}

/**
 * The script's environment (S8.3 step 3): ours, then the user's `env`, then the platform's
 * AZUREML_* / AMLSIM_* variables again so the user cannot override the run's identity, then
 * where the run context writes metrics.
 */
function scriptEnv(userEnv, metricsFile) {
  const env = { ...process.env };
  for (const [key, value] of Object.entries(userEnv)) {
    if (value !== undefined && value !== null) env[key] = String(value);
  }
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('AZUREML_') || key.startsWith('AMLSIM_')) env[key] = value;
  }
  env.AMLSIM_METRICS_FILE = metricsFile;
  return env;
}

// ---------------------------------------------------------------------------------------------
// Step 3: run the script (S8.3 step 4), heartbeating, honouring cancellation
// ---------------------------------------------------------------------------------------------

/** The last `limit` bytes of a stream, decoded as UTF-8 without a broken leading character. */
class Tail {
  constructor(limit) {
    this.limit = limit;
    this.chunks = [];
    this.size = 0;
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    // Drop whole chunks that lie entirely before the last `limit` bytes.
    while (this.chunks.length > 1 && this.size - this.chunks[0].length >= this.limit) {
      this.size -= this.chunks.shift().length;
    }
  }

  text() {
    let bytes = Buffer.concat(this.chunks);
    if (bytes.length > this.limit) bytes = bytes.subarray(bytes.length - this.limit);
    let start = 0;
    while (start < bytes.length && start < 4 && (bytes[start] & 0xc0) === 0x80) start++; // continuation bytes
    const text = bytes.subarray(start).toString('utf8');
    // Invalid bytes decode to U+FFFD (3 bytes each): drop leading characters until it fits again.
    let excess = Buffer.byteLength(text) - this.limit;
    let cut = 0;
    while (excess > 0) {
      const width = text.codePointAt(cut) > 0xffff ? 2 : 1;
      excess -= Buffer.byteLength(text.slice(cut, cut + width));
      cut += width;
    }
    return text.slice(cut);
  }
}

/**
 * Heartbeats every `intervalMs` (the first one at once, so a cancel requested while preparing
 * is seen immediately) until stopped. `onCancel` is called once when the platform answers
 * cancelRequested. A failed heartbeat is logged and does not stop the run: the platform
 * decides liveness, and a refused write-back later ends the run with the reason.
 */
function startHeartbeat(client, intervalMs, onCancel, { unref = false } = {}) {
  let stopped = false;
  let timer;
  let inFlight = Promise.resolve();
  const beat = () => {
    inFlight = client.heartbeat().then(
      (answer) => {
        if (!stopped && answer && answer.cancelRequested === true) {
          stopped = true;
          onCancel();
        }
      },
      (err) => step(`heartbeat failed (ignored): ${err.code}: ${err.message}`),
    ).then(() => {
      if (!stopped) {
        timer = setTimeout(beat, intervalMs);
        // On the script's own thread the timer must not keep the process alive: the script's
        // end is its event loop running dry.
        if (unref) timer.unref();
      }
    });
  };
  beat();
  const first = inFlight;
  const stop = async function stop() {
    stopped = true;
    clearTimeout(timer);
    await inFlight; // so no heartbeat lands after the run's later calls
  };
  /** Settles once the first heartbeat was answered (or failed). */
  stop.first = first;
  return stop;
}

const SIGNAL_NUMBERS = os.constants.signals;

/** 128 + the signal number, as a shell reports a process killed by a signal. */
function exitCodeOf(code, signal) {
  if (code !== null && code !== undefined) return code;
  const number = signal ? SIGNAL_NUMBERS[signal] : undefined;
  return number ? 128 + number : 1;
}

/**
 * Runs `node <script> <args…>` in the work dir. Output is forwarded to our own stdout/stderr
 * (so `docker logs` shows it) and its tails kept for POST /logs.
 */
function runScript({ client, workDir, scriptPath, args, env, heartbeatMs }) {
  const { spawn } = require('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [scriptPath, ...args], {
      cwd: workDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout = new Tail(LOG_TAIL_BYTES);
    const stderr = new Tail(LOG_TAIL_BYTES);
    child.stdout.on('data', (c) => { stdout.push(c); process.stdout.write(c); });
    child.stderr.on('data', (c) => { stderr.push(c); process.stderr.write(c); });

    let killTimer;
    let canceled = false;
    const terminate = (why) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      step(`${why}: stopping the script (SIGTERM, SIGKILL after ${KILL_GRACE_MS} ms)`);
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    const stopHeartbeat = startHeartbeat(client, heartbeatMs, () => {
      canceled = true;
      terminate('cancel requested');
    });
    // `docker stop` sends SIGTERM to us (PID 1): pass it on and still report the run's end.
    const onSignal = (signal) => terminate(`received ${signal}`);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    const cleanup = () => {
      clearTimeout(killTimer);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    // spawn failing (e.g. EACCES on the node binary) emits 'error' and no 'exit'.
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // a kill() failure of a live child: 'exit' still follows
      cleanup();
      stopHeartbeat().then(() => reject(new ManagementError('ScriptStartFailed', `could not start node: ${err.message}`)));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      // 'close' follows once the pipes are drained; don't wait forever if a grandchild holds them.
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(drainTimer);
        stopHeartbeat().then(() => resolve({
          exitCode: exitCodeOf(code, signal), signal, canceled, stdout: stdout.text(), stderr: stderr.text(),
        }));
      };
      const drainTimer = setTimeout(finish, PIPE_DRAIN_MS);
      child.once('close', finish);
    });
  });
}

/** The thread that will run the script (script-host.cjs), beside this file. */
const SCRIPT_HOST = path.join(__dirname, 'script-host.cjs');

/**
 * Starts the thread the script will run in — the way SDK v1's control script runs the user's
 * script in its own interpreter (the context-manager injector) rather than as a new process,
 * and a node start cheaper. It is started before the code is downloaded, so its start overlaps
 * the calls to the platform; `run` then names the script to it. The script keeps its own
 * module realm, argv, env and event loop; `process.exit(n)` ends the thread with n; an uncaught
 * error is printed to its stderr and ends it with 1; a cancel terminates it and is reported as
 * SIGTERM (143). AMLSIM_SCRIPT_ISOLATION=process runs it as a child process instead.
 */
function startScriptHost({ args, env }) {
  const stdout = new Tail(LOG_TAIL_BYTES);
  const stderr = new Tail(LOG_TAIL_BYTES);
  let worker;
  let startError;
  try {
    const { Worker } = require('node:worker_threads');
    worker = new Worker(SCRIPT_HOST, { argv: args, env, stdout: true, stderr: true });
    worker.stdout.on('data', (c) => { stdout.push(c); process.stdout.write(c); });
    worker.stderr.on('data', (c) => { stderr.push(c); process.stderr.write(c); });
    // An uncaught error ends the worker; print it where a process would have (its stderr).
    worker.on('error', (err) => {
      const text = `${err && err.stack ? err.stack : String(err)}\n`;
      stderr.push(Buffer.from(text));
      process.stderr.write(text);
    });
  } catch (err) {
    startError = new ManagementError('ScriptStartFailed', `could not start the script: ${err.message}`);
  }
  const exited = worker ? new Promise((resolve) => worker.once('exit', resolve)) : Promise.resolve(1);

  /** Runs the script in the thread, in `workDir`, heartbeating; resolves with how it ended. */
  function run({ client, workDir, scriptPath, heartbeatMs }) {
    if (startError) return Promise.reject(startError);
    // Workers share the process's working directory: the script runs in the work dir.
    process.chdir(workDir);
    let canceled = false;
    let terminatedBy;
    const terminate = (why, signal) => {
      if (terminatedBy) return;
      terminatedBy = signal;
      step(`${why}: stopping the script`);
      void worker.terminate();
    };
    const stopHeartbeat = startHeartbeat(client, heartbeatMs, () => {
      canceled = true;
      terminate('cancel requested', 'SIGTERM');
    });
    const onSignal = (signal) => terminate(`received ${signal}`, signal);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    worker.postMessage({ script: scriptPath });
    return exited.then((code) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      const exitCode = terminatedBy ? exitCodeOf(null, terminatedBy) : code;
      // The worker's stdio streams end on their own; let their last chunks arrive.
      return new Promise((resolve) =>
        setImmediate(() =>
          stopHeartbeat().then(() =>
            resolve({ exitCode, signal: terminatedBy ?? null, canceled, stdout: stdout.text(), stderr: stderr.text() }),
          ),
        ),
      );
    });
  }

  /** The run ends without its script (the code could not be downloaded): the thread goes. */
  function discard() {
    if (worker) void worker.terminate();
  }

  return { run, discard };
}

/**
 * Runs the script on this very thread (AMLSIM_SCRIPT_HOST=main). The platform asks for it on
 * managed compute, where it watches the container itself (engine liveness: a run whose
 * heartbeats fall silent is NotResponding only if the engine says the container is frozen or
 * gone, packages/platform/src/training/run-manager.ts `heartbeatLost`), so heartbeats need not
 * get through a long synchronous training loop. No second Node environment is started: a run
 * costs one Node start, as a container running `node script.js` does.
 *
 * The script is run as Node runs a main module (Module.runMain: `require.main === module`,
 * argv, ES modules and CommonJS alike), in the work dir, with the run's environment. Its end is
 * seen as Node sees a process end:
 * - its event loop runs dry ('beforeExit'): `process.exitCode`, or 0;
 * - it calls `process.exit(n)`: nothing after that call may run, and the write-back cannot wait
 *   for an event loop the script's stack still holds, so it is carried out there and then,
 *   synchronously, by a short-lived process of this same code (`--finish`, given what it needs
 *   on its stdin), and the process exits with n — one Node start more, on that path only;
 * - an uncaught error or unhandled rejection: printed to stderr, exit 1;
 * - a cancel (the heartbeat's answer) or SIGTERM/SIGINT: 143/130, the script abandoned where it
 *   was (a CPU-bound one that never yields is killed by the platform after its grace period).
 * Its output goes to our stdout/stderr (`docker logs`) and into the log tails as it is written.
 */
function runOnMainThread({ client, connection, workDir, metricsFile, scriptPath, args, env, heartbeatMs }) {
  return new Promise((resolve) => {
    const stdout = new Tail(LOG_TAIL_BYTES);
    const stderr = new Tail(LOG_TAIL_BYTES);
    const original = { out: process.stdout.write, err: process.stderr.write, exit: process.exit };
    const tee = (stream, tail, write) =>
      function write_(chunk, encoding, cb) {
        tail.push(typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk));
        return write.call(stream, chunk, encoding, cb);
      };
    let ended = false;
    let canceled = false;
    const outcome = (exitCode, signal) => ({ exitCode, signal: signal ?? null, canceled, stdout: stdout.text(), stderr: stderr.text() });
    const release = () => {
      ended = true;
      process.stdout.write = original.out;
      process.stderr.write = original.err;
      process.exit = original.exit;
      process.off('beforeExit', onDry);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    const end = (exitCode, signal) => {
      if (ended) return;
      release();
      stopHeartbeat().then(() => resolve(outcome(exitCode, signal)));
    };
    const onDry = () => end(typeof process.exitCode === 'number' ? process.exitCode : 0);
    const onSignal = (signal) => {
      step(`received ${signal}: stopping the script`);
      end(exitCodeOf(null, signal), signal);
    };
    // Stays after the end: a canceled script's leftover work must not crash the write-back.
    const onError = (err) => {
      const text = `${err && err.stack ? err.stack : String(err)}\n`;
      if (ended) return void original.err.call(process.stderr, `[amlsim] after the script's end (ignored): ${text}`);
      process.stderr.write(text);
      end(1);
    };
    const stopHeartbeat = startHeartbeat(client, heartbeatMs, () => {
      canceled = true;
      step('cancel requested: stopping the script');
      end(exitCodeOf(null, 'SIGTERM'), 'SIGTERM');
    }, { unref: true });

    process.stdout.write = tee(process.stdout, stdout, original.out);
    process.stderr.write = tee(process.stderr, stderr, original.err);
    process.on('beforeExit', onDry);
    process.on('uncaughtException', onError);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.exit = function exit(code) {
      const exitCode = code === undefined || code === null ? (typeof process.exitCode === 'number' ? process.exitCode : 0) : Number(code) | 0;
      if (ended) return original.exit.call(process, exitCode);
      release();
      void stopHeartbeat();
      const { spawnSync } = require('node:child_process');
      const finished = spawnSync(process.execPath, [__filename, '--finish'], {
        input: JSON.stringify({ connection, workDir, metricsFile, result: outcome(exitCode, null) }),
        stdio: ['pipe', 'inherit', 'inherit'],
        cwd: workDir,
      });
      // The write-back failing is the run failing, as it is on the other paths (`main`).
      return original.exit.call(process, finished.status === 0 ? exitCode : 1);
    };

    Object.assign(process.env, env);
    process.chdir(workDir);
    process.argv = [process.argv[0], scriptPath, ...args];
    // The first heartbeat is answered before the script starts: a cancel asked for while the
    // run prepared stops it before it runs, and a script that exits at once still beat once.
    stopHeartbeat.first.then(() => {
      if (ended) return;
      try {
        require('node:module').runMain(scriptPath);
      } catch (err) {
        onError(err);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Step 4: write back (S8.4)
// ---------------------------------------------------------------------------------------------

/** The MetricRows the run context appended; unreadable lines are skipped with a note. */
function readMetrics(metricsFile) {
  let text;
  try {
    text = fs.readFileSync(metricsFile, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
  const rows = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      rows.push(JSON.parse(line));
    } catch {
      step(`metrics line ${i + 1} is not JSON (skipped)`);
    }
  });
  return rows;
}

async function writeBackMetrics(client, metricsFile) {
  const rows = readMetrics(metricsFile);
  let batch = 0;
  for (let i = 0; i < rows.length; i += METRICS_BATCH_SIZE) {
    batch += 1;
    const slice = rows.slice(i, i + METRICS_BATCH_SIZE);
    step(`POST /metrics batch ${batch} (${slice.length} rows)`);
    await client.metrics(batch, slice);
  }
  return { rows: rows.length, batches: batch };
}

/** Regular files below `dir`, as paths relative to it with '/' separators (symlinks skipped). */
function listFiles(dir, prefix = '') {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
    throw err;
  }
  const files = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...listFiles(path.join(dir, entry.name), rel));
    else if (entry.isFile()) files.push(rel);
    else step(`outputs/${rel} is not a regular file (skipped)`);
  }
  return files;
}

async function uploadOutputs(client, workDir) {
  const outputsDir = path.join(workDir, 'outputs');
  const files = listFiles(outputsDir);
  for (const rel of files) {
    step(`PUT /outputs ${rel}`);
    await client.output(rel, fs.readFileSync(path.join(outputsDir, ...rel.split('/'))));
  }
  return files.length;
}

// ---------------------------------------------------------------------------------------------
// The whole run
// ---------------------------------------------------------------------------------------------

async function manage(client, connection, config) {
  const { workDir, script, args, userEnv, heartbeatMs } = config;
  // Where the run context writes metrics: fixed by the work dir, so the script's environment
  // is known before the code is there, and its thread can start now.
  const metricsFile = path.join(workDir, '.amlsim', 'metrics.jsonl');
  const env = scriptEnv(userEnv, metricsFile);
  // Where the script runs: on this thread (managed compute, `runOnMainThread`), in a thread of
  // its own started now (`startScriptHost`, the default), or as a child process.
  const onMainThread = process.env.AMLSIM_SCRIPT_HOST === 'main' && process.env.AMLSIM_SCRIPT_ISOLATION !== 'process';
  const host = onMainThread || process.env.AMLSIM_SCRIPT_ISOLATION === 'process' ? undefined : startScriptHost({ args, env });
  try {
    // S8.3 step 1: prepare the environment.
    step('POST /status Preparing');
    await client.status('Preparing');
    fs.mkdirSync(workDir, { recursive: true });

    // S8.3 step 2: download the code.
    step('GET /snapshot');
    const snapshot = await client.getSnapshot();
    const count = writeSnapshot(workDir, snapshot);
    step(`wrote snapshot ${snapshot.snapshotId ?? '?'} (${count} files) to ${workDir}`);

    // S8.3 step 3: configuration and variables.
    installRunModule(workDir);
    step('installed @amlsim/run');
    const linked = linkEnvironment(workDir);
    if (linked) step(`linked ${linked} packages of the run's environment`);
    const scriptPath = insideDir(workDir, script, 'AMLSIM_SCRIPT');
    prepareMetricsFile(workDir);

    // S8.3 step 4: run the user's script.
    step('POST /status Running');
    await client.status('Running');
    step(`running node ${script}${args.length ? ` ${args.join(' ')}` : ''}`);
    const result = onMainThread
      ? await runOnMainThread({ client, connection, workDir, metricsFile, scriptPath, args, env, heartbeatMs })
      : host
        ? await host.run({ client, workDir, scriptPath, heartbeatMs })
        : await runScript({ client, workDir, scriptPath, args, env, heartbeatMs });
    return await writeBack(client, workDir, metricsFile, result);
  } catch (err) {
    host?.discard();
    throw err;
  }
}

/** S8.4: the compute target writes the run's results back, then reports its end. */
async function writeBack(client, workDir, metricsFile, result) {
  step(`script exited with ${result.exitCode}${result.signal ? ` (${result.signal})` : ''}${result.canceled ? ' after cancel' : ''}`);
  step('POST /logs');
  await client.logs(result.stdout, result.stderr);
  if (result.exitCode === 0) {
    step('POST /status Finalizing');
    await client.status('Finalizing');
    const metrics = await writeBackMetrics(client, metricsFile);
    step(`wrote back ${metrics.rows} metric rows in ${metrics.batches} batches`);
    const outputs = await uploadOutputs(client, workDir);
    step(`uploaded ${outputs} output files`);
  }
  const missing = result.exitCode !== 0 && !result.canceled ? missingModuleError(result.stderr) : undefined;
  step(`POST /complete exitCode=${result.exitCode}${missing ? ' (ModuleNotFoundError)' : ''}`);
  await client.complete(result.exitCode, missing);
  return result.exitCode;
}

/**
 * Where the run's environment is listed: in the image (packages/platform/src/compute/docker-driver.ts
 * prepareImage), or beside its packages on the host (the process driver, compute/environments.ts).
 */
const ENVIRONMENT_FILE = process.env.AMLSIM_ENVIRONMENT_DIR ? path.join(process.env.AMLSIM_ENVIRONMENT_DIR, 'environment.json') : '/amlsim/environment/dependencies.json';

/**
 * S8.3 step 1: a script that failed because it requires a package its environment does not
 * have gets the platform's kind of user error (SDK v1: "ModuleNotFoundError: No module named
 * 'x'"), naming the package and what to do, instead of a stack trace's tail. Found in what the
 * script wrote to stderr: Node's "Cannot find module 'x'" (require) or "Cannot find package
 * 'x' imported from …" (import), for a bare specifier (not a relative or absolute path).
 */
function missingModuleError(stderr) {
  const found = [...String(stderr).matchAll(/Cannot find (?:module|package) '([^']+)'/g)].map((m) => m[1]).filter((s) => !/^(\.|\/|node:|file:)/.test(s));
  const specifier = found[found.length - 1];
  if (!specifier) return undefined;
  const parts = specifier.split('/');
  const pkg = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  let declared = [];
  try {
    const listed = JSON.parse(fs.readFileSync(ENVIRONMENT_FILE, 'utf8'));
    declared = listed.dependencies || listed.specs || [];
  } catch {
    declared = [];
  }
  const has = declared.length ? `its dependencies are ${declared.join(', ')}` : 'it declares no dependencies';
  return `ModuleNotFoundError: No module named '${pkg}': the script requires the npm package '${pkg}', which is not in the run's environment (${has}); add it to the run's environment dependencies (submitRun environment: { dependencies: [${pkg}@<version>] })`;
}

/** A run that cannot go on: tell the platform why, if it can still be reached, and exit 1. */
async function fail(client, err) {
  const code = err instanceof ManagementError ? err.code : err && err.code ? String(err.code) : 'ManagementFailed';
  const reason = `${code}: ${err && err.message ? err.message : String(err)}`;
  // Its refusal changes nothing here.
  if (client) {
    step(`POST /complete exitCode=1 (${code})`);
    await client.complete(1, reason).catch((e) => step(`POST /complete failed too: ${e.code}: ${e.message}`));
  }
  process.stderr.write(`amlsim management: ${reason}\n`);
  process.exit(1);
}

async function main() {
  let client;
  try {
    const connection = readConnection(process.env);
    client = createClient(connection);
    const exitCode = await manage(client, connection, readRunConfig(process.env));
    step(`done (exit ${exitCode})`);
    process.exit(exitCode);
  } catch (err) {
    await fail(client, err);
  }
}

/** `--finish`: the write-back of a script that called process.exit (`runOnMainThread`), from stdin. */
async function finish() {
  let client;
  try {
    const { connection, workDir, metricsFile, result } = JSON.parse(fs.readFileSync(0, 'utf8'));
    client = createClient(connection);
    await writeBack(client, workDir, metricsFile, result);
    process.exit(0);
  } catch (err) {
    await fail(client, err);
  }
}

if (process.argv[2] === '--finish') void finish();
else void main();
