import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPlatform, type Platform } from '../packages/platform/src/index';
import { openEventStore, type EventStoreKind } from '../packages/store/src/index';

/**
 * A platform for a benchmark: alice, Owner of sub-1, signed in, with workspace ws1, on the
 * docker driver and an in-memory log (or the CLI's default, SQLite in the data dir);
 * `dispose()` closes it and removes its data dir.
 */
export const benchPlatform = async (prefix: string, store: EventStoreKind = 'memory'): Promise<{ platform: Platform; token: string; dataDir: string; dispose(): Promise<void> }> => {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const log = openEventStore(store, dataDir);
  const platform = await createPlatform({
    store: log,
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
      log.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};
