/**
 * amlsim scoring server — the command of a web-service replica (S8.5: "the web service is
 * deployed on a compute target (ACI or AKS) from that image"). The replica's container has no
 * network: it listens on a unix socket, and the platform's scoring gateway forwards each
 * authenticated request (S1.4) to it and records it for App Insights (S7.3).
 *
 * Environment:
 *   AMLSIM_SCORING_SCRIPT   path of the scoring script (absolute; a relative one is resolved
 *                           against the working directory)
 *   AMLSIM_SCORING_SOCKET   unix socket to listen on; a stale socket there is replaced; the
 *                           socket is made 0666 so the gateway (another uid) can connect
 *   AZUREML_MODEL_DIR       where init() finds the model (read by the script, not by us)
 *   AMLSIM_SCORING_PORT     optional (S3.1): also listen on 127.0.0.1:<port>. Only a replica in a
 *                           virtual network gets one: its loopback is the VNet's namespace, so
 *                           the VNet's other members reach it there, and nothing else can
 *   AMLSIM_SCORING_MAX_BODY_BYTES  optional request body limit, default 10 MiB
 *
 * HTTP/1.1, keep-alive:
 *   GET /        liveness: 200 {"status":"Healthy"} once init() finished, 503 before
 *                ({"status":"Initializing"}) and while stopping ({"status":"Stopping"})
 *   POST /score  JSON body -> run(input) -> 200 JSON. Errors are `{ error: { code, message } }`:
 *                400 BadRequest (not JSON), 413 PayloadTooLarge, 500 ScoringError (run threw:
 *                its message; or its value is not JSON), 503 ServiceUnavailable (initializing)
 *   anything else: 404 NotFound / 405 MethodNotAllowed
 * A request's id is taken from x-ms-request-id (or x-request-id) when the gateway sends one,
 * else generated, and is echoed as x-ms-request-id.
 *
 * Startup: listen, then load the script and await init(). A script that fails to load or an
 * init() that throws ends the process with exit code 1; the last line of stderr is then
 * `amlsim scoring: <code>: <message>` (the reason the platform reports).
 * stdout: one line per request (time, method, path, status, duration, request id) — never
 * a request or response body, which may hold personal data. stderr: our steps, errors.
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit 0.
 *
 * Plain JavaScript, Node built-ins only: it runs in FROM-scratch images (node + busybox) as
 * uid 1000.
 */

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { ScoringError, fail, loadScoringScript, messageOf, oneLine, stackOf } from './load.mjs';

const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Idle keep-alive connections are kept this long; the gateway's pool should drop them sooner. */
const KEEP_ALIVE_MS = 60_000;
/** After SIGTERM, in-flight requests get this long before the process exits anyway (code 1). */
const SHUTDOWN_GRACE_MS = 30_000;

function step(text) {
  process.stderr.write(`[amlsim scoring] ${text}\n`);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

function readConfig(env) {
  const script = env.AMLSIM_SCORING_SCRIPT;
  if (!script) throw new ScoringError('InvalidConfiguration', 'environment variable AMLSIM_SCORING_SCRIPT is not set');
  const socketPath = env.AMLSIM_SCORING_SOCKET;
  if (!socketPath) throw new ScoringError('InvalidConfiguration', 'environment variable AMLSIM_SCORING_SOCKET is not set');
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  if (env.AMLSIM_SCORING_MAX_BODY_BYTES) {
    maxBodyBytes = Number(env.AMLSIM_SCORING_MAX_BODY_BYTES);
    if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
      throw new ScoringError('InvalidConfiguration', 'AMLSIM_SCORING_MAX_BODY_BYTES must be a positive integer');
    }
  }
  let port;
  if (env.AMLSIM_SCORING_PORT) {
    port = Number(env.AMLSIM_SCORING_PORT);
    if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new ScoringError('InvalidConfiguration', 'AMLSIM_SCORING_PORT must be a port number (1-65535)');
  }
  return { script, socketPath, maxBodyBytes, port };
}

/** Removes a socket left by an earlier replica process (a restart); anything else is an error. */
function clearStaleSocket(socketPath) {
  let stat;
  try {
    stat = fs.lstatSync(socketPath);
  } catch (err) {
    if (err.code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) {
    throw new ScoringError('InvalidConfiguration', `AMLSIM_SCORING_SOCKET ${socketPath} exists and is not a socket`);
  }
  fs.unlinkSync(socketPath);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(req) {
  for (const name of ['x-ms-request-id', 'x-request-id']) {
    const value = req.headers[name];
    if (typeof value === 'string' && REQUEST_ID.test(value)) return value;
  }
  return randomUUID();
}

/** The path for the log line: no query string (it may carry data), no control characters, bounded. */
function logPath(url) {
  const pathname = String(url ?? '').split('?')[0];
  const clean = pathname.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean || '/';
}

function createScoringServer({ maxBodyBytes, state, script }) {
  /** Requests being handled; SIGTERM waits for them. */
  let inFlight = 0;

  function send(req, res, status, body, headers = {}) {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const head = { ...headers };
    if (payload) {
      head['content-type'] = 'application/json; charset=utf-8';
      head['content-length'] = String(payload.length);
    }
    // Once stopping, no connection stays open for another request.
    if (state.stopping) head.connection = 'close';
    res.writeHead(status, head);
    res.end(req.method === 'HEAD' ? undefined : payload);
  }

  function sendError(req, res, status, code, message, headers) {
    send(req, res, status, { error: { code, message } }, headers);
  }

  /**
   * The body as a Buffer, or undefined when it was too large (413 already sent; the rest of
   * the body is discarded and the connection closed after the answer).
   */
  function readBody(req, res) {
    return new Promise((resolve, reject) => {
      const tooLarge = () => {
        req.removeAllListeners('data');
        req.resume();
        sendError(req, res, 413, 'PayloadTooLarge', `the request body exceeds ${maxBodyBytes} bytes`, { connection: 'close' });
        resolve(undefined);
      };
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBodyBytes) return tooLarge();
      const chunks = [];
      let size = 0;
      req.on('data', (chunk) => {
        size += chunk.length;
        if (size > maxBodyBytes) return tooLarge();
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  async function score(req, res) {
    // A request that reaches us while stopping (on an open keep-alive connection) is still
    // served once the script is ready; its answer closes the connection.
    if (!state.ready) {
      const message = state.stopping ? 'the replica is stopping' : 'the scoring script is still initializing';
      return sendError(req, res, 503, 'ServiceUnavailable', message, { 'retry-after': '1' });
    }
    const body = await readBody(req, res);
    if (body === undefined) return;
    let text = body.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') return sendError(req, res, 400, 'BadRequest', 'the request body is empty; send a JSON document');
    let input;
    try {
      input = JSON.parse(text);
    } catch (err) {
      return sendError(req, res, 400, 'BadRequest', `the request body is not valid JSON: ${messageOf(err)}`);
    }

    let result;
    try {
      result = await script.run(input);
    } catch (err) {
      step(`run() failed: ${stackOf(err)}`);
      return sendError(req, res, 500, 'ScoringError', messageOf(err));
    }
    let json;
    try {
      json = JSON.stringify(result);
    } catch (err) {
      return sendError(req, res, 500, 'ScoringError', `run() returned a value that is not JSON-serializable: ${messageOf(err)}`);
    }
    if (json === undefined) {
      return sendError(req, res, 500, 'ScoringError', `run() returned ${result === undefined ? 'undefined' : typeof result}, which is not JSON-serializable`);
    }
    send(req, res, 200, json);
  }

  function liveness(req, res) {
    if (state.stopping) return send(req, res, 503, { status: 'Stopping' });
    if (state.ready) return send(req, res, 200, { status: 'Healthy' });
    send(req, res, 503, { status: 'Initializing' });
  }

  async function handle(req, res) {
    const pathname = String(req.url ?? '').split('?')[0];
    if (pathname === '/') {
      if (req.method === 'GET' || req.method === 'HEAD') return liveness(req, res);
      return sendError(req, res, 405, 'MethodNotAllowed', `${req.method} is not allowed on /`, { allow: 'GET, HEAD' });
    }
    if (pathname === '/score') {
      if (req.method === 'POST') return score(req, res);
      return sendError(req, res, 405, 'MethodNotAllowed', `${req.method} is not allowed on /score`, { allow: 'POST' });
    }
    sendError(req, res, 404, 'NotFound', `no route ${logPath(pathname)}; use POST /score`);
  }

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    res.setHeader('x-ms-request-id', requestId);
    inFlight += 1;
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      inFlight -= 1;
      const ms = (performance.now() - started).toFixed(1);
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      // One line per request; never a body (it may hold personal data).
      process.stdout.write(`[amlsim scoring] ${new Date().toISOString()} ${req.method} ${logPath(req.url)} ${status} ${ms}ms ${requestId}\n`);
      if (state.stopping) state.onIdle();
    };
    res.once('finish', done);
    res.once('close', done);
    handle(req, res).catch((err) => {
      step(`request failed: ${stackOf(err)}`);
      if (!res.headersSent) sendError(req, res, 500, 'InternalServerError', oneLine(messageOf(err)));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 1_000;
  return { server, inFlight: () => inFlight };
}

// ---------------------------------------------------------------------------------------------
// The replica
// ---------------------------------------------------------------------------------------------

function listen(server, socketPath, port) {
  const where = port === undefined ? socketPath : `127.0.0.1:${port}`;
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new ScoringError('ListenFailed', `cannot listen on ${where}: ${err.message}`)));
    const onListening = () => {
      server.removeAllListeners('error');
      server.on('error', (err) => step(`server error: ${err.message}`));
      resolve();
    };
    // Loopback only, whatever the namespace holds (docs/architecture.md "Network").
    if (port === undefined) server.listen(socketPath, onListening);
    else server.listen(port, '127.0.0.1', onListening);
  });
}

async function main() {
  const config = readConfig(process.env);
  /** ready: init() finished; stopping: SIGTERM received (`onIdle` is called as requests end). */
  const state = { ready: false, stopping: false, onIdle: () => {} };
  /** Set once loaded; /score is only served when ready, so it is never used before. */
  const script = { run: () => { throw new Error('not initialized'); } };
  const { server, inFlight } = createScoringServer({ maxBodyBytes: config.maxBodyBytes, state, script });
  // S3.1: the same routes on a loopback port of the VNet (the same handler, the same state).
  const tcp = config.port === undefined ? undefined : http.createServer(server.listeners('request')[0]);
  if (tcp) {
    tcp.keepAliveTimeout = server.keepAliveTimeout;
    tcp.headersTimeout = server.headersTimeout;
  }
  const servers = tcp ? [server, tcp] : [server];

  const stop = (signal) => {
    if (state.stopping) return;
    state.stopping = true;
    step(`received ${signal}: no new connections; finishing ${inFlight()} in-flight request(s)`);
    for (const s of servers) {
      s.close();
      s.closeIdleConnections();
    }
    const timer = setTimeout(() => {
      step(`${inFlight()} request(s) still running after ${SHUTDOWN_GRACE_MS} ms: exiting`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    state.onIdle = () => {
      // Keep-alive connections that just answered are closed (connection: close was sent).
      for (const s of servers) s.closeIdleConnections();
      if (inFlight() === 0) {
        step('stopped');
        process.exit(0);
      }
    };
    state.onIdle();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  clearStaleSocket(config.socketPath);
  await listen(server, config.socketPath);
  // The gateway runs as another user than the replica (uid 1000).
  fs.chmodSync(config.socketPath, 0o666);
  if (tcp) await listen(tcp, config.socketPath, config.port);
  step(`listening on ${config.socketPath}${tcp ? ` and 127.0.0.1:${config.port}` : ''}; loading ${config.script}`);

  const loaded = await loadScoringScript(config.script);
  step(`loaded ${loaded.path} (exports ${loaded.exports.join(', ')})`);
  if (loaded.init) {
    const started = performance.now();
    try {
      await loaded.init();
    } catch (err) {
      throw new ScoringError('ScoringInitFailed', `init() failed: ${oneLine(messageOf(err))}`, stackOf(err));
    }
    step(`init() finished in ${(performance.now() - started).toFixed(0)} ms`);
  }
  script.run = loaded.run;
  state.ready = true;
  if (!state.stopping) step('Healthy: serving POST /score');
}

main().catch((err) => fail(err, 1));
