import { describe, expect, it } from 'vitest';
import { STORAGE_CONNECTION_SECRET } from '@amlsim/platform';
import { tempDir, testPlatform } from './helpers';

const keyOf = (connection: string) => /AccountKey=([^;]+)/.exec(connection)![1]!;

describe('storage key regeneration (S4.3)', () => {
  it('the old key stops working at once, the other keeps working, the vault holds the new one', async () => {
    using tmp = tempDir();
    const { platform } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    const storage = platform.context.storage;
    const identity = { principalId: ws.identity!.principalId, name: 'ws1' };
    const before = platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET);
    const { key1: oldKey1, key2 } = storage.listKeys(ws.storageAccount!);
    expect(keyOf(before)).toBe(oldKey1);
    const put = (key: string) => storage.putBlob({ kind: 'accountKey', key }, ws.storageAccount!, ws.blobContainer!, 'a.txt', Buffer.from('x'));
    put(oldKey1);

    await platform.arm.regenerateStorageKey(token, { workspace: 'ws1', key: 'key1' });

    expect(() => put(oldKey1)).toThrow(expect.objectContaining({ code: 'AuthenticationFailed' }));
    expect(() => put(key2)).not.toThrow();
    const after = platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET);
    expect(keyOf(after)).not.toBe(oldKey1);
    expect(() => put(keyOf(after))).not.toThrow();
    // The previous secret version is kept (Key Vault versions), the latest is the new key.
    expect(platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET, 1)).toBe(before);
  });

  it('a revoked vault grant refuses the regeneration and changes no key', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    const keysBefore = platform.context.storage.listKeys(ws.storageAccount!);
    await platform.arm.revokeIdentityAccess(token, { workspace: 'ws1', resource: 'keyVault' });
    await expect(platform.arm.regenerateStorageKey(token, { workspace: 'ws1', key: 'key1' })).rejects.toMatchObject({ code: 'ManagedIdentityAccessDenied' });
    expect(platform.context.storage.listKeys(ws.storageAccount!)).toEqual(keysBefore);
    expect([...store.readAll()].at(-1)!.type).toBe('CommandRejected');
  });
});
