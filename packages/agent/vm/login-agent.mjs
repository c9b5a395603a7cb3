/**
 * amlsim VM login agent — the "sshd" of a simulated user-owned VM (S8.3 unmanaged compute,
 * S6.2). The VM is a long-lived container (or, with the process driver, a child process);
 * this agent is its only door: HTTP/1.1 over a unix socket in a directory the host mounted.
 *
 *   GET  /health                       { ok, username, passwordLogin }
 *   POST /password-login               { username, password, publicKey } -> 200 { fingerprint } | 401
 *        the admin password (checked against a salted scrypt hash; the plaintext was never
 *        given to the VM) authorizes one public key: it is appended to authorized_keys.
 *   POST /challenge                    -> { nonce } (single use, 60 s)
 *   POST /exec                         { username, publicKey, nonce, signature, command, env } -> { pid } | 401
 *        the ed25519 signature over the nonce must verify with a key in authorized_keys;
 *        command 'management' starts the management code with `env` (the run token etc.).
 *   GET  /exec/<pid>                   long poll: { pid, exitCode, signal } once it exited
 *   GET  /runs/<runId>/exec            { runId, processes: [{ pid, running, exitCode, signal }] }: the
 *        management code started for that run (AZUREML_RUN_ID), oldest first
 *   POST /exec/<pid>/kill              { username, publicKey, nonce, signature } -> { ok }
 *        SIGKILL to the management code and everything it started (its own process group).
 *
 * Environment: AMLSIM_VM_SOCKET (the socket path), AMLSIM_VM_USER (admin user, default
 * azureuser), AMLSIM_VM_PASSWORD_HASH (`scrypt$<salt b64>$<hash b64>`; absent: no password
 * login), AMLSIM_VM_HOME (where .ssh/authorized_keys lives; default the user's home).
 *
 * The management code outlives the platform's connection: it is the agent's child, not the
 * caller's, and a connection that drops (the simulator killed mid long poll) changes nothing
 * for it. Its exit is kept, so a platform that comes back — a resumed session taking the VM
 * back (packages/platform/src/training/virtual-machines.ts `reattach`) — asks `GET /exec/<pid>`
 * again and gets the exit at once if it came meanwhile; `GET /runs/<runId>/exec` finds a start
 * the dead simulator made and never recorded.
 *
 * Plain JavaScript, Node built-ins only: it runs FROM scratch images holding just node.
 */

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NONCE_TTL_MS = 60_000;
const MAX_BODY = 1024 * 1024;

const SOCKET = process.env.AMLSIM_VM_SOCKET;
if (!SOCKET) {
  process.stderr.write('login agent: AMLSIM_VM_SOCKET is not set\n');
  process.exit(2);
}
const USERNAME = process.env.AMLSIM_VM_USER || 'azureuser';
const PASSWORD_HASH = process.env.AMLSIM_VM_PASSWORD_HASH || '';
const HOME = process.env.AMLSIM_VM_HOME || os.homedir();
const AUTHORIZED_KEYS = path.join(HOME, '.ssh', 'authorized_keys');
const MANAGEMENT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'management', 'management.cjs');
// Nothing the agent starts inherits the password hash.
delete process.env.AMLSIM_VM_PASSWORD_HASH;

/** nonce -> expiry (ms) */
const nonces = new Map();
/** pid -> { child, runId, exit: Promise<{ exitCode, signal }>, ended?: { exitCode, signal } } (kept after the exit) */
const processes = new Map();

function log(text) {
  process.stderr.write(`[vm-login] ${text}\n`);
}

class Refusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- passwords and keys ----------------------------------------------------------------------

function passwordMatches(password) {
  const [scheme, salt, hash] = PASSWORD_HASH.split('$');
  if (scheme !== 'scrypt' || !salt || !hash || typeof password !== 'string') return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length);
  return crypto.timingSafeEqual(actual, expected);
}

/** An OpenSSH public key line `ssh-ed25519 <base64 wire blob> [comment]`, checked and loaded. */
function parsePublicKey(line) {
  const [type, blob] = String(line ?? '').trim().split(/\s+/);
  const bytes = Buffer.from(blob ?? '', 'base64');
  const field = (offset) => {
    if (offset + 4 > bytes.length) return [Buffer.alloc(0), bytes.length];
    const length = bytes.readUInt32BE(offset);
    return [bytes.subarray(offset + 4, offset + 4 + length), offset + 4 + length];
  };
  const [name, next] = field(0);
  const [raw] = field(next);
  if (type !== 'ssh-ed25519' || name.toString() !== 'ssh-ed25519' || raw.length !== 32) {
    throw new Refusal(400, 'BadRequest', 'publicKey must be an OpenSSH ssh-ed25519 public key');
  }
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { type, blob, key, fingerprint: `SHA256:${crypto.createHash('sha256').update(bytes).digest('base64').replace(/=+$/, '')}` };
}

function authorizedBlobs() {
  let text = '';
  try {
    text = fs.readFileSync(AUTHORIZED_KEYS, 'utf8');
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  return text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/)[1]);
}

function authorizeKey(parsed, comment) {
  if (authorizedBlobs().includes(parsed.blob)) return;
  fs.mkdirSync(path.dirname(AUTHORIZED_KEYS), { recursive: true, mode: 0o700 });
  fs.appendFileSync(AUTHORIZED_KEYS, `${parsed.type} ${parsed.blob}${comment ? ` ${comment}` : ''}\n`, { mode: 0o600 });
}

/** A signed request: a known user, a fresh nonce, a key in authorized_keys, and its signature over the nonce. */
function verifySigned(body) {
  const nonce = typeof body.nonce === 'string' ? body.nonce : '';
  const expiry = nonces.get(nonce);
  nonces.delete(nonce); // single use, whatever happens next
  if (body.username !== USERNAME) throw new Refusal(401, 'AuthenticationFailed', `no user '${body.username}' on this VM`);
  if (!expiry || expiry < Date.now()) throw new Refusal(401, 'AuthenticationFailed', 'the nonce is unknown, used or expired; ask POST /challenge');
  const key = parsePublicKey(body.publicKey);
  if (!authorizedBlobs().includes(key.blob)) {
    throw new Refusal(401, 'AuthenticationFailed', `the key ${key.fingerprint} is not in ${USERNAME}'s authorized keys`);
  }
  const signature = Buffer.from(typeof body.signature === 'string' ? body.signature : '', 'base64');
  if (!crypto.verify(null, Buffer.from(nonce), key.key, signature)) {
    throw new Refusal(401, 'AuthenticationFailed', `the signature does not verify with the key ${key.fingerprint}`);
  }
  return key;
}

// ---- commands ----------------------------------------------------------------------------------

function startManagement(env) {
  const childEnv = { PATH: process.env.PATH || '/usr/bin:/bin', HOME };
  for (const [k, v] of Object.entries(env && typeof env === 'object' ? env : {})) if (typeof v === 'string') childEnv[k] = v;
  // Its own process group, so a kill takes the user's script with it.
  const child = spawn(process.execPath, [MANAGEMENT], { cwd: HOME, env: childEnv, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const entry = { child, runId: childEnv.AZUREML_RUN_ID ?? '', exit: undefined, ended: undefined };
  entry.exit = new Promise((resolve) => {
    const end = (ended) => resolve((entry.ended = ended));
    child.once('exit', (code, signal) => end({ exitCode: code ?? 128 + (os.constants.signals[signal] ?? 1), signal }));
    child.once('error', () => end({ exitCode: 127, signal: null }));
  });
  if (child.pid === undefined) throw new Refusal(500, 'ExecFailed', 'could not start the management code');
  processes.set(child.pid, entry);
  return child.pid;
}

/** SIGKILL to a process group the agent started (a cancel is graceful through the heartbeat instead). */
function kill(pid) {
  const entry = processes.get(pid);
  if (!entry || entry.child.exitCode !== null || entry.child.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// ---- HTTP ----------------------------------------------------------------------------------------

async function route(method, url, body) {
  if (method === 'GET' && url === '/health') return { ok: true, username: USERNAME, passwordLogin: PASSWORD_HASH !== '' };
  if (method === 'POST' && url === '/password-login') {
    if (!PASSWORD_HASH) throw new Refusal(401, 'AuthenticationFailed', 'password login is disabled on this VM (it was created without a password)');
    if (body.username !== USERNAME || !passwordMatches(body.password)) throw new Refusal(401, 'AuthenticationFailed', 'wrong username or password');
    const key = parsePublicKey(body.publicKey);
    authorizeKey(key, typeof body.comment === 'string' ? body.comment.replace(/\s+/g, '-') : '');
    log(`password login of ${USERNAME}: authorized key ${key.fingerprint}`);
    return { ok: true, fingerprint: key.fingerprint };
  }
  if (method === 'POST' && url === '/challenge') {
    const now = Date.now();
    for (const [n, expiry] of nonces) if (expiry < now) nonces.delete(n);
    const nonce = crypto.randomBytes(32).toString('base64url');
    nonces.set(nonce, now + NONCE_TTL_MS);
    return { nonce };
  }
  if (method === 'POST' && url === '/exec') {
    const key = verifySigned(body);
    if (body.command !== 'management') throw new Refusal(400, 'BadRequest', `unknown command ${JSON.stringify(body.command)}; only 'management' runs here`);
    const pid = startManagement(body.env);
    log(`${USERNAME} (key ${key.fingerprint}) started the management code: pid ${pid}`);
    return { pid };
  }
  const ofRun = /^\/runs\/([^/]+)\/exec$/.exec(url);
  if (method === 'GET' && ofRun) {
    const runId = decodeURIComponent(ofRun[1]);
    const started = [...processes].filter(([, e]) => e.runId === runId);
    return { runId, processes: started.map(([pid, e]) => ({ pid, running: !e.ended, ...(e.ended ?? {}) })) };
  }
  const exec = /^\/exec\/(\d+)(\/kill)?$/.exec(url);
  const entry = exec ? processes.get(Number(exec[1])) : undefined;
  if (exec && !entry) throw new Refusal(404, 'ResourceNotFound', `no process ${exec[1]} was started here`);
  if (exec && method === 'GET' && !exec[2]) return { pid: Number(exec[1]), ...(await entry.exit) };
  if (exec && method === 'POST' && exec[2]) {
    verifySigned(body);
    kill(Number(exec[1]));
    return { ok: true };
  }
  throw new Refusal(404, 'ResourceNotFound', `no route ${method} ${url}`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Refusal(413, 'BadRequest', `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        const value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve(value && typeof value === 'object' ? value : {});
      } catch {
        reject(new Refusal(400, 'BadRequest', 'request body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  let status = 200;
  let answer;
  try {
    answer = await route(req.method, req.url ?? '', await readBody(req));
  } catch (err) {
    status = err instanceof Refusal ? err.status : 500;
    answer = { error: { code: err instanceof Refusal ? err.code : 'InternalError', message: err.message } };
    if (status === 401) log(`refused ${req.method} ${req.url}: ${err.message}`);
  }
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(answer));
});

function shutdown() {
  for (const pid of processes.keys()) kill(pid);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

fs.mkdirSync(HOME, { recursive: true });
fs.rmSync(SOCKET, { force: true });
server.listen(SOCKET, () => {
  // The platform connects from the host as another user.
  fs.chmodSync(SOCKET, 0o666);
  log(`listening on ${SOCKET} for ${USERNAME} (password login ${PASSWORD_HASH ? 'on' : 'off'})`);
});
