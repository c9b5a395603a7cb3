import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SimError } from '@amlsim/core';
import { holderCertainlyDead, readPidNamespace, readProcessStart } from '@amlsim/docker';

/**
 * The simulator's own certificate authority, for the scoring gateway's HTTPS (S5.1): a CA kept
 * in the data dir (e.g. `<dataDir>/tls/`) and a server certificate for 127.0.0.1 signed by it.
 * Clients trust the CA (its path is printed) the way they would trust a public one.
 *
 * Node 20's crypto parses X.509 certificates but cannot create them, so the certificates are
 * made by the `openssl` command; the EC P-256 keys are made by node:crypto and written mode
 * 0600 before openssl ever reads them. Files in `dir`:
 *
 *   ca.key      the CA's private key (0600): never read into the result, never leaves `dir`
 *   ca.crt      the CA certificate (10 years): what clients trust
 *   server.key  the server's private key (0600)
 *   server.crt  the server certificate (1 year): subjectAltName IP:127.0.0.1, DNS:localhost
 *
 * Existing files are reused. A server certificate that is missing, does not match its key or
 * the CA, or expires within 30 days is issued again by the same CA (clients keep trusting it);
 * a CA that is missing, broken or expires within 30 days is replaced together with the server
 * certificate (clients must then trust the new one: see `issued`). Nothing is logged.
 */
export type LocalCa = {
  dir: string;
  caCertPath: string;
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** The server certificate followed by the CA's: serve this as `cert` so that a client that
   * does not trust the CA is told "self-signed certificate in certificate chain". */
  serverChainPem: string;
  /** SHA-256 fingerprint of the CA certificate (`AB:CD:…`), safe to print and to record. */
  caFingerprint256: string;
  /** When the server certificate expires (ISO). */
  serverValidTo: string;
  /** What this call created: [] when everything was reused. */
  issued: Array<'ca' | 'server'>;
};

export type LocalCaOptions = {
  /** The openssl binary (default `openssl`, looked up on PATH). */
  openssl?: string;
  caDays?: number;
  serverDays?: number;
};

const CA_DAYS = 3650;
const SERVER_DAYS = 365;
const RENEW_WITHIN_MS = 30 * 24 * 3600 * 1000;
const LOCK_WAIT_MS = 30_000;
const LOCK_STALE_MS = 60_000;
const EMPTY_LOCK_MS = 2_000;
const OPENSSL_TIMEOUT_MS = 30_000;

const FILES = { caKey: 'ca.key', caCert: 'ca.crt', serverKey: 'server.key', serverCert: 'server.crt' } as const;

/**
 * Makes sure `dir` holds a usable CA and server certificate (creating or renewing what is
 * needed) and returns them. Safe to call from several processes at once (a lock file in `dir`).
 * @throws SimError `LocalCaFailed` (status 500): openssl is not installed, failed, or `dir` is
 * locked for too long.
 */
export const ensureLocalCa = (dir: string, options: LocalCaOptions = {}): LocalCa => {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  // The certificates are public (other users' clients may trust ca.crt); the keys are 0600.
  chmodSync(root, 0o755);
  const unlock = lock(root);
  try {
    return ensureLocked(root, options);
  } finally {
    unlock();
  }
};

const ensureLocked = (root: string, options: LocalCaOptions): LocalCa => {
  removeLeftovers(root);
  const path = (name: string) => join(root, name);
  const issued: LocalCa['issued'] = [];

  let ca = loadCa(root);
  if (!ca) {
    const openssl = findOpenssl(options.openssl);
    issueCa(openssl, root, options.caDays ?? CA_DAYS);
    issued.push('ca');
    ca = loadCa(root);
    if (!ca) throw localCaFailed('openssl made a CA certificate that does not check out (wrong key, not a CA, or already expiring)');
  }
  let server = issued.includes('ca') ? undefined : loadServer(root, ca.cert);
  if (!server) {
    const openssl = findOpenssl(options.openssl);
    issueServer(openssl, root, options.serverDays ?? SERVER_DAYS);
    issued.push('server');
    server = loadServer(root, ca.cert);
    if (!server) throw localCaFailed('openssl made a server certificate that does not check out (wrong key, issuer, names, or already expiring)');
  }
  for (const key of [FILES.caKey, FILES.serverKey]) {
    if ((statSync(path(key)).mode & 0o077) !== 0) chmodSync(path(key), 0o600);
  }
  return {
    dir: root,
    caCertPath: path(FILES.caCert),
    caCertPem: ca.pem,
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem,
    serverChainPem: `${server.certPem.trimEnd()}\n${ca.pem.trimEnd()}\n`,
    caFingerprint256: ca.cert.fingerprint256,
    serverValidTo: new Date(Date.parse(server.cert.validTo)).toISOString(),
    issued,
  };
};

// ---------------------------------------------------------------------------------------------
// Checking what is on disk
// ---------------------------------------------------------------------------------------------

const readIfExists = (file: string): string | undefined => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);

/** Valid now and for more than the renewal margin. */
const current = (cert: X509Certificate): boolean => {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const now = Date.now();
  return Number.isFinite(from) && Number.isFinite(to) && from <= now + 60_000 && to > now + RENEW_WITHIN_MS;
};

/** The CA certificate when it is a current CA matching ca.key (the key is only checked, not kept). */
const loadCa = (root: string): { pem: string; cert: X509Certificate } | undefined => {
  const pem = readIfExists(join(root, FILES.caCert));
  const keyPem = readIfExists(join(root, FILES.caKey));
  if (!pem || !keyPem) return undefined;
  try {
    const cert = new X509Certificate(pem);
    if (!cert.ca || !current(cert) || !cert.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) return undefined;
    return { pem, cert };
  } catch {
    return undefined;
  }
};

const loadServer = (root: string, ca: X509Certificate): { certPem: string; keyPem: string; cert: X509Certificate } | undefined => {
  const certPem = readIfExists(join(root, FILES.serverCert));
  const keyPem = readIfExists(join(root, FILES.serverKey));
  if (!certPem || !keyPem) return undefined;
  try {
    const cert = new X509Certificate(certPem);
    const ok =
      !cert.ca &&
      current(cert) &&
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      cert.checkPrivateKey(createPrivateKey(keyPem)) &&
      cert.checkIP('127.0.0.1') !== undefined &&
      cert.checkHost('localhost') !== undefined;
    return ok ? { certPem, keyPem, cert } : undefined;
  } catch {
    return undefined;
  }
};

// ---------------------------------------------------------------------------------------------
// Issuing with openssl
// ---------------------------------------------------------------------------------------------

const findOpenssl = (binary = 'openssl'): string => {
  try {
    execFileSync(binary, ['version'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
    return binary;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw localCaFailed(
        `the \`${binary}\` command was not found; it makes the certificates (Node's crypto cannot). ` +
          'Install it (Debian: `apt-get install openssl`) and try again',
      );
    }
    throw localCaFailed(`\`${binary} version\` failed: ${stderrOf(error)}`);
  }
};

const runOpenssl = (openssl: string, args: string[], cwd: string): void => {
  try {
    execFileSync(openssl, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
  } catch (error) {
    // openssl's stderr names files and errors, never key material (the keys are in files).
    throw localCaFailed(`\`openssl ${args[0]}\` failed: ${stderrOf(error)}`);
  }
};

const stderrOf = (error: unknown): string => {
  const stderr = (error as { stderr?: Buffer | string }).stderr;
  const text = stderr ? String(stderr).trim() : '';
  return (text || (error instanceof Error ? error.message : String(error))).split('\n').slice(-5).join(' | ').slice(0, 800);
};

/** A fresh EC P-256 key as PKCS#8 PEM, written 0600 (created so; never wider). */
const writeNewKey = (file: string): void => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
};

/** A positive 127-bit serial in hex (RFC 5280: unique, at most 20 octets). */
const serial = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return `0x${bytes.toString('hex')}`;
};

/** A private working directory inside `root`: the CA key is never copied out of `root`. */
const withWorkDir = <T>(root: string, fn: (work: string) => T): T => {
  const work = join(root, `.work-${randomBytes(6).toString('hex')}`);
  mkdirSync(work, { mode: 0o700 });
  try {
    return fn(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = amlsim
CN = amlsim local CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

const SERVER_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
O = amlsim
CN = 127.0.0.1
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

/** A new CA key and self-signed CA certificate; both replace what was there. */
const issueCa = (openssl: string, root: string, days: number): void =>
  withWorkDir(root, (work) => {
    writeFileSync(join(work, 'ca.cnf'), CA_CONFIG);
    writeNewKey(join(work, FILES.caKey));
    runOpenssl(openssl, ['req', '-new', '-x509', '-config', 'ca.cnf', '-key', FILES.caKey, '-sha256', '-days', String(days), '-set_serial', serial(), '-out', FILES.caCert], work);
    // The old server certificate was signed by the old CA: it goes too (issued again next).
    rmSync(join(root, FILES.serverCert), { force: true });
    renameSync(join(work, FILES.caKey), join(root, FILES.caKey));
    renameSync(join(work, FILES.caCert), join(root, FILES.caCert));
  });

/** A new server key and certificate signed by the CA in `root`. */
const issueServer = (openssl: string, root: string, days: number): void =>
  withWorkDir(root, (work) => {
    writeFileSync(join(work, 'server.cnf'), SERVER_CONFIG);
    writeNewKey(join(work, FILES.serverKey));
    runOpenssl(openssl, ['req', '-new', '-config', 'server.cnf', '-key', FILES.serverKey, '-sha256', '-out', 'server.csr'], work);
    runOpenssl(
      openssl,
      [
        'x509', '-req', '-in', 'server.csr',
        '-CA', join(root, FILES.caCert), '-CAkey', join(root, FILES.caKey), '-set_serial', serial(),
        '-days', String(days), '-sha256', '-extfile', 'server.cnf', '-extensions', 'v3_server',
        '-out', FILES.serverCert,
      ],
      work,
    );
    renameSync(join(work, FILES.serverKey), join(root, FILES.serverKey));
    renameSync(join(work, FILES.serverCert), join(root, FILES.serverCert));
  });

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/** An exclusive lock file in `root` (another process issuing at the same time waits). */
const lock = (root: string): (() => void) => {
  const file = join(root, '.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  // Who holds it, so that one who finds it held can tell a dead holder (packages/docker/src/lease.ts).
  const holder = JSON.stringify({ pid: process.pid, ...optionalHolder() });
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, holder);
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    try {
      // A process that died while issuing left its lock: taken over at once when its holder is
      // certainly dead (a simulator killed mid-issue), else once older than any issuing takes.
      if (holderDead(file) || Date.now() - statSync(file).mtimeMs > LOCK_STALE_MS) rmSync(file, { force: true });
    } catch {
      // gone meanwhile: try again
    }
    if (Date.now() > deadline) throw localCaFailed(`${file} has been held by another process for over ${LOCK_WAIT_MS / 1000} s`);
    sleepSync(50);
  }
};

const optionalHolder = (): { pidNamespace?: string; processStart?: string } => {
  const pidNamespace = readPidNamespace();
  const processStart = readProcessStart();
  return { ...(pidNamespace ? { pidNamespace } : {}), ...(processStart ? { processStart } : {}) };
};

/** The lock's holder is certainly gone (a lock of an older version, with no holder, is judged by age alone). */
const holderDead = (file: string): boolean => {
  try {
    const text = readFileSync(file, 'utf8');
    // A holder writes its record as it takes the lock: an empty lock older than that is one a
    // process was killed in before it could (seen when a simulator is SIGKILLed mid-issue).
    if (text === '') return Date.now() - statSync(file).mtimeMs > EMPTY_LOCK_MS;
    const holder = JSON.parse(text) as { pid?: unknown; pidNamespace?: string; processStart?: string };
    return typeof holder.pid === 'number' && holderCertainlyDead({ pid: holder.pid, ...(holder.pidNamespace ? { pidNamespace: holder.pidNamespace } : {}), ...(holder.processStart ? { processStart: holder.processStart } : {}) });
  } catch {
    return false; // being written, or no holder in it
  }
};

/** Working directories left by a process that died while issuing (we hold the lock). */
const removeLeftovers = (root: string): void => {
  for (const name of readdirSync(root)) {
    if (name.startsWith('.work-')) rmSync(join(root, name), { recursive: true, force: true });
  }
};

const localCaFailed = (detail: string): SimError =>
  new SimError('LocalCaFailed', `The simulator's local certificate authority for HTTPS (S5.1) could not be set up: ${detail}.`, {
    status: 500,
    details: { detail },
  });
