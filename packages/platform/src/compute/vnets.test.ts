import { describe, expect, it } from 'vitest';
import { emptyWorld, type VnetRecord } from '@amlsim/core';
import type { ComputeDriver } from './compute-driver';
import { VnetService } from './vnets';

// S3.1: the VNet service's rules, on a fake driver (the holder itself: packages/docker/src/vnet.int.test.ts).
const setUp = (vnets: Record<string, VnetRecord> = {}, running = true) => {
  const world = emptyWorld();
  world.computes.vnets = vnets;
  const started: string[] = [];
  const driver = {
    kind: 'docker',
    startVnetHolder: async ({ vnet }: { vnet: string }) => {
      started.push(vnet);
      return { id: `${vnet.padEnd(12, '0')}ffffffff` };
    },
    vnetHolderRunning: async () => running,
  } as unknown as ComputeDriver;
  return { service: new VnetService({ session: 's1', world }, async () => driver), started };
};
const known = (extra: Partial<VnetRecord> = {}): VnetRecord => ({ vnet: 'vnet-a', subscription: 'sub-1', region: 'eastus', holder: 'abc123abc123', driver: 'docker', members: [], ports: [], ...extra });
const join = { vnet: 'vnet-a', subscription: 'sub-1', region: 'eastus', member: "compute 'c1' of workspace 'ws1'" };

describe('VnetService (S3.1)', () => {
  it('makes a new VNet once: the first join starts its holder and hands back its VnetCreated', async () => {
    const { service, started } = setUp();
    const first = await service.join(join);
    expect(first).toMatchObject({ vnet: 'vnet-a', holder: 'vnet-a000000', created: { vnet: 'vnet-a', subscription: 'sub-1', region: 'eastus', holder: 'vnet-a000000', driver: 'docker', member: join.member } });
    // Not yet recorded (the member did not stand), so a second join reuses the same holder.
    expect((await service.join(join)).holder).toBe('vnet-a000000');
    expect(started).toEqual(['vnet-a']);
  });

  it('refuses a bad name, another subscription or region', async () => {
    const { service, started } = setUp({ 'vnet-a': known() });
    await expect(service.join({ ...join, vnet: '-a' })).rejects.toMatchObject({ code: 'InvalidResourceName' });
    await expect(service.join({ ...join, region: 'westeurope' })).rejects.toMatchObject({ code: 'InvalidVirtualNetwork', message: expect.stringContaining("region 'eastus'") });
    await expect(service.join({ ...join, subscription: 'sub-2' })).rejects.toMatchObject({ code: 'InvalidVirtualNetwork', message: expect.stringContaining("subscription 'sub-1'") });
    expect(await service.join(join)).toEqual({ vnet: 'vnet-a', holder: 'abc123abc123' });
    expect(started).toEqual([]);
  });

  it("a resumed session takes back a holder that still runs; with it gone, each member is told (VnetUnavailable)", async () => {
    expect(await setUp({ 'vnet-a': known() }).service.holderOf('vnet-a')).toBe('abc123abc123');
    const gone = setUp({ 'vnet-a': known() }, false).service;
    await expect(gone.holderOf('vnet-a')).rejects.toMatchObject({ code: 'VnetUnavailable', message: expect.stringContaining('abc123abc123 is no longer running') });
    await expect(gone.join(join)).rejects.toMatchObject({ code: 'VnetUnavailable' });
    await expect(gone.holderOf('nowhere')).rejects.toMatchObject({ code: 'ResourceNotFound' });
  });

  it('gives the replicas of one VNet distinct loopback ports, past those the log records', () => {
    const { service } = setUp({ 'vnet-a': known({ ports: [5001, 5003] }), 'vnet-b': known({ vnet: 'vnet-b' }) });
    expect([service.nextPort('vnet-a'), service.nextPort('vnet-a'), service.nextPort('vnet-b'), service.nextPort('vnet-b')]).toEqual([5004, 5005, 5001, 5002]);
  });

  it('refuses on a driver without network namespaces', async () => {
    const world = emptyWorld();
    const service = new VnetService({ session: 's1', world }, async () => ({ kind: 'process' }) as unknown as ComputeDriver);
    await expect(service.join(join)).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining('run with --driver docker') });
  });
});
