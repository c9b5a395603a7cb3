import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStorageService, type StorageCredential } from './blob-storage';

const account = 'wsstore';
const container = 'models';
const identity: StorageCredential = { kind: 'identity', principalId: 'ws-mi', name: 'workspace identity' };

let root: string;
let storage: BlobStorageService;
beforeEach(() => {
  root = join(mkdtempSync(join(tmpdir(), 'amlsim-blobs-')), 'storage');
  storage = new BlobStorageService(root, randomBytes(32), () => true);
  storage.createAccount(account, '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/wsstore');
  storage.createContainer(identity, account, container);
});
afterEach(() => rmSync(join(root, '..'), { recursive: true, force: true }));

const everyFile = (): string[] =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name))
    .sort();

describe('BlobStorageService: chunked writes', () => {
  it('a blob written in chunks reads back whole, with its size and sha256', () => {
    const parts = [randomBytes(1000), randomBytes(1), Buffer.alloc(0), randomBytes(70_000)];
    const whole = Buffer.concat(parts);
    const out = storage.putBlobChunks(identity, account, container, 'models/m/1/w.bin', parts);
    expect(out.bytes).toBe(whole.length);
    expect(out.sha256).toBe(createHash('sha256').update(whole).digest('hex'));
    expect(storage.getBlob(identity, account, container, 'models/m/1/w.bin').equals(whole)).toBe(true);
    // The same format as a blob sealed in one piece: putBlob and putBlobChunks read back alike.
    storage.putBlob(identity, account, container, 'one', whole);
    expect(storage.getBlob(identity, account, container, 'one').equals(whole)).toBe(true);
  });

  it('chunks that fail half-way leave nothing behind, and an existing blob of that name is untouched', () => {
    storage.putBlob(identity, account, container, 'w.bin', Buffer.from('version one'));
    const before = everyFile();
    function* failing() {
      yield randomBytes(4096);
      throw new Error('the source file grew past the limit');
    }
    expect(() => storage.putBlobChunks(identity, account, container, 'w.bin', failing())).toThrow('grew past the limit');
    expect(() => storage.putBlobChunks(identity, account, container, 'new.bin', failing())).toThrow('grew past the limit');
    expect(everyFile()).toEqual(before);
    expect(storage.listBlobs(identity, account, container)).toEqual(['w.bin']);
    expect(storage.getBlob(identity, account, container, 'w.bin').toString()).toBe('version one');
  });

  it('deleteBlob removes a blob and is quiet about one that is not there', () => {
    storage.putBlob(identity, account, container, 'a', Buffer.from('x'));
    storage.deleteBlob(identity, account, container, 'a');
    storage.deleteBlob(identity, account, container, 'a');
    expect(storage.listBlobs(identity, account, container)).toEqual([]);
  });

  it('nothing under the storage root is readable by others: files 0600, directories 0700', () => {
    storage.putBlob(identity, account, container, 'a', Buffer.from('model bytes'));
    storage.putBlobChunks(identity, account, container, 'b', [Buffer.from('more')]);
    storage.regenerateKey(account, 'key1');
    const entries = readdirSync(root, { recursive: true, withFileTypes: true });
    expect(entries.filter((e) => e.isFile()).length).toBe(3);
    for (const e of entries) {
      const path = join(e.parentPath, e.name);
      expect({ path, mode: statSync(path).mode & 0o777 }).toEqual({ path, mode: e.isDirectory() ? 0o700 : 0o600 });
    }
    expect(statSync(root).mode & 0o777).toBe(0o700);
  });
});

describe('BlobStorageService: accounts made by an effect', () => {
  it('the same effect id carried out again finds the account it made, with its keys and blobs; any other create of its name is a Conflict', () => {
    const scope = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/made';
    const keys = storage.createAccount('made', scope, undefined, '12:0');
    storage.createContainer(identity, 'made', 'kept');
    storage.putBlob(identity, 'made', 'kept', 'b', Buffer.from('kept'));
    expect(storage.createAccount('made', scope, undefined, '12:0')).toEqual(keys);
    expect(storage.getBlob(identity, 'made', 'kept', 'b').toString()).toBe('kept');
    expect(() => storage.createAccount('made', scope, undefined, '13:0')).toThrow(/already exists/);
    expect(() => storage.createAccount(account, scope, undefined, '12:0')).toThrow(/already exists/);
  });
});
