import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '@amlsim/core';
import { fingerprint, newDataKey, open, seal } from '../crypto/sealed-box';

export type VaultCaller = { principalId: string; name: string };

/** Decides whether a principal may use a vault (S6.3); backed by the log's role assignments. */
export type VaultAccessCheck = (principalId: string, vaultScope: string) => boolean;

/** `madeBy`: the id of the effect that created the vault (packages/platform/src/runtime/effect-runner.ts), when one did. */
type VaultFile = { scope: string; wrappedKey: string; madeBy?: string };

/**
 * Key vaults on disk (S6.1–S6.3). Every secret and key is sealed with the vault's own data
 * key, itself sealed with the platform root key, so no value is ever plaintext on disk.
 * Reads and writes need a grant on the vault's scope; the platform's own vault (S6.2)
 * is reached only by the platform principal.
 */
export class KeyVaultService {
  private readonly dataKeys = new Map<string, Buffer>();

  constructor(
    private readonly root: string,
    private readonly rootKey: Buffer,
    private readonly canAccess: VaultAccessCheck,
  ) {
    // Secret names are data too: no other host user may list a vault (docs/security.md).
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  /**
   * Create a vault. `madeBy` names the effect that creates it: the same effect carried out
   * again finds the vault it made and reuses it ('reused'); any other vault of that name is a Conflict.
   */
  create(vault: string, scope: string, madeBy?: string): 'created' | 'reused' {
    const dir = this.dir(vault);
    if (existsSync(dir)) {
      if (madeBy !== undefined && this.exists(vault) && this.meta(vault).madeBy === madeBy) return 'reused';
      throw errors.conflict(`A key vault named '${vault}' already exists.`, { vault });
    }
    mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
    const dataKey = newDataKey();
    const file: VaultFile = { scope, wrappedKey: seal(this.rootKey, dataKey, `vault:${vault}`).toString('base64'), ...(madeBy !== undefined ? { madeBy } : {}) };
    writeFileSync(join(dir, 'vault.json'), JSON.stringify(file), { mode: 0o600 });
    this.dataKeys.set(vault, dataKey);
    return 'created';
  }

  delete(vault: string): void {
    rmSync(this.dir(vault), { recursive: true, force: true });
    this.dataKeys.delete(vault);
  }

  exists(vault: string): boolean {
    return existsSync(join(this.dir(vault), 'vault.json'));
  }

  scopeOf(vault: string): string {
    return this.meta(vault).scope;
  }

  /** Write a new version of a secret; returns its version and fingerprint (never the value). */
  setSecret(caller: VaultCaller, vault: string, name: string, value: string): { version: number; fingerprint: string } {
    this.check(caller, vault);
    const version = this.versions(vault, name).length + 1;
    const sealed = seal(this.dataKey(vault), Buffer.from(value, 'utf8'), `secret:${vault}/${name}/${version}`);
    writeFileSync(join(this.dir(vault), 'secrets', `${encodeURIComponent(name)}.${version}.bin`), sealed, { mode: 0o600 });
    return { version, fingerprint: fingerprint(value) };
  }

  /** The latest (or a given) version of a secret. */
  getSecret(caller: VaultCaller, vault: string, name: string, version?: number): string {
    this.check(caller, vault);
    const versions = this.versions(vault, name);
    const v = version ?? versions.at(-1);
    if (v === undefined || !versions.includes(v)) throw errors.notFound('secret', name, `key vault '${vault}'`);
    const sealed = readFileSync(join(this.dir(vault), 'secrets', `${encodeURIComponent(name)}.${v}.bin`));
    return open(this.dataKey(vault), sealed, `secret:${vault}/${name}/${v}`).toString('utf8');
  }

  /**
   * The latest value of every secret in every vault the caller may read (the platform principal:
   * all of them). For invariants ("no password in any vault", S6.2), never for a client API.
   */
  listAllLatestSecrets(caller: VaultCaller): Array<{ vault: string; secret: string; value: string }> {
    const out: Array<{ vault: string; secret: string; value: string }> = [];
    for (const vault of readdirSync(this.root).filter((v) => /^[A-Za-z0-9-]{3,64}$/.test(v) && this.exists(v)).sort()) {
      if (!this.canAccess(caller.principalId, this.scopeOf(vault))) continue;
      const names = new Set(
        readdirSync(join(this.dir(vault), 'secrets'))
          .map((f) => /^(.+)\.\d+\.bin$/.exec(f)?.[1])
          .filter((n): n is string => n !== undefined)
          .map((n) => decodeURIComponent(n)),
      );
      for (const secret of [...names].sort()) out.push({ vault, secret, value: this.getSecret(caller, vault, secret) });
    }
    return out;
  }

  /** Create a 256-bit key (a customer-managed key, S4.1) kept only inside the vault. */
  createKey(caller: VaultCaller, vault: string, name: string): { version: number; fingerprint: string } {
    const material = randomBytes(32).toString('base64');
    return this.setSecret(caller, vault, `key:${name}`, material);
  }

  /** Does the vault hold a key of this name? */
  hasKey(vault: string, name: string): boolean {
    return this.versions(vault, `key:${name}`).length > 0;
  }

  /** Wrap a data key with a vault key: the key material never leaves the vault. */
  wrapKey(caller: VaultCaller, vault: string, name: string, dataKey: Buffer): Buffer {
    const kek = Buffer.from(this.getSecret(caller, vault, `key:${name}`), 'base64');
    return seal(kek, dataKey, `wrap:${vault}/${name}`);
  }

  unwrapKey(caller: VaultCaller, vault: string, name: string, wrapped: Buffer): Buffer {
    const kek = Buffer.from(this.getSecret(caller, vault, `key:${name}`), 'base64');
    return open(kek, wrapped, `wrap:${vault}/${name}`);
  }

  private check(caller: VaultCaller, vault: string): void {
    if (!this.exists(vault)) throw errors.notFound('key vault', vault);
    if (!this.canAccess(caller.principalId, this.scopeOf(vault))) throw errors.forbidden('Key vault', vault, caller.name);
  }

  private versions(vault: string, name: string): number[] {
    const prefix = `${encodeURIComponent(name)}.`;
    return readdirSync(join(this.dir(vault), 'secrets'))
      .filter((f) => f.startsWith(prefix) && f.endsWith('.bin'))
      .map((f) => Number(f.slice(prefix.length, -4)))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => a - b);
  }

  private meta(vault: string): VaultFile {
    if (!this.exists(vault)) throw errors.notFound('key vault', vault);
    return JSON.parse(readFileSync(join(this.dir(vault), 'vault.json'), 'utf8')) as VaultFile;
  }

  private dataKey(vault: string): Buffer {
    let key = this.dataKeys.get(vault);
    if (!key) {
      key = open(this.rootKey, Buffer.from(this.meta(vault).wrappedKey, 'base64'), `vault:${vault}`);
      this.dataKeys.set(vault, key);
    }
    return key;
  }

  private dir(vault: string): string {
    if (!/^[A-Za-z0-9-]{3,64}$/.test(vault)) throw errors.badRequest(`'${vault}' is not a valid key vault name.`, { vault });
    return join(this.root, vault);
  }
}
