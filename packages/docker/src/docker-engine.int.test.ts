import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSimError } from '@amlsim/core';
import { connectDocker, type DockerEngine } from './docker-engine';
import { amlsimLabels, containerLabels, LABEL_LEASE, LABEL_PID } from './labels';
import { acquireLease } from './lease';

// Everything this file creates carries this session, so afterAll can remove it all by label.
const session = `test-${randomUUID()}`;
const MiB = 1024 * 1024;
const limits = { memoryBytes: 256 * MiB, nanoCpus: 1_000_000_000 };

let engine: DockerEngine;
let baseTag: string;
// Raw client for looking at what the engine did (this package is the one allowed to use it).
const raw = new Docker({ socketPath: '/var/run/docker.sock' });

beforeAll(async () => {
  engine = await connectDocker();
  baseTag = (await engine.ensureNodeBaseImage()).tag;
}, 120_000);

afterAll(async () => {
  await engine.sweep({ session });
  await engine.removeImages({ session });
  await engine.close();
});

const labels = (role = 'node') => containerLabels(session, { role });

describe('node base image', () => {
  it('is built once and reused', async () => {
    const again = await engine.ensureNodeBaseImage();
    expect(again).toMatchObject({ tag: baseTag, reused: true });
    expect(await engine.imageExists(baseTag)).toBe(true);
    const info = await raw.getImage(baseTag).inspect();
    expect(info.Config.Labels).toMatchObject({ 'dev.amlsim.managed': 'true', 'dev.amlsim.role': 'base' });
    expect(info.Config.Labels).not.toHaveProperty('dev.amlsim.session');
  });

  it('runs node as the non-root user with network none and the fixed isolation settings', async () => {
    await using c = await engine.runContainer({
      image: baseTag,
      cmd: ['node', '-e', 'console.log(1+1); console.log(process.getuid() + ":" + process.getgid())'],
      labels: labels(),
      ...limits,
    });
    expect(await c.wait()).toEqual({ exitCode: 0, oomKilled: false });
    expect((await c.logs()).stdout).toBe('2\n1000:1000\n');

    const { HostConfig } = await raw.getContainer(c.id).inspect();
    expect(HostConfig).toMatchObject({
      NetworkMode: 'none',
      Memory: limits.memoryBytes,
      MemorySwap: limits.memoryBytes,
      NanoCpus: limits.nanoCpus,
      AutoRemove: false,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
    });
    expect(Object.keys(HostConfig.PortBindings ?? {})).toEqual([]);
  });

  it('gives the container no network interface but lo', async () => {
    const script = `
      const fs = require('fs'), os = require('os');
      const ifaces = fs.readFileSync('/proc/net/dev', 'utf8').split('\\n').slice(2)
        .map((l) => l.split(':')[0].trim()).filter(Boolean);
      console.log(JSON.stringify({ ifaces, os: Object.keys(os.networkInterfaces()) }));`;
    await using c = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', script], labels: labels(), ...limits });
    expect((await c.wait()).exitCode).toBe(0);
    expect(JSON.parse((await c.logs()).stdout)).toEqual({ ifaces: ['lo'], os: ['lo'] });
  });

  it('has a shell for management code', async () => {
    await using c = await engine.runContainer({ image: baseTag, cmd: ['/bin/sh', '-c', 'id -u; ls -ld /tmp | cut -c1-10'], labels: labels(), ...limits });
    expect(await c.wait()).toMatchObject({ exitCode: 0 });
    expect((await c.logs()).stdout).toBe('1000\ndrwxrwxrwt\n');
  });
});

describe('containers', () => {
  it('reports the exit code and keeps stdout and stderr apart', async () => {
    const big = 'x'.repeat(100_000); // several log frames
    const script = `process.stdout.write('out-line\\n' + '${big}\\n'); process.stderr.write('err-line\\n'); process.exitCode = 3;`;
    await using c = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', script], labels: labels(), ...limits });
    expect(await c.wait()).toEqual({ exitCode: 3, oomKilled: false });
    const logs = await c.logs();
    expect(logs.stdout).toBe(`out-line\n${big}\n`);
    expect(logs.stderr).toBe('err-line\n');
  });

  it('ends a container exceeding its memory limit with oomKilled', async () => {
    // Buffers live outside the V8 heap, so --max-old-space-size does not stop them: only the
    // cgroup limit does. Filling each one touches its pages, so they really count as used.
    const script = `const keep = []; for (let i = 0; i < 1024; i++) keep.push(Buffer.alloc(${MiB}, 1)); console.log('survived');`;
    await using c = await engine.runContainer({
      image: baseTag,
      cmd: ['node', '-e', script],
      labels: labels(),
      memoryBytes: 64 * MiB,
      nanoCpus: 1_000_000_000,
    });
    const exit = await c.wait();
    expect(exit.oomKilled).toBe(true);
    expect(exit.exitCode).toBe(137); // SIGKILL from the OOM killer
    expect((await c.logs()).stdout).not.toContain('survived');
  });

  it('reaches a unix socket server on the host through a bind-mounted directory, as the non-root user', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amlsim-sock-'));
    const socketPath = path.join(dir, 'platform.sock');
    const seen: Array<{ method?: string; url?: string; auth?: string; body: string }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: req.headers.authorization === 'Bearer run-token' }));
      });
    });
    try {
      server.listen(socketPath);
      await once(server, 'listening');
      // Node creates the socket 0755 and mkdtemp the directory 0700: uid 1000 could not connect.
      await chmod(socketPath, 0o666);
      await chmod(dir, 0o777);
      const script = `
        const http = require('http');
        const req = http.request({ socketPath: '/run/amlsim/platform.sock', path: '/metrics', method: 'POST',
          headers: { authorization: 'Bearer run-token' } }, (res) => {
          let data = ''; res.on('data', (c) => data += c);
          res.on('end', () => console.log(res.statusCode, data, process.getuid()));
        });
        req.on('error', (e) => { console.error(e.code); process.exitCode = 1; });
        req.end(JSON.stringify({ loss: 0.5 }));`;
      await using c = await engine.runContainer({
        image: baseTag,
        cmd: ['node', '-e', script],
        user: '1000:1000',
        binds: [{ hostPath: dir, containerPath: '/run/amlsim' }],
        labels: labels(),
        ...limits,
      });
      expect(await c.wait()).toEqual({ exitCode: 0, oomKilled: false });
      expect(await c.logs()).toEqual({ stdout: '200 {"ok":true} 1000\n', stderr: '' });
      expect(seen).toEqual([{ method: 'POST', url: '/metrics', auth: 'Bearer run-token', body: '{"loss":0.5}' }]);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes the container when the handle is disposed', async () => {
    let id: string;
    {
      await using c = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: labels(), ...limits });
      id = c.id;
      await c.kill();
      expect((await c.wait()).exitCode).toBe(137);
    }
    await expect(raw.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('fails to start cleanly for an unknown user, leaving nothing behind', async () => {
    const ofSession = async () => (await raw.listContainers({ all: true, filters: { label: [`dev.amlsim.session=${session}`] } })).length;
    const before = await ofSession();
    const err = await engine
      .runContainer({ image: baseTag, cmd: ['node', '-e', '0'], user: 'nobody-here', labels: labels(), ...limits })
      .catch((e: unknown) => e);
    expect(isSimError(err) && err.code).toBe('ContainerStartFailed');
    expect((err as Error).message).toContain('nobody-here');
    expect(await ofSession()).toBe(before);
  });
});

describe('layered images', () => {
  it('builds a layer once and reuses it for identical inputs', async () => {
    const spec = {
      base: baseTag,
      files: [{ path: '/app/hello.js', content: 'console.log("hello from the layer")' }],
      labels: amlsimLabels({ session, role: 'scoring' }),
    };
    const first = await engine.buildLayeredImage(spec);
    const second = await engine.buildLayeredImage(spec);
    expect(first.reused).toBe(false);
    expect(second).toEqual({ ...first, reused: true });
    expect(first.tag).toMatch(/^amlsim\/layer:[0-9a-f]{32}$/);

    const changed = await engine.buildLayeredImage({ ...spec, files: [{ path: '/app/hello.js', content: 'console.log(2)' }] });
    expect(changed.tag).not.toBe(first.tag);

    await using c = await engine.runContainer({ image: first.tag, cmd: ['node', '/app/hello.js'], labels: labels(), ...limits });
    expect((await c.wait()).exitCode).toBe(0);
    expect((await c.logs()).stdout).toBe('hello from the layer\n');

    const info = await raw.getImage(first.tag).inspect();
    expect(info.Config.Labels).toMatchObject({ 'dev.amlsim.session': session, 'dev.amlsim.role': 'scoring' });
  });

  it('leaves one image when two builds of the same layer race', async () => {
    const spec = { base: baseTag, files: [{ path: '/race', content: randomUUID() }], labels: amlsimLabels({ session }) };
    const results = await Promise.all([engine.buildLayeredImage(spec), engine.buildLayeredImage(spec)]);
    expect(results[0].tag).toBe(results[1].tag);
    const content = (await raw.getImage(results[0].tag).inspect()).Config.Labels['dev.amlsim.content'];
    const copies = await raw.listImages({ filters: { label: [`dev.amlsim.content=${content}`] } });
    expect(copies.map((i) => i.RepoTags)).toEqual([[results[0].tag]]);
  });

  it('reports build errors from the progress stream as ImageBuildFailed, leaving no image', async () => {
    const before = (await raw.listImages({ all: true })).length;
    const err = await engine
      .buildImage({
        tag: `amlsim/broken:${randomUUID()}`,
        from: 'scratch',
        files: [{ path: '/app', content: 'a file, not a directory' }],
        workdir: '/app',
        labels: amlsimLabels({ session }),
      })
      .catch((e: unknown) => e);
    expect(isSimError(err) && err.code).toBe('ImageBuildFailed');
    expect((err as Error).message).toContain('/app is not a directory');
    expect((await raw.listImages({ all: true })).length).toBe(before);
  });

  it('never pulls: a missing base is refused before the builder sees it', async () => {
    const err = await engine.buildLayeredImage({ base: 'amlsim/absent:0', files: [], labels: amlsimLabels({ session }) }).catch((e: unknown) => e);
    expect(isSimError(err) && err.code).toBe('ImageBuildFailed');
    expect((err as Error).message).toContain('nothing is pulled');
  });

  it('removeImages removes the session images and keeps the shared base', async () => {
    const other = `test-${randomUUID()}`;
    const layer = await engine.buildLayeredImage({ base: baseTag, files: [{ path: '/x', content: other }], labels: amlsimLabels({ session: other }) });
    expect(await engine.removeImages({ session: other })).toEqual({ images: 1 });
    expect(await engine.imageExists(layer.tag)).toBe(false);
    expect(await engine.imageExists(baseTag)).toBe(true);
  });
});

describe('volumes and sweep', () => {
  it('at start-up removes what sessions whose lease lapsed or was released left, and keeps what a held lease covers, what had no lease and the base image', async () => {
    // A lease dir of our own: its lease home is unknown to every other sweeper, so nothing
    // here is judged by a simulator starting meanwhile, and ours judges nothing of theirs.
    const dir = await mkdtemp(path.join(tmpdir(), 'amlsim-lease-test-'));
    const released = `test-${randomUUID()}`;
    const expired = `test-${randomUUID()}`;
    const live = `test-${randomUUID()}`;
    const unleased = `test-${randomUUID()}`;
    const all = [released, expired, live, unleased];
    const made = (s: string, role = 'node') => containerLabels(s, { role, leaseDir: dir });
    try {
      const releasedLease = acquireLease(released, { dir });
      const expiredLease = acquireLease(expired, { dir, renewMs: 3_600_000 });
      await using liveLease = acquireLease(live, { dir, renewMs: 50 });
      const orphan = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: made(released), ...limits });
      const orphanVolume = await engine.createVolume({ labels: made(released) });
      // A layer on a layer, as a crashed simulator leaves them: the child must go before its parent.
      const orphanParent = await engine.buildLayeredImage({ base: baseTag, files: [{ path: '/orphan', content: randomUUID() }], labels: amlsimLabels({ session: released, pid: process.pid, leaseDir: dir, role: 'layer' }) });
      const orphanChild = await engine.buildLayeredImage({ base: orphanParent.tag, files: [{ path: '/child', content: randomUUID() }], labels: amlsimLabels({ session: released, pid: process.pid, leaseDir: dir, role: 'image' }) });
      const stale = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: made(expired), ...limits });
      const ours = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: made(live), ...limits });
      const ourVolume = await engine.createVolume({ labels: made(live) });
      const ourImage = await engine.buildLayeredImage({ base: baseTag, files: [{ path: '/ours', content: randomUUID() }], labels: amlsimLabels({ session: live, pid: process.pid, leaseDir: dir, role: 'layer' }) });
      const noLease = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: made(unleased), ...limits });
      expect((await raw.getVolume(ourVolume.name).inspect()).Labels).toMatchObject({ [LABEL_LEASE]: liveLease.home, [LABEL_PID]: String(process.pid) });
      expect((await raw.getContainer(noLease.id).inspect()).Config.Labels[LABEL_LEASE]).toBeUndefined();
      releasedLease.release();
      void expiredLease; // never renewed again: it lapses after the TTL below
      await new Promise((r) => setTimeout(r, 400));

      const result = await engine.sweep({ lease: { dir, ttlMs: 300 } });
      expect(result.sessions).toEqual({
        [released]: { containers: 1, volumes: 1, images: 2, why: 'leaseReleased' },
        [expired]: { containers: 1, volumes: 0, images: 0, why: 'leaseExpired' },
      });
      await expect(raw.getContainer(orphan.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
      await expect(raw.getContainer(stale.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
      await expect(raw.getVolume(orphanVolume.name).inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect(await engine.imageExists(orphanChild.tag)).toBe(false);
      expect(await engine.imageExists(orphanParent.tag)).toBe(false);
      expect((await raw.getContainer(ours.id).inspect()).State.Running).toBe(true);
      expect((await raw.getVolume(ourVolume.name).inspect()).Name).toBe(ourVolume.name);
      expect(await engine.imageExists(ourImage.tag)).toBe(true);
      expect((await raw.getContainer(noLease.id).inspect()).State.Running).toBe(true);
      expect(await engine.imageExists(baseTag)).toBe(true);
      // Another temp dir (another lease home) judges none of it, not even the released session's.
      const elsewhere = await mkdtemp(path.join(tmpdir(), 'amlsim-lease-test-'));
      try {
        expect((await engine.sweep({ lease: { dir: elsewhere, ttlMs: 1 } })).sessions[live]).toBeUndefined();
      } finally {
        await rm(elsewhere, { recursive: true, force: true });
      }
      expect((await raw.getContainer(ours.id).inspect()).State.Running).toBe(true);
    } finally {
      for (const s of all) {
        await engine.sweep({ session: s });
        await engine.removeImages({ session: s });
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with a session removes everything of that session, owner alive or not', async () => {
    const other = `test-${randomUUID()}`;
    const c = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: containerLabels(other), ...limits });
    const v = await engine.createVolume({ labels: containerLabels(other) });
    await using ours = await engine.runContainer({ image: baseTag, cmd: ['sleep', '60'], labels: labels(), ...limits });
    expect(await engine.sweep({ session: other })).toMatchObject({ containers: 1, volumes: 1, images: 0 });
    await expect(raw.getContainer(c.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(raw.getVolume(v.name).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await raw.getContainer(ours.id).inspect()).State.Running).toBe(true);
  });
});

describe('connectDocker', () => {
  it('throws DockerUnavailable with a way forward when no engine answers', async () => {
    const err = await connectDocker({ socketPath: '/nonexistent.sock' }).catch((e: unknown) => e);
    expect(isSimError(err) && err.code).toBe('DockerUnavailable');
    const message = (err as Error).message;
    expect(message).toContain('No Docker engine answered at /nonexistent.sock');
    expect(message).toContain('bash scripts/setup.sh');
    expect(message).toContain('dockerd --bridge=none');
    expect(message).toContain('--driver process');
  });
});
