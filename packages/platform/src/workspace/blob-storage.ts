import { createCipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '@amlsim/core';
import { newDataKey, open, seal } from '../crypto/sealed-box';

/** Directories and files of the storage accounts are the platform's alone: keys, code and model bytes live here. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** The sealed-box layout (crypto/sealed-box.ts): magic(4) | iv(12) | tag(16) | ciphertext. */
const SEALED_MAGIC = Buffer.from('AMS1');
const TAG_OFFSET = 16;

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
  /** The id of the effect that created the account (packages/platform/src/runtime/effect-runner.ts), when one did. */
  madeBy?: string;
};

export type StorageKeyName = 'key1' | 'key2';

/**
 * The workspace's storage account (S4.1–S4.3, S8.2): blob containers and file shares on
 * disk, every blob sealed with AES-256-GCM under the account's data key. The data key is
 * wrapped by the platform root key (platform-managed) or by a customer-managed key in the
 * workspace key vault. Account keys key1/key2 authenticate callers; regenerating one makes
 * the old value fail at once.
 *
 * Blobs are written in chunks (`putBlobChunks`): a large model is encrypted and hashed as it
 * is read, never held whole, and lands under its name only once complete (written beside it,
 * then renamed), so a refused or failed upload leaves no partial blob. Everything under the
 * root is 0700 (directories) and 0600 (files).
 */
export class BlobStorageService {
  private readonly dataKeys = new Map<string, Buffer>();
  private readonly resolvers = new Map<string, CustomerKeyResolver>();

  constructor(
    private readonly root: string,
    private readonly rootKey: Buffer,
    private readonly identityMayUse: (principalId: string, accountScope: string) => boolean,
  ) {
    mkdirSync(root, { recursive: true, mode: DIR_MODE });
  }

  /**
   * Create an account; returns its keys. `madeBy` names the effect that creates it: the same
   * effect carried out again finds the account it made and gets its keys; any other account of
   * that name is a Conflict.
   */
  createAccount(account: string, scope: string, customerKey?: CustomerKeyResolver, madeBy?: string): { key1: string; key2: string } {
    const dir = this.dir(account);
    if (existsSync(dir)) {
      if (madeBy !== undefined && this.exists(account) && this.meta(account).madeBy === madeBy) {
        if (customerKey) this.resolvers.set(account, customerKey);
        return this.listKeys(account);
      }
      throw errors.conflict(`A storage account named '${account}' already exists.`, { account });
    }
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
      ...(madeBy !== undefined ? { madeBy } : {}),
    };
    mkdirSync(join(dir, 'blobs'), { recursive: true, mode: DIR_MODE });
    mkdirSync(join(dir, 'shares'), { recursive: true, mode: DIR_MODE });
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
    mkdirSync(join(this.dir(account), 'blobs', this.safe(container, 'container')), { recursive: true, mode: DIR_MODE });
  }

  createFileShare(credential: StorageCredential, account: string, share: string): void {
    this.authenticate(credential, account);
    mkdirSync(join(this.dir(account), 'shares', this.safe(share, 'file share')), { recursive: true, mode: DIR_MODE });
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
    this.putBlobChunks(credential, account, container, blob, [data]);
  }

  /**
   * Writes a blob from chunks (any iterable: a file read chunk by chunk), encrypting and
   * hashing each as it comes; memory holds one chunk. The blob appears under its name only
   * when complete: if the chunks throw (a file over a limit, an I/O error) or a write fails,
   * nothing is left behind and an existing blob of that name is untouched. Answers the
   * plaintext's size and sha256.
   */
  putBlobChunks(credential: StorageCredential, account: string, container: string, blob: string, chunks: Iterable<Buffer>): { bytes: number; sha256: string } {
    this.authenticate(credential, account);
    const dir = join(this.dir(account), 'blobs', this.safe(container, 'container'));
    if (!existsSync(dir)) throw errors.notFound('container', container, `storage account '${account}'`);
    const key = this.dataKey(account);
    // Partial blobs live outside the container (same file system: the rename is atomic), so a listing never shows one.
    const partialDir = join(this.dir(account), 'partial');
    mkdirSync(partialDir, { recursive: true, mode: DIR_MODE });
    const partial = join(partialDir, `${randomBytes(12).toString('hex')}.partial`);
    const fd = openSync(partial, 'wx', FILE_MODE);
    let done = false;
    try {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(`blob:${account}/${container}/${blob}`));
      const hash = createHash('sha256');
      let bytes = 0;
      writeAll(fd, Buffer.concat([SEALED_MAGIC, iv, Buffer.alloc(16)]));
      for (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.length;
        writeAll(fd, cipher.update(chunk));
      }
      writeAll(fd, cipher.final());
      writeAll(fd, cipher.getAuthTag(), TAG_OFFSET);
      closeSync(fd);
      done = true;
      renameSync(partial, join(dir, `${encodeURIComponent(blob)}.bin`));
      return { bytes, sha256: hash.digest('hex') };
    } catch (error) {
      if (!done) closeSync(fd);
      rmSync(partial, { force: true });
      throw error;
    }
  }

  /** Removes a blob (no error if there is none): what an upload that failed half-way wrote is taken back. */
  deleteBlob(credential: StorageCredential, account: string, container: string, blob: string): void {
    this.authenticate(credential, account);
    rmSync(join(this.dir(account), 'blobs', this.safe(container, 'container'), `${encodeURIComponent(blob)}.bin`), { force: true });
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

  /** Written beside and renamed: a crash mid-write never leaves a torn account file (its keys would be lost). */
  private writeMeta(account: string, meta: AccountFile): void {
    const file = join(this.dir(account), 'account.json');
    const partial = `${file}.${randomBytes(6).toString('hex')}.partial`;
    try {
      const fd = openSync(partial, 'wx', FILE_MODE);
      try {
        writeAll(fd, Buffer.from(JSON.stringify(meta)));
      } finally {
        closeSync(fd);
      }
      renameSync(partial, file);
    } catch (error) {
      rmSync(partial, { force: true });
      throw error;
    }
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

/** writeSync until all of `data` is written (a short write is possible on any file system). */
const writeAll = (fd: number, data: Buffer, position?: number): void => {
  for (let off = 0; off < data.length; ) {
    off += writeSync(fd, data, off, data.length - off, position === undefined ? null : position + off);
  }
};
