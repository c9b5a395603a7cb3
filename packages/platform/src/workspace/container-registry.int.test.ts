import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amlsimLabels, connectDocker, containerLabels, type DockerEngine } from '@amlsim/docker';
import { RegistryProcess } from './container-registry';

// Real Docker engine, real docker-registry process (issue 4: the workspace's Container Registry).

const session = `test-registry-${randomUUID()}`;
const MiB = 1024 * 1024;
const dataDir = mkdtempSync(join(tmpdir(), 'amlsim-registry-test-'));
const started: RegistryProcess[] = [];
const references = new Set<string>();

let engine: DockerEngine;
let registry: RegistryProcess;
let layerTag: string;
/** The hello image's id, once pulled back from the registry. */
let helloImageId: string;

beforeAll(async () => {
  engine = await connectDocker();
  const base = (await engine.ensureNodeBaseImage()).tag;
  const layer = await engine.buildLayeredImage({
    base,
    files: [{ path: '/hello.txt', content: 'hi' }],
    labels: amlsimLabels({ session, role: 'layer' }),
  });
  layerTag = layer.tag;
  registry = await start();
}, 120_000);

afterAll(async () => {
  for (const r of started) await r.stop();
  if (engine) {
    await engine.sweep({ session });
    for (const ref of references) await engine.removeImage(ref, { force: true });
    await engine.removeImages({ session });
    await engine.close();
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(options: { name?: string; password?: string; binary?: string } = {}): Promise<RegistryProcess> {
  const r = await RegistryProcess.start({ dataDir, name: options.name ?? 'acrtest', ...options });
  started.push(r);
  return r;
}

/** `GET /v2/` on the registry, with Basic credentials if given. */
function getV2(address: string, auth?: { username: string; password: string }): Promise<{ status: number; authenticate?: string }> {
  const [host, port] = address.split(':');
  const headers: Record<string, string> = auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path: '/v2/', headers, agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, authenticate: res.headers['www-authenticate'] });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every TCP socket in LISTEN state that the process holds, as `addr:port` (read from /proc). */
function listeningSockets(pid: number): string[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? [];
      } catch {
        return [];
      }
    }),
  );
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [local = '', state, inode = ''] = [cols[1], cols[3], cols[9]];
      if (state !== '0A' || !inodes.has(inode)) continue;
      const [hexAddr = '', hexPort = ''] = local.split(':');
      const addr = table.endsWith('tcp') ? (hexAddr.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)).join('.') : `[tcp6 ${hexAddr}]`;
      out.push(`${addr}:${parseInt(hexPort, 16)}`);
    }
  }
  return out;
}

/** The error a promise rejects with (a fulfilled promise fails the test). */
const rejection = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('RegistryProcess (docker-registry on loopback, htpasswd auth)', () => {
  it('requires credentials: /v2/ is 401 anonymously and with a wrong password, 200 with the admin password', async () => {
    expect(registry.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(registry.username).toBe('acrtest');
    expect(registry.password.length).toBeGreaterThanOrEqual(32);

    const anonymous = await getV2(registry.address);
    expect(anonymous.status).toBe(401);
    expect(anonymous.authenticate).toMatch(/^Basic realm="amlsim-registry-acrtest"/);
    expect((await getV2(registry.address, { username: registry.username, password: 'not-the-password' })).status).toBe(401);
    expect((await getV2(registry.address, { username: 'someone-else', password: registry.password })).status).toBe(401);
    expect((await getV2(registry.address, { username: registry.username, password: registry.password })).status).toBe(200);
  });

  it('listens on 127.0.0.1 only, and keeps the password on disk only as a bcrypt hash', () => {
    const port = Number(registry.address.split(':')[1]);
    expect(readFileSync(registry.configPath, 'utf8')).toMatch(new RegExp(`^  addr: "127\\.0\\.0\\.1:${port}"$`, 'm'));
    // The process's own sockets: exactly one listener, on loopback (no debug or metrics port).
    expect(listeningSockets(registry.pid)).toEqual([`127.0.0.1:${port}`]);

    const htpasswd = readFileSync(join(registry.dir, 'htpasswd'), 'utf8');
    expect(htpasswd).toMatch(/^acrtest:\$2[aby]\$10\$[./A-Za-z0-9]{53}\n$/);
    expect(statSync(join(registry.dir, 'htpasswd')).mode & 0o777).toBe(0o600);
    for (const file of ['config.yml', 'htpasswd', 'registry.log']) {
      expect(readFileSync(join(registry.dir, file), 'utf8')).not.toContain(registry.password);
    }
    expect(registry.storageDir).toBe(join(dataDir, 'registries', 'acrtest', 'storage'));
  });

  it('push with the credentials, remove locally, pull back with them, run it', async () => {
    const pushed = await engine.pushImage({
      image: layerTag,
      registry: registry.address,
      repository: 'azureml/hello',
      tag: 'v1',
      username: registry.username,
      password: registry.password,
    });
    references.add(pushed.reference);
    expect(pushed.reference).toBe(`${registry.address}/azureml/hello:v1`);
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The layers really are in the registry's storage under the data dir.
    const blobs = join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    expect(readdirSync(blobs).length).toBeGreaterThan(0);
    expect(existsSync(join(registry.storageDir, 'docker', 'registry', 'v2', 'repositories', 'azureml', 'hello'))).toBe(true);

    // Gone locally (both names), so the pull below really comes from the registry.
    expect(await engine.removeImage(pushed.reference)).toBe(true);
    expect(await engine.removeImage(layerTag)).toBe(true);
    expect(await engine.imageExists(pushed.reference)).toBe(false);
    expect(await engine.removeImage(pushed.reference)).toBe(false);

    const pulled = await engine.pullImage({ reference: pushed.reference, username: registry.username, password: registry.password });
    expect(pulled).toMatchObject({ reference: pushed.reference, digest: pushed.digest });
    helloImageId = pulled.imageId;
    expect(await engine.imageExists(pushed.reference)).toBe(true);

    await using c = await engine.runContainer({
      image: pushed.reference,
      cmd: ['node', '-e', "process.stdout.write(require('fs').readFileSync('/hello.txt', 'utf8'))"],
      labels: containerLabels(session, { role: 'scoring' }),
      memoryBytes: 256 * MiB,
      nanoCpus: 1_000_000_000,
    });
    expect(await c.wait()).toEqual({ exitCode: 0, oomKilled: false });
    expect((await c.logs()).stdout).toBe('hi');
  });

  it('refuses a push or pull with a wrong password with a clear error, and leaves no tag behind', async () => {
    const source = `${registry.address}/azureml/hello:v1`; // present locally after the previous test
    const refused = engine.pushImage({
      image: source,
      registry: registry.address,
      repository: 'azureml/hello',
      tag: 'v2',
      username: registry.username,
      password: 'not-the-password',
    });
    await expect(refused).rejects.toMatchObject({ name: 'SimError', code: 'RegistryAuthenticationFailed', status: 401 });
    const error = await rejection(refused);
    expect(error.message).toContain(`registry ${registry.address} did not accept the credentials of user 'acrtest'`);
    expect(error.message).not.toContain('not-the-password');
    expect(await engine.imageExists(`${registry.address}/azureml/hello:v2`)).toBe(false);

    await expect(
      engine.pullImage({ reference: `${registry.address}/azureml/hello:v1`, username: registry.username, password: 'not-the-password' }),
    ).rejects.toMatchObject({ code: 'RegistryAuthenticationFailed' });
  });

  it('refuses any registry that is not on loopback, before sending anything', async () => {
    const creds = { username: 'u', password: 'p' };
    await expect(engine.pushImage({ image: layerTag, registry: '10.0.0.1:5000', repository: 'x', tag: 't', ...creds })).rejects.toMatchObject({
      code: 'InvalidImageReference',
    });
    await expect(engine.pullImage({ reference: 'library/node:20', ...creds })).rejects.toMatchObject({ code: 'InvalidImageReference' });
    await expect(engine.pullImage({ reference: 'example.com:443/x:1', ...creds })).rejects.toMatchObject({ code: 'InvalidImageReference' });
  });

  it('a restart on the same storage with the same password serves the pushed image; a stale process is stopped first', async () => {
    const first = await start({ name: 'acrrestart' });
    const pushed = await engine.pushImage({
      image: `${registry.address}/azureml/hello:v1`,
      registry: first.address,
      repository: 'azureml/hello',
      tag: 'v1',
      username: first.username,
      password: first.password,
    });
    references.add(pushed.reference);
    expect(await engine.removeImage(pushed.reference)).toBe(true);

    // `first` is never stopped: as if its simulator had died. The new start finds its pid file
    // and stops it before using the same storage.
    const second = await start({ name: 'acrrestart', password: first.password });
    expect(isAlive(first.pid)).toBe(false);
    expect(second.address).not.toBe(first.address);
    const byDigest = `${second.address}/azureml/hello@${pushed.digest}`;
    const pulled = await engine.pullImage({ reference: byDigest, username: second.username, password: second.password });
    references.add(byDigest);
    expect(pulled.digest).toBe(pushed.digest);
    await second.stop();
  });

  it('S4.5 as modeled: layers are plain files in the storage dir; one altered on disk fails the pull', async () => {
    const r = await start({ name: 'acrtamper' });
    const creds = { username: r.username, password: r.password };
    const pushed = await engine.pushImage({ image: `${registry.address}/azureml/hello:v1`, registry: r.address, repository: 'hello', tag: '1', ...creds });
    references.add(pushed.reference);
    // Every local name of the image goes (by id), so the pull must download each layer.
    expect(await engine.removeImage(helloImageId, { force: true })).toBe(true);
    expect(await engine.imageExists(pushed.reference)).toBe(false);
    expect(statSync(r.storageDir).mode & 0o777).toBe(0o700);

    // The smallest gzip blob is the layer holding /hello.txt: stored as is, readable, not encrypted.
    const blobs = join(r.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    const layers = readdirSync(blobs)
      .flatMap((a) => readdirSync(join(blobs, a)).map((b) => join(blobs, a, b, 'data')))
      .map((file) => ({ file, bytes: readFileSync(file) }))
      .filter(({ bytes }) => bytes[0] === 0x1f && bytes[1] === 0x8b)
      .sort((a, b) => a.bytes.length - b.bytes.length);
    const { file, bytes } = layers[0]!;
    expect(gunzipSync(bytes).toString('latin1')).toContain('hi');
    bytes[bytes.length - 12]! ^= 0xff;
    writeFileSync(file, bytes);

    // Integrity, not confidentiality: the engine checks each layer against its digest.
    await expect(engine.pullImage({ reference: pushed.reference, ...creds })).rejects.toMatchObject({
      code: 'ImagePullFailed',
      message: expect.stringContaining('verification failed'),
    });
    expect(await engine.imageExists(pushed.reference)).toBe(false);
    await r.stop();
  });

  it('a registry that fails to start gives RegistryStartFailed with the tail of its log', async () => {
    const fake = join(dataDir, 'fake-registry.sh');
    writeFileSync(fake, '#!/bin/sh\necho "configuration error: storage is broken"\nexit 3\n');
    chmodSync(fake, 0o755);
    const failing = start({ name: 'acrbroken', binary: fake });
    await expect(failing).rejects.toMatchObject({ code: 'RegistryStartFailed' });
    const error = await rejection(failing);
    expect(error.message).toContain('exited during start-up (code 3');
    expect(error.message).toContain('configuration error: storage is broken');
    expect(existsSync(join(dataDir, 'registries', 'acrbroken', 'registry.pid'))).toBe(false);

    const notExecutable = join(dataDir, 'not-executable');
    writeFileSync(notExecutable, '');
    await expect(start({ name: 'acrbroken', binary: notExecutable })).rejects.toMatchObject({
      code: 'RegistryStartFailed',
      message: expect.stringMatching(/could not be started: spawn \S+ EACCES/),
    });
    await expect(start({ name: '../escape' })).rejects.toMatchObject({ code: 'RegistryStartFailed' });
  });

  it('a simulator process that dies (SIGKILL) takes its registry with it', async () => {
    // A separate process starts a registry and reports its pid; then it is killed without a chance to stop it.
    const script = join(dataDir, 'owner.mts');
    writeFileSync(
      script,
      `import { RegistryProcess } from ${JSON.stringify(join(import.meta.dirname, 'container-registry.ts'))};\n` +
        `const r = await RegistryProcess.start({ dataDir: ${JSON.stringify(dataDir)}, name: 'acrorphan' });\n` +
        `process.stdout.write(String(r.pid) + '\\n');\n` +
        `setInterval(() => {}, 1000);\n`,
    );
    const owner = spawn(process.execPath, ['--import', 'tsx', script], { cwd: join(import.meta.dirname, '..', '..', '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await Promise.race([
        once(owner.stdout!, 'data').then(([chunk]) => String(chunk)),
        once(owner, 'exit').then(([code]) => Promise.reject(new Error(`the owner process exited (${String(code)}) before starting its registry`))),
      ]);
      const pid = Number(line.trim());
      expect(isAlive(pid)).toBe(true);
      owner.kill('SIGKILL');
      await once(owner, 'exit');
      for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
      expect(isAlive(pid)).toBe(false);
    } finally {
      owner.kill('SIGKILL');
    }
  });

  it('stop() ends the process: the PID is gone and the port no longer answers', async () => {
    const { pid, address } = registry;
    expect(isAlive(pid)).toBe(true);
    await registry.stop();
    expect(registry.running).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(existsSync(join(registry.dir, 'registry.pid'))).toBe(false);
    await expect(getV2(address)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await registry.stop(); // idempotent
  });
});
