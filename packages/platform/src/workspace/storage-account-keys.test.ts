import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimError } from '@amlsim/core';
import { BlobStorageService } from './blob-storage';

/** Storage account keys (S4.3): two keys, either works, a regenerated key replaces its old value at once, none in plain text on disk. */
const account = 'wsstore';
const scope = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/wsstore';
let root: string;
let rootKey: Buffer;
let storage: BlobStorageService;
let keys: { key1: string; key2: string };
const maySee = new Set<string>();
beforeEach(() => {
  root = join(mkdtempSync(join(tmpdir(), 'amlsim-keys-')), 'storage');
  rootKey = randomBytes(32);
  maySee.clear();
  storage = new BlobStorageService(root, rootKey, (principalId, accountScope) => maySee.has(`${principalId} ${accountScope}`));
  keys = storage.createAccount(account, scope);
});
afterEach(() => rmSync(join(root, '..'), { recursive: true, force: true }));

const put = (key: string) => storage.createContainer({ kind: 'accountKey', key }, account, 'c1');
const code = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return (err as SimError).code;
  }
};

describe('storage account keys', () => {
  it('creates two distinct 88-character keys that listKeys gives back; both authenticate', () => {
    expect(keys.key1).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(keys.key2).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(keys.key1).not.toBe(keys.key2);
    expect(storage.listKeys(account)).toEqual(keys);
    expect(code(() => put(keys.key1))).toBe('ok');
    expect(code(() => put(keys.key2))).toBe('ok');
  });

  it('refuses a key that is not current: another value, a prefix, an extension, the empty string', () => {
    for (const key of [randomBytes(64).toString('base64'), keys.key1.slice(0, -1), `${keys.key1}A`, '']) expect(code(() => put(key))).toBe('AuthenticationFailed');
  });

  it.each(['key1', 'key2'] as const)('regenerating %s: the old value stops at once, the new one and the other key work', (which) => {
    const other = which === 'key1' ? 'key2' : 'key1';
    const value = storage.regenerateKey(account, which);
    expect(value).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(value).not.toBe(keys[which]);
    expect(storage.listKeys(account)).toEqual({ [which]: value, [other]: keys[other] });
    expect(code(() => put(keys[which]))).toBe('AuthenticationFailed');
    expect(code(() => put(value))).toBe('ok');
    expect(code(() => put(keys[other]))).toBe('ok');
  });

  it('an identity needs a data-plane grant on the account scope; an account key is not an identity', () => {
    const mi = { kind: 'identity' as const, principalId: 'ws-mi', name: 'workspace identity' };
    expect(code(() => storage.createContainer(mi, account, 'c2'))).toBe('Forbidden');
    maySee.add(`ws-mi ${scope}`);
    expect(code(() => storage.createContainer(mi, account, 'c2'))).toBe('ok');
  });

  it('keeps no key in plain text on disk, and a fresh service with the same root key reads them', () => {
    const regenerated = storage.regenerateKey(account, 'key2');
    for (const d of readdirSync(root, { recursive: true, withFileTypes: true }).filter((f) => f.isFile())) {
      const bytes = readFileSync(join(d.parentPath, d.name));
      for (const key of [keys.key1, keys.key2, regenerated]) {
        expect(bytes.includes(key)).toBe(false);
        expect(bytes.includes(Buffer.from(key, 'base64'))).toBe(false);
      }
    }
    expect(new BlobStorageService(root, rootKey, () => false).listKeys(account)).toEqual({ key1: keys.key1, key2: regenerated });
    expect(() => new BlobStorageService(root, randomBytes(32), () => false).listKeys(account)).toThrow();
  });

  it('a sealed key moved to the other slot does not open', () => {
    const file = readdirSync(root, { recursive: true, withFileTypes: true }).find((d) => d.isFile() && d.name.endsWith('.json'));
    expect(file).toBeDefined();
    const path = join(file!.parentPath, file!.name);
    const meta = JSON.parse(readFileSync(path, 'utf8'));
    meta.sealedKeys.key2 = meta.sealedKeys.key1;
    writeFileSync(path, JSON.stringify(meta));
    expect(() => new BlobStorageService(root, rootKey, () => false).listKeys(account)).toThrow();
  });

  it('builds the connection string Azure gives', () => {
    expect(storage.connectionString(account, keys.key1)).toBe(`DefaultEndpointsProtocol=https;AccountName=wsstore;AccountKey=${keys.key1};EndpointSuffix=core.windows.net`);
  });
});
