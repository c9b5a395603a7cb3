/**
 * The workspace's Container Registry as a real registry process (issue 4, S8.5): Debian's
 * `docker-registry` (distribution 2.8), bound to 127.0.0.1 on a free port, its storage under
 * the data dir, authentication required on every request.
 *
 * Authentication: htpasswd (HTTP Basic) with a bcrypt hash, over plain HTTP on loopback.
 * distribution 2.8 enforces htpasswd without TLS (checked: `/v2/` answers 401 with
 * `Www-Authenticate: Basic realm=…` without credentials or with a wrong password, 200 with the
 * right one), and dockerd sends Basic credentials to it because 127.0.0.0/8 is an insecure
 * registry by default. The traffic never leaves loopback, so TLS would protect nothing
 * here that the host's own user boundary does not; S5.1 TLS belongs to the scoring gateway.
 * The admin password is generated here (or given by the caller, e.g. read back from the key
 * vault), kept only in memory, and reaches disk solely as a bcrypt hash (mode 0600). Like ACR's
 * admin user, the username is the registry's name.
 *
 * S4.5 "images are encrypted at rest: encrypted before they are stored, decrypted when pulled" —
 * how the simulator models it, honestly:
 * - NOT encrypted: image layers and manifests are stored by the registry's `filesystem` storage
 *   driver as plaintext, content-addressed blobs in `<dataDir>/registries/<name>/storage`
 *   (`docker/registry/v2/blobs/sha256/…`). Images pulled into the Docker engine are plaintext in
 *   the engine's own store too. Nothing here implements the S4.5 encryption step.
 * - What is modeled: the images live only in the data dir, in directories of mode 0700 owned
 *   by the simulator's user (file permissions, not cryptography); every read and write of
 *   the registry needs the admin credentials (the credentials, not the disk, are the boundary
 *   here); and layers are content-addressed: the Docker engine checks each one it downloads against
 *   its sha256 digest, so a blob altered on disk fails the pull ("filesystem layer verification
 *   failed") — integrity, not confidentiality.
 * - How real encryption could be added: distribution's storage drivers are compiled in (Debian's
 *   build has filesystem, inmemory, s3-aws, swift); no encrypting one exists. The faithful path is
 *   the `s3-aws` driver pointed (`regionendpoint: http://127.0.0.1:<port>`, `secure: false`) at
 *   a small S3-compatible endpoint of the platform that seals every object with AES-256-GCM under
 *   a data key (crypto/sealed-box, as S4.1 blob storage does) and opens it on read — "encrypted
 *   before stored, decrypted when pulled". Cheaper, weaker alternatives: seal the blob files when
 *   the registry stops and open them on start (encrypted only while stopped), or an encrypted
 *   FUSE mount (gocryptfs; needs root and /dev/fuse on every machine).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { hash } from 'bcryptjs';
import { SimError } from '@amlsim/core';
import { leaseState, readPidNamespace } from '@amlsim/docker';
import { holdSession, recordSessionProcess } from '../runtime/session-temp';

/** Where Debian's `docker-registry` package puts the binary. */
export const DOCKER_REGISTRY_BINARY = '/usr/bin/docker-registry';

/** What {@link RegistryProcess.start} needs. */
export interface RegistryStartOptions {
  /** The simulator's data dir; the registry lives in `<dataDir>/registries/<name>`. */
  dataDir: string;
  /** Registry name (ACR-like: letters, digits, dashes); also the admin username. */
  name: string;
  /** Admin password to require; default: a new random one (read it from {@link RegistryProcess.password}). */
  password?: string;
  /** Path of the `docker-registry` binary; default {@link DOCKER_REGISTRY_BINARY}. */
  binary?: string;
  /** How long the registry may take to answer `/v2/`; default 10 000 ms. */
  startTimeoutMs?: number;
  /**
   * The session whose lease covers the registry: once that lease lapses (its simulator died),
   * a start-up sweep kills the registry (runtime/session-temp.ts). Default: a lease of the
   * registry's own, held by this process until {@link RegistryProcess.stop}.
   */
  session?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,49}$/;
// bcrypt cost: the registry checks the hash on every request of a push (dozens), so keep the
// common default rather than a slow one; the password itself is 192 random bits.
const BCRYPT_COST = 10;
const STOP_GRACE_MS = 5_000;
const SETPRIV = '/usr/bin/setpriv';
const START_MARKER = '--- amlsim: starting docker-registry';

/**
 * A running `docker-registry serve` child process bound to 127.0.0.1. Start with
 * {@link RegistryProcess.start}; stop with {@link stop} (or `await using`).
 */
export class RegistryProcess implements AsyncDisposable {
  #stopped?: Promise<void>;

  /** @internal use {@link RegistryProcess.start}. */
  constructor(
    private readonly child: ChildProcess,
    /** `127.0.0.1:PORT`: the registry part of every image reference. */
    readonly address: string,
    /** Admin username (the registry's name). */
    readonly username: string,
    /** Admin password: keep it in the key vault (S6.1); never log it. */
    readonly password: string,
    /** `<dataDir>/registries/<name>`: config, htpasswd, log, pid file, storage. */
    readonly dir: string,
    /** Forgets the registry's lease record (and gives back a lease of its own). */
    private readonly unrecord: () => void = () => {},
  ) {}

  /** Process id of the registry. */
  get pid(): number {
    return this.child.pid!;
  }

  /** Where the layers and manifests are stored (S4.5: see the comment at the top of this file). */
  get storageDir(): string {
    return join(this.dir, 'storage');
  }

  get configPath(): string {
    return join(this.dir, 'config.yml');
  }

  /** The registry's stdout and stderr. */
  get logPath(): string {
    return join(this.dir, 'registry.log');
  }

  /**
   * Writes the config (127.0.0.1 on a free port, filesystem storage, htpasswd auth), starts
   * `docker-registry serve`, and waits until `/v2/` answers 401 to an anonymous request.
   * @throws SimError `RegistryStartFailed` with the tail of the registry's log.
   */
  static async start(options: RegistryStartOptions): Promise<RegistryProcess> {
    const { name } = options;
    if (!NAME.test(name)) {
      throw registryStartFailed(name, `the name must be 1–50 letters, digits or dashes, starting with a letter or digit; got '${name}'`);
    }
    const binary = options.binary ?? DOCKER_REGISTRY_BINARY;
    if (!existsSync(binary)) {
      throw registryStartFailed(name, `'${binary}' does not exist; \`bash scripts/setup.sh\` installs Debian's docker-registry`);
    }
    const dir = resolve(options.dataDir, 'registries', name);
    mkdirSync(join(dir, 'storage'), { recursive: true, mode: 0o700 });
    // Also when they already existed (mkdir's mode applies only to what it creates).
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'storage'), 0o700);
    await killStale(dir);

    const username = name;
    const password = options.password ?? randomBytes(24).toString('base64url');
    // htpasswd lines are `user:hash`; the hash is the only form of the password on disk.
    writeFileSync(join(dir, 'htpasswd'), `${username}:${await hash(password, BCRYPT_COST)}\n`, { mode: 0o600 });

    // The free port is found by binding port 0 and closing; someone may take it before the
    // registry binds, so a lost race ("address already in use") is retried with a new port.
    for (let attempt = 1; ; attempt++) {
      const port = await freeLoopbackPort();
      try {
        return await launch({ ...options, binary, dir, username, password, port });
      } catch (error) {
        if (attempt >= 3 || !(error instanceof SimError && /address already in use/i.test(String(error.details['logTail'])))) throw error;
      }
    }
  }

  /** Stops the registry: SIGTERM to its PID, SIGKILL after a grace period; resolves once it has exited. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      await terminate(this.child);
      rmSync(join(this.dir, 'registry.pid'), { force: true });
      this.unrecord();
    })();
    return this.#stopped;
  }

  /** Whether the process is still running (it has not exited). */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

interface LaunchOptions extends RegistryStartOptions {
  binary: string;
  dir: string;
  username: string;
  password: string;
  port: number;
}

async function launch(options: LaunchOptions): Promise<RegistryProcess> {
  const { name, binary, dir, username, password, port } = options;
  const address = `127.0.0.1:${port}`;
  const configPath = join(dir, 'config.yml');
  const logPath = join(dir, 'registry.log');
  writeFileSync(configPath, registryConfig({ address, dir, realm: `amlsim-registry-${name}` }), { mode: 0o600 });

  // setpriv (below) would report a binary it cannot run only as its own exit code: check first.
  try {
    accessSync(binary, constants.X_OK);
  } catch (error) {
    throw registryStartFailed(name, `it could not be started: spawn ${binary} ${(error as NodeJS.ErrnoException).code ?? 'EACCES'}`);
  }
  // The log is appended across restarts; a marker line lets a failure show only this start's lines.
  writeFileSync(logPath, `${START_MARKER} ${new Date().toISOString()} ${address}\n`, { flag: 'a', mode: 0o600 });
  const log = openSync(logPath, 'a', 0o600);
  let child: ChildProcess;
  try {
    // Empty environment: REGISTRY_* variables override the config file, and none may change
    // where the registry listens or whether it checks credentials.
    // Through util-linux's setpriv (Essential on Debian, so always there): the registry is
    // SIGKILLed when this process dies, so a crashed simulator leaves no registry running.
    // setpriv execs it: the pid (and its pid file) is the registry's own.
    // Through sh for its umask: the image layers the registry writes are the workspace's and
    // must not be readable by other host users (docs/security.md, "Data dir").
    const program = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', binary, 'serve', configPath] : [binary, 'serve', configPath];
    child = spawn('/bin/sh', ['-c', 'umask 077 && exec "$@"', 'sh', ...program], { stdio: ['ignore', log, log], env: {}, cwd: dir });
  } finally {
    closeSync(log); // the child holds its own descriptor
  }
  // Plain listeners rather than events.once: once(child, 'exit') would reject on 'error'.
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const spawnError = new Promise<Error>((r) => child.once('error', r));
  // Who holds it: the session's lease, else one of its own. The sweep kills it once that lease
  // lapses (even where --pdeathsig could not act), and only if its command line is this one.
  const own = options.session === undefined ? holdSession(`registry-${randomBytes(6).toString('hex')}`) : undefined;
  const holder = options.session ?? own!.id;
  let unrecord = () => own?.release();
  if (child.pid !== undefined) {
    writeFileSync(join(dir, 'registry.pid'), `${child.pid}\n${holder}\n`, { mode: 0o600 });
    const forget = recordSessionProcess(holder, `registry-${name}`, child.pid, [binary, 'serve', configPath]);
    unrecord = () => {
      forget();
      own?.release();
    };
  }

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let last = 'no answer yet';
  const fail = async (detail: string): Promise<never> => {
    await terminate(child);
    rmSync(join(dir, 'registry.pid'), { force: true });
    unrecord();
    throw registryStartFailed(name, detail, logTail(logPath));
  };
  for (;;) {
    const early = await Promise.race([exited, spawnError, delay(100).then(() => undefined)]);
    if (early instanceof Error) return fail(`it could not be started: ${early.message}`);
    if (early) return fail(`it exited during start-up (code ${early.code ?? 'none'}, signal ${early.signal ?? 'none'})`);
    const answer = await probe(address).catch((err: Error) => err);
    if (!(answer instanceof Error)) {
      // Up. It must refuse an anonymous request: a 200 would mean authentication is off.
      if (answer.status === 401 && /^Basic /i.test(answer.authenticate)) {
        return new RegistryProcess(child, address, username, password, dir, unrecord);
      }
      return fail(`GET /v2/ without credentials answered ${answer.status} (expected 401 with a Basic challenge: authentication must be in force)`);
    }
    last = answer.message;
    if (Date.now() > deadline) return fail(`GET http://${address}/v2/ did not answer within ${options.startTimeoutMs ?? 10_000} ms (${last})`);
  }
}

/** The registry's configuration. Strings are written as JSON strings, which YAML reads as double-quoted scalars. */
function registryConfig(o: { address: string; dir: string; realm: string }): string {
  const q = JSON.stringify;
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(join(o.dir, 'storage'))}`,
    '  delete:',
    '    enabled: true',
    'http:',
    // Loopback only, never a wildcard (Debian's default config listens on every interface).
    // No `debug:` section, so no second (debug/metrics) listener is opened.
    `  addr: ${q(o.address)}`,
    `  secret: ${q(randomBytes(32).toString('hex'))}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'auth:',
    '  htpasswd:',
    `    realm: ${q(o.realm)}`,
    `    path: ${q(join(o.dir, 'htpasswd'))}`,
    '',
  ].join('\n');
}

/** A port nothing listens on right now, found by binding port 0 on 127.0.0.1. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port assigned'))));
    });
  });
}

/** `GET /v2/` without credentials. */
function probe(address: string): Promise<{ status: number; authenticate: string }> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolveProbe, reject) => {
    const req = request({ host, port: Number(port), path: '/v2/', method: 'GET', timeout: 1_000, agent: false }, (res) => {
      res.resume();
      resolveProbe({ status: res.statusCode ?? 0, authenticate: String(res.headers['www-authenticate'] ?? '') });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A registry left running by a simulator process that died (its pid file remains): stop it,
 * so a restart can use the same storage. Only a process whose command line is this
 * registry's own `docker-registry serve <config>` is touched, and never one whose lease is
 * held by another live process (packages/docker/src/lease.ts): a pid alone says nothing about
 * a simulator in another PID namespace.
 */
async function killStale(dir: string): Promise<void> {
  const pidFile = join(dir, 'registry.pid');
  if (!existsSync(pidFile)) return;
  const [pidLine, holder] = readFileSync(pidFile, 'utf8').trim().split('\n');
  const pid = Number(pidLine);
  if (holder) {
    const lease = leaseState(holder);
    const ours = lease.state === 'held' && lease.holder?.pid === process.pid && lease.holder.pidNamespace === readPidNamespace();
    if (lease.state === 'held' && !ours) return; // a live simulator's registry
  }
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1) return;
  let cmdline: string[];
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return; // gone
  }
  if (cmdline[1] === 'serve' && cmdline[2] === join(dir, 'config.yml') && /docker-registry$/.test(cmdline[0] ?? '')) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return; // already gone
    }
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await delay(20);
  }
}

function logTail(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8');
    const thisStart = text.slice(Math.max(0, text.lastIndexOf(START_MARKER)));
    return thisStart.trimEnd().split('\n').slice(1).slice(-lines).join('\n') || '(empty)';
  } catch {
    return '(no log)';
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The registry process did not come up (or came up without authentication). */
function registryStartFailed(name: string, detail: string, logTailText?: string): SimError {
  return new SimError(
    'RegistryStartFailed',
    `Starting container registry '${name}' failed: ${detail}.` + (logTailText ? `\nLast lines of its log:\n${logTailText}` : ''),
    { status: 500, details: { name, detail, ...(logTailText !== undefined ? { logTail: logTailText } : {}) } },
  );
}
