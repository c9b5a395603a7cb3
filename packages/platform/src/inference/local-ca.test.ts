import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { isSimError } from '@amlsim/core';
import { readPidNamespace } from '@amlsim/docker';
import { ensureLocalCa } from './local-ca';

// Real openssl (Debian's), real TLS handshakes.

const root = mkdtempSync(join(tmpdir(), 'amlsim-ca-'));
let n = 0;
const freshDir = () => join(root, `tls-${n++}`);

afterAll(() => rmSync(root, { recursive: true, force: true }));

const modeOf = (file: string) => statSync(file).mode & 0o777;

/** A TLS handshake against `cert`/`key` on 127.0.0.1; resolves with the client's verdict. */
async function handshake(cert: string, key: string, clientCa: string | undefined, servername?: string): Promise<{ authorized: boolean; error?: string }> {
  const server: Server = createServer({ cert, key }, (socket) => socket.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...(clientCa ? { ca: clientCa } : {}), ...(servername ? { servername } : {}) }, () => {
        socket.destroy();
        resolve({ authorized: socket.authorized });
      });
      socket.once('error', (e: NodeJS.ErrnoException) => resolve({ authorized: false, error: e.code ?? e.message }));
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe('ensureLocalCa', () => {
  it('creates a CA and a server certificate for 127.0.0.1 and localhost signed by it, keys 0600', () => {
    const dir = freshDir();
    const ca = ensureLocalCa(dir);
    expect(ca.issued).toEqual(['ca', 'server']);
    expect(ca.caCertPath).toBe(join(dir, 'ca.crt'));
    expect(readFileSync(ca.caCertPath, 'utf8')).toBe(ca.caCertPem);
    expect(readdirSync(dir).sort()).toEqual(['ca.crt', 'ca.key', 'server.crt', 'server.key']);
    expect(modeOf(join(dir, 'ca.key'))).toBe(0o600);
    expect(modeOf(join(dir, 'server.key'))).toBe(0o600);

    const caCert = new X509Certificate(ca.caCertPem);
    const server = new X509Certificate(ca.serverCertPem);
    expect(caCert.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(caCert)).toBe(true);
    expect(server.verify(caCert.publicKey)).toBe(true);
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.checkPrivateKey(createPrivateKey(ca.serverKeyPem))).toBe(true);
    expect(ca.caFingerprint256).toBe(caCert.fingerprint256);
    const days = (Date.parse(ca.serverValidTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(360);
    expect(days).toBeLessThan(367);
    expect(ca.serverChainPem).toBe(`${ca.serverCertPem.trim()}\n${ca.caCertPem.trim()}\n`);

    // openssl agrees.
    expect(execFileSync('openssl', ['verify', '-CAfile', ca.caCertPath, join(dir, 'server.crt')], { encoding: 'utf8' })).toContain(': OK');
  });

  it('never hands out the CA private key', () => {
    const dir = freshDir();
    const ca = ensureLocalCa(dir);
    const caKey = readFileSync(join(dir, 'ca.key'), 'utf8');
    expect(caKey).toContain('PRIVATE KEY');
    expect(JSON.stringify(ca)).not.toContain(caKey.split('\n')[1]);
  });

  it('takes over at once a lock whose holder died while issuing (a simulator killed mid-issue), not waiting out its age', () => {
    const dir = freshDir();
    ensureLocalCa(dir);
    // A holder that has exited: its pid is gone.
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: dead, pidNamespace: readPidNamespace() }), { mode: 0o600 });
    const started = Date.now();
    expect(ensureLocalCa(dir).caCertPath).toBe(join(dir, 'ca.crt'));
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('takes over an empty lock a process was killed in before it could write its name', () => {
    const dir = freshDir();
    ensureLocalCa(dir);
    writeFileSync(join(dir, '.lock'), '', { mode: 0o600 });
    const past = new Date(Date.now() - 5_000);
    utimesSync(join(dir, '.lock'), past, past);
    const started = Date.now();
    expect(ensureLocalCa(dir).caCertPath).toBe(join(dir, 'ca.crt'));
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('reuses the files on the next call', () => {
    const dir = freshDir();
    const first = ensureLocalCa(dir);
    const second = ensureLocalCa(dir);
    expect(second.issued).toEqual([]);
    expect(second.caCertPem).toBe(first.caCertPem);
    expect(second.serverCertPem).toBe(first.serverCertPem);
    expect(second.serverKeyPem).toBe(first.serverKeyPem);
  });

  it('issues a broken or missing server certificate again with the same CA', () => {
    const dir = freshDir();
    const first = ensureLocalCa(dir);
    unlinkSync(join(dir, 'server.crt'));
    const second = ensureLocalCa(dir);
    expect(second.issued).toEqual(['server']);
    expect(second.caCertPem).toBe(first.caCertPem);
    expect(second.serverCertPem).not.toBe(first.serverCertPem);

    // A certificate that does not match the key on disk is replaced too.
    writeFileSync(join(dir, 'server.crt'), first.serverCertPem);
    const third = ensureLocalCa(dir);
    expect(third.issued).toEqual(['server']);
    expect(third.caCertPem).toBe(first.caCertPem);
  });

  it('replaces a broken CA together with the server certificate', () => {
    const dir = freshDir();
    const first = ensureLocalCa(dir);
    writeFileSync(join(dir, 'ca.crt'), 'not a certificate');
    const second = ensureLocalCa(dir);
    expect(second.issued).toEqual(['ca', 'server']);
    expect(second.caCertPem).not.toBe(first.caCertPem);
    expect(new X509Certificate(second.serverCertPem).checkIssued(new X509Certificate(second.caCertPem))).toBe(true);
  });

  it('tightens a key file left readable by others', () => {
    const dir = freshDir();
    ensureLocalCa(dir);
    chmodSync(join(dir, 'server.key'), 0o644);
    ensureLocalCa(dir);
    expect(modeOf(join(dir, 'server.key'))).toBe(0o600);
  });

  it('says to install openssl when it is missing', () => {
    const dir = freshDir();
    let error: unknown;
    try {
      ensureLocalCa(dir, { openssl: join(root, 'no-such-openssl') });
    } catch (e) {
      error = e;
    }
    expect(isSimError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'LocalCaFailed', status: 500 });
    expect((error as Error).message).toMatch(/not found.*[Ii]nstall it/);
    // Nothing half-made is left behind.
    expect(readdirSync(dir)).toEqual([]);
  });

  it('is trusted in a real TLS handshake by a client given the CA, and only then', async () => {
    const ca = ensureLocalCa(freshDir());
    expect(await handshake(ca.serverChainPem, ca.serverKeyPem, ca.caCertPem)).toEqual({ authorized: true });
    expect(await handshake(ca.serverChainPem, ca.serverKeyPem, ca.caCertPem, 'localhost')).toEqual({ authorized: true });
    expect(await handshake(ca.serverChainPem, ca.serverKeyPem, undefined)).toEqual({ authorized: false, error: 'SELF_SIGNED_CERT_IN_CHAIN' });
    const other = ensureLocalCa(freshDir());
    expect((await handshake(ca.serverChainPem, ca.serverKeyPem, other.caCertPem)).authorized).toBe(false);
  });
});
