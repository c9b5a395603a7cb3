import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alicePlatform, docker, SCENARIO_DIR, tempDir } from './helpers';

// S3.1: compute in a virtual network. A VNet is one network namespace with loopback only (a
// holder container); its members share that loopback, and nothing else reaches it.
const PROBE = join(SCENARIO_DIR, 'code', 'vnet-probe');

/** The session's container with these labels (one). */
const containerOf = (session: string, ...labels: string[]): string => {
  const ids = docker('ps', '-aq', '--no-trunc', '--filter', `label=dev.amlsim.session=${session}`, ...labels.flatMap((l) => ['--filter', `label=${l}`]));
  expect(ids).toHaveLength(1);
  return ids[0]!;
};
const networkMode = (id: string): string => docker('inspect', '--format', '{{.HostConfig.NetworkMode}}', id)[0]!;

describe('compute in a virtual network (S3.1)', () => {
  it('a run on a VM in vnet-a reaches the AKS replica in vnet-a on 127.0.0.1; a run on a VM outside it does not; the VNet holds only lo', async () => {
    using tmp = tempDir();
    const { store, platform, token } = await alicePlatform(tmp.dir);
    const session = platform.session;
    try {
      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'aks1', type: 'AKS', agentCount: 1, vnet: 'vnet-a' });
      const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIO_DIR, 'models', 'sentiment.json') });
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'svc', imageId: image.imageId, target: 'AKS', compute: 'aks1' });
      await platform.vms.createVm(token, { name: 'dsvm', password: 'Correct-Horse-42', vnet: 'vnet-a' });
      await platform.vms.createVm(token, { name: 'outside', password: 'Correct-Horse-42' });
      await platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm-in', type: 'VirtualMachine', vm: 'dsvm', username: 'azureuser', password: 'Correct-Horse-42' });
      await platform.vms.attachCompute(token, { workspace: 'ws1', name: 'vm-out', type: 'VirtualMachine', vm: 'outside', username: 'azureuser', password: 'Correct-Horse-42' });

      const probe = async (compute: string) => {
        const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'vnet', compute, source: PROBE, script: 'probe.js', args: ['5001'] });
        expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 120_000 })).toMatchObject({ status: 'Completed' });
        return (await platform.ml.getMetrics(token, { runId })).metrics;
      };
      expect(await probe('vm-in')).toMatchObject({ reached: 1, status: 200, score: 2.6 });
      expect(await probe('vm-out')).toMatchObject({ reached: 0 });

      // The facts: one VNet, made by the AKS cluster, with its holder; members name it; the replica its port.
      const log = [...store.readAll()];
      const created = log.filter((e) => e.type === 'VnetCreated');
      expect(created.map((e) => e.data)).toEqual([
        expect.objectContaining({ vnet: 'vnet-a', subscription: 'sub-1', region: 'eastus', driver: 'docker', workspace: 'ws1', member: "compute 'aks1' of workspace 'ws1'" }),
      ]);
      expect(log.find((e) => e.type === 'ReplicaStarted')?.data).toMatchObject({ vnet: 'vnet-a', port: 5001 });
      expect(log.filter((e) => e.type === 'VmCreated').map((e) => [e.data.vm, e.data.vnet])).toEqual([['dsvm', 'vnet-a'], ['outside', undefined]]);
      expect(log.filter((e) => e.type === 'ComputeAttached').map((e) => [e.data.compute, e.data.vnet])).toEqual([['vm-in', 'vnet-a'], ['vm-out', undefined]]);

      // The engine: the holder has network none; the VM and the replica of vnet-a share its namespace; the outside VM has its own.
      const holder = containerOf(session, 'dev.amlsim.role=vnet-holder', 'dev.amlsim.vnet=vnet-a');
      expect(holder.startsWith(String(created[0]!.data.holder))).toBe(true);
      expect(networkMode(holder)).toBe('none');
      const dsvm = containerOf(session, 'dev.amlsim.vm=dsvm');
      expect(networkMode(dsvm)).toMatch(new RegExp(`^container:${String(created[0]!.data.holder)}`));
      expect(networkMode(containerOf(session, 'dev.amlsim.service=svc'))).toBe(networkMode(dsvm));
      expect(networkMode(containerOf(session, 'dev.amlsim.vm=outside'))).toBe('none');
      // Inside the VNet's namespace (seen from its VM): lo and nothing else.
      const dev = docker('exec', dsvm, 'cat', '/proc/net/dev').slice(2).map((l) => l.split(':')[0]!.trim());
      expect(dev).toEqual(['lo']);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
    // The holder went with the session.
    expect(docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)).toEqual([]);
  }, 240_000);

  it('refuses a bad name, another region or subscription, and an AKS deployment naming another VNet; an ACI deployment may join one', async () => {
    using tmp = tempDir();
    const { store, platform, token } = await alicePlatform(tmp.dir);
    try {
      await expect(platform.ml.createCompute(token, { workspace: 'ws1', name: 'c0', type: 'AKS', vnet: 'bad name' })).rejects.toMatchObject({
        code: 'InvalidResourceName',
        message: expect.stringContaining("holds ' '"),
      });
      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'aks1', type: 'AKS', agentCount: 1, vnet: 'vnet-a' });
      await expect(platform.ml.createCompute(token, { workspace: 'ws1', name: 'west', type: 'AKS', region: 'westeurope', vnet: 'vnet-a' })).rejects.toMatchObject({
        code: 'InvalidVirtualNetwork',
        message: expect.stringContaining("the VNet is in region 'eastus', compute 'west' of workspace 'ws1' in 'westeurope'"),
      });
      await expect(platform.vms.createVm(token, { name: 'vm2', vnet: 'vnet-a', subscription: 'sub-2' })).rejects.toMatchObject({ code: 'InvalidVirtualNetwork', message: expect.stringContaining("subscription 'sub-1'") });
      await expect(platform.vms.createVm(token, { name: 'vm3', vnet: 'vnet-new' })).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining('name its region and subscription') });
      const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIO_DIR, 'models', 'sentiment.json') });
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      await expect(platform.webservices.deploy(token, { workspace: 'ws1', name: 'other', imageId: image.imageId, target: 'AKS', compute: 'aks1', vnet: 'vnet-b' })).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining("AKS replicas run in their cluster's virtual network") });
      // Two replicas in one VNet share its namespace: each takes its own port.
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'aks-svc', imageId: image.imageId, target: 'AKS', compute: 'aks1' });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'aci-svc', imageId: image.imageId, target: 'ACI', vnet: 'vnet-a' });
      const log = [...store.readAll()];
      expect(log.filter((e) => e.type === 'ReplicaStarted').map((e) => [e.data.service, e.data.vnet, e.data.port])).toEqual([['aks-svc', 'vnet-a', 5001], ['aci-svc', 'vnet-a', 5002]]);
      expect(log.filter((e) => e.type === 'VnetCreated')).toHaveLength(1);
      // Refused commands recorded nothing but their refusal.
      expect(log.filter((e) => e.type === 'ComputeCreated').map((e) => e.data.compute)).toEqual(['aks1']);
      expect(log.filter((e) => e.type === 'VmCreated')).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  }, 240_000);

  it('the process driver has no network namespaces: a VNet is refused there, and nothing is recorded', async () => {
    using tmp = tempDir();
    const { store, platform, token } = await alicePlatform(tmp.dir, 'process');
    try {
      await expect(platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', vnet: 'vnet-a' })).rejects.toMatchObject({
        code: 'BadRequest',
        message: expect.stringContaining('--driver docker'),
      });
      expect([...store.readAll()].filter((e) => e.type === 'VnetCreated' || e.type === 'ComputeCreated')).toEqual([]);
    } finally {
      await platform.close();
    }
  });
});
