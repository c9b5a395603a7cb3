import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCENARIO_DIR, tempDir, testPlatform } from './helpers';

describe('compute targets (S8.3, S8.5)', () => {
  it('an AKS cluster serves models, it does not train them: submitRun to it is BadRequest, recorded, and starts nothing', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'aks1', type: 'AKS', agentCount: 1 });
    const before = [...store.readAll()].length;
    await expect(
      platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'aks1', source: join(SCENARIO_DIR, 'code', 'noop'), script: 'train.js' }),
    ).rejects.toMatchObject({ code: 'BadRequest', message: expect.stringContaining("'aks1' is an AKS cluster") });
    expect([...store.readAll()].slice(before).map((e) => e.type)).toEqual(['CommandRejected']);
  });
});
