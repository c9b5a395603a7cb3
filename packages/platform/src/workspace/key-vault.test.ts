import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SimError } from '@amlsim/core';
import { fingerprint, newDataKey } from '../crypto/sealed-box';
import { KeyVaultService } from './key-vault';

/** Key vaults (S6.1–S6.3): sealed at rest, versioned, and only for principals with a grant on the vault's scope. */
const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

const alice = { principalId: 'p-alice', name: 'alice' };
const mallory = { principalId: 'p-mallory', name: 'mallory' };

const setup = () => {
  const root = join(mkdtempSync(join(tmpdir(), 'amlsim-kv-')), 'vaults');
  roots.push(join(root, '..'));
  const rootKey = newDataKey();
  // alice holds a grant on /ws1 (and so on anything below it); nobody else on anything.
  const canAccess = (principalId: string, scope: string) => principalId === 'p-alice' && (scope === '/ws1' || scope.startsWith('/ws1/'));
  const vaults = new KeyVaultService(root, rootKey, canAccess);
  vaults.create('ws1kv', '/ws1');
  return { root, rootKey, canAccess, vaults };
};

const refusal = (fn: () => unknown): SimError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error('expected a refusal');
};

describe('key vaults', () => {
  it('keeps every version of a secret: the latest by default, an older one on request; the answer to a write is version and fingerprint only', () => {
    const { vaults } = setup();
    expect(vaults.setSecret(alice, 'ws1kv', 'conn', 'AccountKey=one')).toEqual({ version: 1, fingerprint: fingerprint('AccountKey=one') });
    expect(vaults.setSecret(alice, 'ws1kv', 'conn', 'AccountKey=two')).toEqual({ version: 2, fingerprint: fingerprint('AccountKey=two') });
    expect(vaults.getSecret(alice, 'ws1kv', 'conn')).toBe('AccountKey=two');
    expect(vaults.getSecret(alice, 'ws1kv', 'conn', 1)).toBe('AccountKey=one');
    expect(vaults.getSecret(alice, 'ws1kv', 'conn', 2)).toBe('AccountKey=two');
    expect(refusal(() => vaults.getSecret(alice, 'ws1kv', 'conn', 3)).code).toBe('ResourceNotFound');
    expect(refusal(() => vaults.getSecret(alice, 'ws1kv', 'missing')).code).toBe('ResourceNotFound');
  });

  it('versions of one secret are counted apart from a secret whose name it prefixes, and sort numerically past 9', () => {
    const { vaults } = setup();
    for (let i = 1; i <= 11; i++) vaults.setSecret(alice, 'ws1kv', 'a', `value-${i}`);
    vaults.setSecret(alice, 'ws1kv', 'ab', 'other');
    expect(vaults.setSecret(alice, 'ws1kv', 'ab', 'other-2').version).toBe(2);
    expect(vaults.getSecret(alice, 'ws1kv', 'a')).toBe('value-11');
    expect(vaults.getSecret(alice, 'ws1kv', 'a', 10)).toBe('value-10');
    expect(vaults.setSecret(alice, 'ws1kv', 'a', 'value-12').version).toBe(12);
  });

  it('refuses a principal without a grant on the vault scope, for reads and writes, and a vault that does not exist', () => {
    const { vaults } = setup();
    vaults.setSecret(alice, 'ws1kv', 'conn', 'AccountKey=one');
    const read = refusal(() => vaults.getSecret(mallory, 'ws1kv', 'conn'));
    expect(read.code).toBe('Forbidden');
    expect(read.details).toMatchObject({ resource: 'ws1kv', principal: 'mallory' });
    expect(refusal(() => vaults.setSecret(mallory, 'ws1kv', 'conn', 'AccountKey=evil')).code).toBe('Forbidden');
    expect(vaults.getSecret(alice, 'ws1kv', 'conn')).toBe('AccountKey=one');
    expect(refusal(() => vaults.getSecret(alice, 'nokv', 'conn')).code).toBe('ResourceNotFound');
    expect(refusal(() => vaults.scopeOf('nokv')).code).toBe('ResourceNotFound');
  });

  it('refuses a vault name that could leave the vault root', () => {
    const { vaults } = setup();
    for (const name of ['../etc', 'a/b', 'ab', 'x'.repeat(65), 'ws1kv/']) expect(refusal(() => vaults.getSecret(alice, name, 'conn')).code).toBe('BadRequest');
    expect(() => vaults.create('x'.repeat(64), '/ws1')).not.toThrow();
  });

  it('a second vault of the same name is a conflict; a deleted vault is gone', () => {
    const { vaults } = setup();
    expect(refusal(() => vaults.create('ws1kv', '/ws1')).code).toBe('Conflict');
    expect(vaults.exists('ws1kv')).toBe(true);
    vaults.delete('ws1kv');
    expect(vaults.exists('ws1kv')).toBe(false);
    expect(refusal(() => vaults.getSecret(alice, 'ws1kv', 'conn')).code).toBe('ResourceNotFound');
  });

  it('holds no value in plain text on disk, and only its owner may read the files', () => {
    const { root, vaults } = setup();
    vaults.setSecret(alice, 'ws1kv', 'conn', 'AccountKey=plain-text-never');
    const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) {
      const path = join(f.parentPath, f.name);
      expect(readFileSync(path).includes('plain-text-never')).toBe(false);
      expect(statSync(path).mode & 0o077).toBe(0);
    }
    expect(statSync(root).mode & 0o077).toBe(0);
    expect(statSync(join(root, 'ws1kv', 'secrets')).mode & 0o077).toBe(0);
  });

  it('a fresh service with the same root key reads what the first wrote; another root key cannot', () => {
    const { root, rootKey, canAccess, vaults } = setup();
    vaults.setSecret(alice, 'ws1kv', 'conn', 'AccountKey=persisted');
    expect(new KeyVaultService(root, rootKey, canAccess).getSecret(alice, 'ws1kv', 'conn')).toBe('AccountKey=persisted');
    expect(() => new KeyVaultService(root, newDataKey(), canAccess).getSecret(alice, 'ws1kv', 'conn')).toThrow();
  });

  it('a sealed secret moved to another name or version does not open', () => {
    const { root, vaults } = setup();
    vaults.setSecret(alice, 'ws1kv', 'a', 'value-a');
    vaults.setSecret(alice, 'ws1kv', 'b', 'value-b');
    const secrets = join(root, 'ws1kv', 'secrets');
    writeFileSync(join(secrets, 'b.1.bin'), readFileSync(join(secrets, 'a.1.bin')));
    expect(() => vaults.getSecret(alice, 'ws1kv', 'b')).toThrow();
  });

  it('a key never leaves the vault: wrap and unwrap round-trip, and need the grant', () => {
    const { vaults } = setup();
    const created = vaults.createKey(alice, 'ws1kv', 'cmk');
    expect(created.version).toBe(1);
    const dataKey = newDataKey();
    const wrapped = vaults.wrapKey(alice, 'ws1kv', 'cmk', dataKey);
    expect(wrapped.includes(dataKey)).toBe(false);
    expect(vaults.unwrapKey(alice, 'ws1kv', 'cmk', wrapped).equals(dataKey)).toBe(true);
    expect(refusal(() => vaults.unwrapKey(mallory, 'ws1kv', 'cmk', wrapped)).code).toBe('Forbidden');
    vaults.createKey(alice, 'ws1kv', 'other');
    expect(() => vaults.unwrapKey(alice, 'ws1kv', 'other', wrapped)).toThrow();
  });

  it('listAllLatestSecrets gives the latest value of every secret in the vaults the caller may read, sorted, and skips other entries', () => {
    const { root, vaults } = setup();
    vaults.create('ws2kv', '/ws2');
    vaults.create('ws1-sub', '/ws1/sub');
    vaults.setSecret(alice, 'ws1kv', 'z/name', 'z1');
    vaults.setSecret(alice, 'ws1kv', 'z/name', 'z2');
    vaults.setSecret(alice, 'ws1kv', 'a', 'a1');
    vaults.setSecret(alice, 'ws1-sub', 'm', 'm1');
    writeFileSync(join(root, 'ws1kv', 'secrets', 'notes.txt'), 'not a secret');
    mkdirSync(join(root, 'not_a.vault'));
    expect(vaults.listAllLatestSecrets(alice)).toEqual([
      { vault: 'ws1-sub', secret: 'm', value: 'm1' },
      { vault: 'ws1kv', secret: 'a', value: 'a1' },
      { vault: 'ws1kv', secret: 'z/name', value: 'z2' },
    ]);
    expect(vaults.listAllLatestSecrets(mallory)).toEqual([]);
  });

  it('a vault made by an effect is reused by the same effect id carried out again; any other create of its name is a Conflict', () => {
    const { vaults } = setup();
    expect(vaults.create('madekv', '/ws1/kv', '7:0')).toBe('created');
    vaults.setSecret(alice, 'madekv', 'kept', 'v1');
    expect(vaults.create('madekv', '/ws1/kv', '7:0')).toBe('reused');
    expect(vaults.getSecret(alice, 'madekv', 'kept')).toBe('v1');
    expect(refusal(() => vaults.create('madekv', '/ws1/kv', '9:0')).code).toBe('Conflict');
    expect(refusal(() => vaults.create('madekv', '/ws1/kv')).code).toBe('Conflict');
    expect(refusal(() => vaults.create('ws1kv', '/ws1', '7:0')).code).toBe('Conflict');
    expect(vaults.hasKey('madekv', 'cmk')).toBe(false);
    vaults.createKey(alice, 'madekv', 'cmk');
    expect(vaults.hasKey('madekv', 'cmk')).toBe(true);
  });
});
