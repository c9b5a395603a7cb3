import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform, REGISTRY_PASSWORD_SECRET, virtualClock } from '@amlsim/platform';
import type { SimError } from '@amlsim/core';
import { REPO, tempDir } from './helpers';

const PLATFORM_SRC = join(REPO, 'packages', 'platform', 'src');

describe('inference runs on the compute driver (packages/platform/src/compute/compute-driver.ts InferenceRuntime)', () => {
  it('has one Docker client per platform: only the docker driver (and the start-up sweep) connect to the engine', () => {
    const connecting = readdirSync(PLATFORM_SRC, { recursive: true, withFileTypes: true })
      .map((d) => join(d.parentPath, d.name))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .filter((f) => /\bconnectDocker\(/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(PLATFORM_SRC, f))
      .sort();
    expect(connecting).toEqual(['compute/docker-driver.ts', 'runtime/startup-sweep.ts']);
  });

  it('with --driver process, createImage and deployWebservice are refused before anything but their CommandRejected is recorded', async () => {
    using tmp = tempDir();
    const store = createMemoryEventStore();
    const platform = await createPlatform({
      store,
      dataDir: join(tmp.dir, 'data'),
      clock: virtualClock(),
      driver: 'process',
      tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
    });
    onTestFinished(async () => {
      await platform.close();
    });
    const token = await platform.directory.signIn('alice', { mfa: false });
    await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    writeFileSync(join(tmp.dir, 'model.json'), '{"w":[1,2]}');
    mkdirSync(join(tmp.dir, 'scoring'));
    writeFileSync(join(tmp.dir, 'scoring', 'score.js'), 'export const init = () => {}; export const run = (d) => d;');
    const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: join(tmp.dir, 'model.json') });
    const before = [...store.readAll()].length;

    const refusal = async (p: Promise<unknown>) =>
      p.then(
        () => ({ code: 'success', message: '' }),
        (e: SimError) => ({ code: e.code, message: e.message }),
      );
    const image = await refusal(platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(tmp.dir, 'scoring', 'score.js') }));
    expect(image.code).toBe('BadRequest');
    expect(image.message).toMatch(/^createImage needs the docker driver \(--driver docker\)/);
    const deploy = await refusal(platform.webservices.deploy(token, { workspace: 'ws1', name: 'svc', imageId: 'img_whatever', target: 'ACI' }));
    expect(deploy.code).toBe('BadRequest');
    expect(deploy.message).toMatch(/^deployWebservice needs the docker driver \(--driver docker\)/);

    const after = [...store.readAll()].slice(before);
    expect(after.map((e) => [e.type, e.data.command, e.data.code])).toEqual([
      ['CommandRejected', 'CreateImage', 'BadRequest'],
      ['CommandRejected', 'DeployWebservice', 'BadRequest'],
    ]);
    // No registry was started for it: its password was never made or kept.
    const identity = { principalId: platform.world.workspaces.byId[platform.world.workspaces.byName.ws1!]!.identity!.principalId, name: 'ws1' };
    const vault = platform.world.workspaces.byId[platform.world.workspaces.byName.ws1!]!.keyVault!;
    expect(() => platform.context.vaults.getSecret(identity, vault, REGISTRY_PASSWORD_SECRET)).toThrow();
  });
});
