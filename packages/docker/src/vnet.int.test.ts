import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker, type DockerEngine } from './docker-engine';
import { containerLabels, LABEL_ROLE, LABEL_SESSION } from './labels';
import { LABEL_VNET, VNET_HOLDER_ROLE } from './vnet';

// S3.1: a VNet is one network namespace with loopback only, owned by a holder container.
const session = `test-${randomUUID()}`;
const limits = { memoryBytes: 128 * 2 ** 20, nanoCpus: 500_000_000 };
const raw = new Docker({ socketPath: '/var/run/docker.sock' });
let engine: DockerEngine;
let baseTag: string;

beforeAll(async () => {
  engine = await connectDocker();
  baseTag = (await engine.ensureNodeBaseImage()).tag;
}, 120_000);

afterAll(async () => {
  await engine.sweep({ session });
  await engine.close();
});

const interfaces = `
  const names = require('fs').readFileSync('/proc/net/dev', 'utf8').split('\\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean);
  console.log(JSON.stringify(names));`;
const server = (port: number) => `require('http').createServer((q, r) => r.end('pong')).listen(${port}, '127.0.0.1', () => console.log('up'))`;
const client = (port: number) => `
  const req = require('http').get({ host: '127.0.0.1', port: ${port}, timeout: 2000 }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => console.log('got ' + b)); });
  req.on('error', (e) => console.log('refused ' + e.code));`;

const untilLogged = async (c: { logs(): Promise<{ stdout: string }> }, text: string) => {
  for (let i = 0; i < 100 && !(await c.logs()).stdout.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
};

describe('VNet holder (S3.1)', () => {
  it('holds a namespace with only lo, which members share and others do not reach', async () => {
    await using holder = await engine.startVnetHolder({ vnet: 'vnet-a', labels: containerLabels(session, { role: 'ignored' }) });
    const info = await raw.getContainer(holder.id).inspect();
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.Config.Labels).toMatchObject({ [LABEL_SESSION]: session, [LABEL_ROLE]: VNET_HOLDER_ROLE, [LABEL_VNET]: 'vnet-a', 'dev.amlsim.managed': 'true' });
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);

    // The namespace has lo and nothing else, seen from a member.
    await using probe = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', interfaces], labels: containerLabels(session), joinNetworkOf: holder.id, ...limits });
    expect((await probe.wait()).exitCode).toBe(0);
    expect(JSON.parse((await probe.logs()).stdout)).toEqual(['lo']);
    expect((await raw.getContainer(probe.id).inspect()).HostConfig.NetworkMode).toBe(`container:${holder.id}`);

    await using listening = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', server(5101)], labels: containerLabels(session), joinNetworkOf: holder.id, ...limits });
    await untilLogged(listening, 'up');
    await using member = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', client(5101)], labels: containerLabels(session), joinNetworkOf: holder.id, ...limits });
    await member.wait();
    expect((await member.logs()).stdout.trim()).toBe('got pong');
    await using outsider = await engine.runContainer({ image: baseTag, cmd: ['node', '-e', client(5101)], labels: containerLabels(session), ...limits });
    await outsider.wait();
    expect((await outsider.logs()).stdout.trim()).toBe('refused ECONNREFUSED');

    expect((await engine.findVnetHolder(session, 'vnet-a'))?.id).toBe(holder.id);
    expect(await engine.findVnetHolder(session, 'vnet-b')).toBeUndefined();
  }, 60_000);

  it('is swept with the session, members and all', async () => {
    const holder = await engine.startVnetHolder({ vnet: 'vnet-s', labels: containerLabels(session) });
    await engine.runContainer({ image: baseTag, cmd: ['node', '-e', 'setInterval(() => {}, 1000)'], labels: containerLabels(session), joinNetworkOf: holder.id, ...limits });
    const swept = await engine.sweep({ session });
    expect(swept.containers).toBeGreaterThanOrEqual(2);
    expect(await engine.findVnetHolder(session, 'vnet-s')).toBeUndefined();
    expect((await engine.listSessionObjects(session)).containers).toEqual([]);
  }, 60_000);
});
