import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '@amlsim/core';
import { newDataKey, open, seal } from '../crypto/sealed-box';

/** How a caller proves itself to a storage account: an account key (S4.3) or an identity with a data-plane grant. */
export type StorageCredential = { kind: 'accountKey'; key: string } | { kind: 'identity'; principalId: string; name: string };

/** Unwraps the account's data key with the customer-managed key held in a key vault (S4.1). */
export type CustomerKeyResolver = {
  keyRef: { vault: string; key: string };
  wrap: (dataKey: Buffer) => Buffer;
  unwrap: (wrapped: Buffer) => Buffer;
};

type AccountFile = {
  scope: string;
  encryption: 'platform-managed' | 'customer-managed';
  keyRef?: { vault: string; key: string };
  wrappedDataKey: string;
  /** key1/key2 sealed with the platform root key: the account must be able to check them. */
  sealedKeys: { key1: string; key2: string };
};

export type StorageKeyName = 'key1' | 'key2';

/**
 * The workspace's storage account (S4.1–S4.3, S8.2): blob containers and file shares on
 * disk, every blob sealed with AES-256-GCM under the account's data key. The data key is
 * wrapped by the platform root key (platform-managed) or by a customer-managed key in the
 * workspace key vault. Account keys key1/key2 authenticate callers; regenerating one makes
 * the old value fail at once.
 */
export class BlobStorageService {
  private readonly dataKeys = new Map<string, Buffer>();
  private readonly resolvers = new Map<string, CustomerKeyResolver>();

  constructor(
    private readonly root: string,
    private readonly rootKey: Buffer,
    private readonly identityMayUse: (principalId: string, accountScope: string) => boolean,
  ) {
    mkdirSync(root, { recursive: true });
  }

  createAccount(account: string, scope: string, customerKey?: CustomerKeyResolver): { key1: string; key2: string } {
    const dir = this.dir(account);
    if (existsSync(dir)) throw errors.conflict(`A storage account named '${account}' already exists.`, { account });
    const dataKey = newDataKey();
    const key1 = randomBytes(64).toString('base64');
    const key2 = randomBytes(64).toString('base64');
    const wrapped = customerKey ? customerKey.wrap(dataKey) : seal(this.rootKey, dataKey, `account:${account}`);
    const file: AccountFile = {
      scope,
      encryption: customerKey ? 'customer-managed' : 'platform-managed',
      ...(customerKey ? { keyRef: customerKey.keyRef } : {}),
      wrappedDataKey: wrapped.toString('base64'),
      sealedKeys: { key1: this.sealKey(account, 'key1', key1), key2: this.sealKey(account, 'key2', key2) },
    };
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    mkdirSync(join(dir, 'shares'), { recursive: true });
    this.writeMeta(account, file);
    this.dataKeys.set(account, dataKey);
    if (customerKey) this.resolvers.set(account, customerKey);
    return { key1, key2 };
  }

  /** Re-attach a customer-key resolver for an account created earlier (e.g. after a restart). */
  useCustomerKey(account: string, resolver: CustomerKeyResolver): void {
    this.resolvers.set(account, resolver);
  }

  deleteAccount(account: string): void {
    rmSync(this.dir(account), { recursive: true, force: true });
    this.dataKeys.delete(account);
    this.resolvers.delete(account);
  }

  exists(account: string): boolean {
    return existsSync(join(this.dir(account), 'account.json'));
  }

  encryptionOf(account: string): AccountFile['encryption'] {
    return this.meta(account).encryption;
  }

  /** S4.3: a new value for one key; the old one stops working immediately. Management plane: the caller is authorized by ARM. */
  regenerateKey(account: string, which: StorageKeyName): string {
    const meta = this.meta(account);
    const value = randomBytes(64).toString('base64');
    meta.sealedKeys[which] = this.sealKey(account, which, value);
    this.writeMeta(account, meta);
    return value;
  }

  /** Management plane (ARM listKeys): the platform reads the keys to build connection strings. */
  listKeys(account: string): { key1: string; key2: string } {
    const meta = this.meta(account);
    return { key1: this.openKey(account, 'key1', meta.sealedKeys.key1), key2: this.openKey(account, 'key2', meta.sealedKeys.key2) };
  }

  connectionString(account: string, key: string): string {
    return `DefaultEndpointsProtocol=https;AccountName=${account};AccountKey=${key};EndpointSuffix=core.windows.net`;
  }

  createContainer(credential: StorageCredential, account: string, container: string): void {
    this.authenticate(credential, account);
    mkdirSync(join(this.dir(account), 'blobs', this.safe(container, 'container')), { recursive: true });
  }

  createFileShare(credential: StorageCredential, account: string, share: string): void {
    this.authenticate(credential, account);
    mkdirSync(join(this.dir(account), 'shares', this.safe(share, 'file share')), { recursive: true });
  }

  /**
   * Host directory of a file share, as a compute node mounts it (S8.3 step 2). Azure Files
   * serves a mounted share decrypted to its client, so files here are the mount's view.
   */
  fileShareDir(credential: StorageCredential, account: string, share: string): string {
    this.authenticate(credential, account);
    const dir = join(this.dir(account), 'shares', this.safe(share, 'file share'));
    if (!existsSync(dir)) throw errors.notFound('file share', share, `storage account '${account}'`);
    return dir;
  }

  putBlob(credential: StorageCredential, account: string, container: string, blob: string, data: Buffer): void {
    this.authenticate(credential, account);
    const dir = join(this.dir(account), 'blobs', this.safe(container, 'container'));
    if (!existsSync(dir)) throw errors.notFound('container', container, `storage account '${account}'`);
    writeFileSync(join(dir, `${encodeURIComponent(blob)}.bin`), seal(this.dataKey(account), data, `blob:${account}/${container}/${blob}`));
  }

  getBlob(credential: StorageCredential, account: string, container: string, blob: string): Buffer {
    this.authenticate(credential, account);
    const file = join(this.dir(account), 'blobs', this.safe(container, 'container'), `${encodeURIComponent(blob)}.bin`);
    if (!existsSync(file)) throw errors.notFound('blob', blob, `${account}/${container}`);
    return open(this.dataKey(account), readFileSync(file), `blob:${account}/${container}/${blob}`);
  }

  listBlobs(credential: StorageCredential, account: string, container: string): string[] {
    this.authenticate(credential, account);
    const dir = join(this.dir(account), 'blobs', this.safe(container, 'container'));
    if (!existsSync(dir)) throw errors.notFound('container', container, `storage account '${account}'`);
    return readdirSync(dir).map((f) => decodeURIComponent(f.slice(0, -4))).sort();
  }

  private authenticate(credential: StorageCredential, account: string): void {
    const meta = this.meta(account);
    if (credential.kind === 'identity') {
      if (!this.identityMayUse(credential.principalId, meta.scope)) throw errors.forbidden('Storage account', account, credential.name);
      return;
    }
    const presented = Buffer.from(credential.key);
    for (const which of ['key1', 'key2'] as const) {
      const current = Buffer.from(this.openKey(account, which, meta.sealedKeys[which]));
      if (current.length === presented.length && timingSafeEqual(current, presented)) return;
    }
    throw errors.storageAuthenticationFailed(account);
  }

  private dataKey(account: string): Buffer {
    let key = this.dataKeys.get(account);
    if (!key) {
      const meta = this.meta(account);
      const wrapped = Buffer.from(meta.wrappedDataKey, 'base64');
      if (meta.encryption === 'customer-managed') {
        const resolver = this.resolvers.get(account);
        if (!resolver) throw errors.badRequest(`Storage account '${account}' is encrypted with a customer-managed key that is not reachable.`);
        key = resolver.unwrap(wrapped);
      } else {
        key = open(this.rootKey, wrapped, `account:${account}`);
      }
      this.dataKeys.set(account, key);
    }
    return key;
  }

  private sealKey(account: string, which: StorageKeyName, value: string): string {
    return seal(this.rootKey, Buffer.from(value), `accountkey:${account}/${which}`).toString('base64');
  }

  private openKey(account: string, which: StorageKeyName, sealed: string): string {
    return open(this.rootKey, Buffer.from(sealed, 'base64'), `accountkey:${account}/${which}`).toString('utf8');
  }

  private meta(account: string): AccountFile {
    const file = join(this.dir(account), 'account.json');
    if (!existsSync(file)) throw errors.notFound('storage account', account);
    return JSON.parse(readFileSync(file, 'utf8')) as AccountFile;
  }

  private writeMeta(account: string, meta: AccountFile): void {
    writeFileSync(join(this.dir(account), 'account.json'), JSON.stringify(meta), { mode: 0o600 });
  }

  private dir(account: string): string {
    return join(this.root, this.safe(account, 'storage account'));
  }

  private safe(name: string, what: string): string {
    if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(name)) {
      throw errors.badRequest(`'${name}' is not a valid ${what} name (lower-case letters, digits and '-', 2-63 characters).`, { name });
    }
    return name;
  }
}
