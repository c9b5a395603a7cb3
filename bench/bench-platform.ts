import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, type Platform } from '../packages/platform/src/index';
import { createMemoryEventStore } from '../packages/store/src/index';

/**
 * A platform for a benchmark: alice, Owner of sub-1, signed in, with workspace ws1, on the
 * docker driver and an in-memory log; `dispose()` closes it and removes its data dir.
 */
export const benchPlatform = async (prefix: string): Promise<{ platform: Platform; token: string; dataDir: string; dispose(): Promise<void> }> => {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const platform = await createPlatform({
    store: createMemoryEventStore(),
    dataDir,
    driver: 'docker',
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  return {
    platform,
    token,
    dataDir,
    dispose: async () => {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};
