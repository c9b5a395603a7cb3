import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, scryptSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VM_LOGIN_AGENT } from './index';

const PASSWORD = 'Correct-Horse-42';

const call = (socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });

/** `ssh-ed25519 <base64 wire blob>` */
const openSsh = (key: KeyObject): string => {
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const raw = Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')}`;
};

describe('VM login agent (S8.3 unmanaged, S6.2)', () => {
  let dir: string;
  let agent: ChildProcess;
  let socket: string;
  const platformKey = generateKeyPairSync('ed25519');
  const strangerKey = generateKeyPairSync('ed25519');

  const signed = async (key: { publicKey: KeyObject; privateKey: KeyObject }, username = 'azureuser') => {
    const { body } = await call(socket, 'POST', '/challenge', {});
    return { username, publicKey: openSsh(key.publicKey), nonce: body.nonce, signature: sign(null, Buffer.from(body.nonce), key.privateKey).toString('base64') };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'amlsim-login-agent-'));
    socket = join(dir, 'login.sock');
    const salt = randomBytes(16);
    agent = spawn(process.execPath, [VM_LOGIN_AGENT], {
      env: {
        PATH: process.env.PATH,
        AMLSIM_VM_SOCKET: socket,
        AMLSIM_VM_HOME: join(dir, 'home'),
        AMLSIM_VM_PASSWORD_HASH: `scrypt$${salt.toString('base64')}$${scryptSync(PASSWORD, salt, 32).toString('base64')}`,
      },
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if ((await call(socket, 'GET', '/health').catch(() => ({ status: 0 }))).status === 200) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the login agent did not start');
  });

  afterAll(() => {
    agent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('authorizes a key only with the right admin password', async () => {
    const wrong = await call(socket, 'POST', '/password-login', { username: 'azureuser', password: 'nope', publicKey: openSsh(platformKey.publicKey) });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'AuthenticationFailed' } } });
    const otherUser = await call(socket, 'POST', '/password-login', { username: 'root', password: PASSWORD, publicKey: openSsh(platformKey.publicKey) });
    expect(otherUser.status).toBe(401);
    const right = await call(socket, 'POST', '/password-login', { username: 'azureuser', password: PASSWORD, publicKey: openSsh(platformKey.publicKey) });
    expect(right.status).toBe(200);
    expect(right.body.fingerprint).toMatch(/^SHA256:/);
    const authorized = readFileSync(join(dir, 'home', '.ssh', 'authorized_keys'), 'utf8');
    expect(authorized).toContain(openSsh(platformKey.publicKey).split(' ')[1]);
    expect(authorized).not.toContain(PASSWORD);
  });

  it('runs the management code only for a signature by an authorized key, with a fresh nonce', async () => {
    const stranger = await call(socket, 'POST', '/exec', { ...(await signed(strangerKey)), command: 'management', env: {} });
    expect(stranger.status).toBe(401);
    expect(stranger.body.error.message).toContain('not in azureuser');

    const forged = await signed(platformKey);
    const badSignature = await call(socket, 'POST', '/exec', { ...forged, signature: sign(null, Buffer.from(forged.nonce), strangerKey.privateKey).toString('base64'), command: 'management' });
    expect(badSignature.status).toBe(401);

    const good = await signed(platformKey);
    const started = await call(socket, 'POST', '/exec', { ...good, command: 'management', env: {} });
    expect(started.status).toBe(200);
    // The same nonce never works twice.
    expect((await call(socket, 'POST', '/exec', { ...good, command: 'management', env: {} })).status).toBe(401);
    // Without a run's environment the management code exits 1 at once (InvalidConfiguration).
    expect(await call(socket, 'GET', `/exec/${started.body.pid}`)).toMatchObject({ status: 200, body: { exitCode: 1 } });
  });
});
