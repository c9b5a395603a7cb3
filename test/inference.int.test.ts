import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { alicePlatform, SCENARIO_DIR, tempDir } from './helpers';

const setUp = async (dir: string) => {
  const { store, platform, token } = await alicePlatform(dir);
  const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIO_DIR, 'models', 'sentiment.json') });
  return { store, platform, token, model };
};

describe('inference (S8.5, S1.5)', () => {
  it('a regenerated key is refused from the next request on; the other key keeps working; no key reaches the log', async () => {
    using tmp = tempDir();
    const { store, platform, token, model } = await setUp(tmp.dir);
    try {
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'svc', imageId: image.imageId, target: 'ACI', authEnabled: true });
      const before = await platform.webservices.getKeys(token, { service: 'svc' });
      const call = (key: string) => platform.callWebservice('svc', { data: { features: [1, 1, 1] }, authorization: `Bearer ${key}` });
      expect((await call(before.primaryKey)).httpStatus).toBe(200);
      await platform.webservices.regenKey(token, { service: 'svc', key: 'Primary' });
      const after = await platform.webservices.getKeys(token, { service: 'svc' });
      expect(after.primaryKey).not.toBe(before.primaryKey);
      expect((await call(before.primaryKey)).httpStatus).toBe(401);
      expect((await call(after.primaryKey)).httpStatus).toBe(200);
      expect((await call(before.secondaryKey)).httpStatus).toBe(200);
      const log = JSON.stringify([...store.readAll()]);
      for (const k of [before.primaryKey, after.primaryKey, before.secondaryKey]) expect(log).not.toContain(k);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });

  it('a replica runs with the cpuCores and memoryGb the deployment asks for (defaults 0.1 / 0.5); out of range is BadRequest and starts nothing', async () => {
    using tmp = tempDir();
    const { store, platform, token, model } = await setUp(tmp.dir);
    try {
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      const deploy = (name: string, extra: { cpuCores?: number; memoryGb?: number }) =>
        platform.webservices.deploy(token, { workspace: 'ws1', name, imageId: image.imageId, target: 'ACI', ...extra });
      await expect(deploy('too-big', { cpuCores: 8 })).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining('cpuCores must be a number from 0.01 to 4; got 8') });
      await expect(deploy('too-small', { memoryGb: 0.01 })).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining('memoryGb') });
      await deploy('small', {});
      await deploy('sized', { cpuCores: 1, memoryGb: 1.5 });
      const requested = [...store.readAll()].filter((e) => e.type === 'WebserviceDeploymentRequested').map((e) => [e.data.service, e.data.cpu, e.data.memoryGb]);
      expect(requested).toEqual([['small', 0.1, 0.5], ['sized', 1, 1.5]]);
      const limits = (service: string) => {
        const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
        const id = docker('ps', '-q', '--filter', `label=dev.amlsim.service=${service}`, '--filter', `label=dev.amlsim.session=${platform.session}`);
        return docker('inspect', '--format', '{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}', id);
      };
      expect(limits('small')).toBe(`100000000 ${0.5 * 2 ** 30}`);
      expect(limits('sized')).toBe(`1000000000 ${1.5 * 2 ** 30}`);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });

  it('an image whose steps take too long ends TimedOut', async () => {
    using tmp = tempDir();
    const { store, platform, token, model } = await setUp(tmp.dir);
    try {
      platform.images.stepTimeoutMs = 1;
      await expect(
        platform.images.createImage(token, { workspace: 'ws1', name: 'slow', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') }),
      ).rejects.toMatchObject({ code: 'ImageBuildFailed', message: expect.stringContaining('no result within 1 ms') });
      const types = [...store.readAll()].map((e) => e.type);
      expect(types).toContain('ImageCreationTimedOut');
      expect(types).not.toContain('ImagePushed');
    } finally {
      await platform.close();
    }
  });
});
