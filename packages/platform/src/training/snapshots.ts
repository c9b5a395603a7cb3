import { createHash } from 'node:crypto';
import { lstat, opendir, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SimError, errors } from '@amlsim/core';
import type { BlobStorageService, StorageCredential } from '../workspace/blob-storage';
import { fileChunks } from '../workspace/file-chunks';
import { type IgnoreFileName, loadIgnoreRules } from './ignore-rules';

/**
 * Code snapshots (S8.2, S4.1): an experiment directory packed, content-addressed and kept in
 * the workspace's blob storage (encrypted at rest by BlobStorageService). Runs reference a
 * snapshot by id (S8.3).
 *
 * - Packing honours `.amlignore`, else `.gitignore` (see ignore-rules.ts); `.git/` is never
 *   packed; ignored directories are not descended into; empty directories are not recorded.
 * - Symbolic links are never followed: a symlink that is not ignored is an error naming it
 *   (`SnapshotUnsupportedFile`), so nothing outside the root can leak into a snapshot. The
 *   same goes for sockets, FIFOs and devices. Ignore them in `.amlignore` to proceed (for a
 *   symlink, a pattern matching it either as a file or as a directory, e.g. `venv/`, will do).
 * - The platform's limits (300 MB, 2000 files) are checked while walking: the walk stops as
 *   soon as one is exceeded, before any content is read (a file of any size, a sparse 3 GB
 *   one too, is measured, never read). Files are then read in bounded chunks, and a file that
 *   grew past the limit since it was measured is refused as soon as it does, not read whole.
 *   A refused snapshot stores nothing (SnapshotStore writes a blob only when complete).
 * - Identity: `sha256-<hex>` over a canonical encoding of (path, mode, size, sha256(content))
 *   of every file, in path order. Same content → same id; a renamed file, a changed byte or
 *   a changed executable bit → another id; mtimes, owners and directory order do not count.
 */

/** Azure ML SDK v1 `SNAPSHOT_MAX_SIZE_BYTES` (300 MiB) and `SNAPSHOT_MAX_FILES`. */
export const SNAPSHOT_LIMITS = { maxBytes: 300 * 1024 * 1024, maxFiles: 2000 } as const;

export type SnapshotLimits = { maxBytes: number; maxFiles: number };
export type PackOptions = Partial<SnapshotLimits>;

/** Only the executable bit is kept, as git does: 0o755 when the owner may execute, else 0o644. */
export type SnapshotFileMode = 0o644 | 0o755;

export type SnapshotManifestEntry = { path: string; mode: SnapshotFileMode; size: number; sha256: string };
export type SnapshotFile = SnapshotManifestEntry & { content: Buffer };

export type PackedSnapshot = {
  snapshotId: string;
  /** The directory as given by the caller. */
  rootDir: string;
  /** Which ignore file was honoured, if any. */
  ignoreFile: IgnoreFileName | null;
  /** Sorted by path (code-unit order). */
  files: SnapshotFile[];
  fileCount: number;
  totalBytes: number;
};

export type UnpackedSnapshot = { snapshotId: string; files: SnapshotFile[]; fileCount: number; totalBytes: number };

export type SavedSnapshot = { snapshotId: string; reused: boolean; fileCount: number; totalBytes: number };

const ONE_MB = 1024 * 1024;
const RULE = '====================================================================';
const SNAPSHOT_ID = /^sha256-[0-9a-f]{64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAGIC = Buffer.from('AMLSNAP1');
const FORMAT_VERSION = 1;

/** Python's str(float) for the MB figure in the SDK message: 300 → "300.0". */
const pythonFloat = (n: number): string => (Number.isInteger(n) ? `${n}.0` : String(n));

/**
 * Errors raised here (not in the core catalog: this file is owned separately). Codes:
 * `SnapshotTooLarge` (413), `SnapshotCorrupt` (500), `SnapshotUnsupportedFile` (400).
 */
export const snapshotErrors = {
  /** Azure ML SDK v1 `_validate_snapshot_size` wording. */
  tooLargeBytes: (directory: string, maxBytes: number, measuredBytes: number, absolutePath: string) =>
    new SimError(
      'SnapshotTooLarge',
      `${RULE}\n\nWhile attempting to take snapshot of ${directory}\n` +
        `Your total snapshot size exceeds the limit of ${pythonFloat(maxBytes / ONE_MB)} MB.\n` +
        `Please see http://aka.ms/aml-largefiles on how to work with large files.\n\n${RULE}`,
      {
        status: 413,
        details: { directory, absolutePath, limit: 'size', maxBytes, measuredBytes, stoppedEarly: true },
      },
    ),
  /** Azure ML SDK v1 `_validate_snapshot_file_count` wording. */
  tooManyFiles: (directory: string, maxFiles: number, measuredFiles: number, absolutePath: string) =>
    new SimError(
      'SnapshotTooLarge',
      `${RULE}\n\nWhile attempting to take snapshot of ${directory}\n` + `Your project exceeds the file limit of ${maxFiles}.\n\n${RULE}`,
      {
        status: 413,
        details: { directory, absolutePath, limit: 'fileCount', maxFiles, measuredFiles, stoppedEarly: true },
      },
    ),
  corrupt: (why: string, details: Record<string, unknown> = {}) =>
    new SimError('SnapshotCorrupt', `The snapshot is corrupt: ${why}. It was not used.`, { status: 500, details: { why, ...details } }),
  unsupportedFile: (directory: string, path: string, kind: string, target?: string) =>
    new SimError(
      'SnapshotUnsupportedFile',
      `While attempting to take snapshot of ${directory}: '${path}' is a ${kind}` +
        `${target === undefined ? '' : ` (-> ${target})`}; snapshots hold regular files only and never follow links. ` +
        `Add '${path}' to .amlignore to leave it out.`,
      { status: 400, details: { directory, path, kind, ...(target === undefined ? {} : { target }) } },
    ),
} as const;

const comparePaths = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The snapshot id of a manifest (entries in path order). */
export function computeSnapshotId(entries: readonly SnapshotManifestEntry[]): string {
  const hash = createHash('sha256');
  hash.update('amlsim-snapshot/v1\n');
  const u32 = Buffer.alloc(4);
  const u64 = Buffer.alloc(8);
  for (const entry of entries) {
    const path = Buffer.from(entry.path, 'utf8');
    u32.writeUInt32BE(path.length);
    hash.update(u32);
    hash.update(path);
    u32.writeUInt32BE(entry.mode);
    hash.update(u32);
    u64.writeBigUInt64BE(BigInt(entry.size));
    hash.update(u64);
    hash.update(Buffer.from(entry.sha256, 'hex'));
  }
  return `sha256-${hash.digest('hex')}`;
}

type Found = { path: string; absolute: string; mode: SnapshotFileMode; size: number };

/**
 * Packs `rootDir` into a snapshot (see the module comment for the rules). Throws
 * `SnapshotTooLarge` as soon as more than `maxFiles` files or more than `maxBytes` bytes
 * are found, `SnapshotUnsupportedFile` for a symlink or special file that is not ignored.
 */
export async function packDirectory(rootDir: string, options: PackOptions = {}): Promise<PackedSnapshot> {
  const limits: SnapshotLimits = {
    maxBytes: options.maxBytes ?? SNAPSHOT_LIMITS.maxBytes,
    maxFiles: options.maxFiles ?? SNAPSHOT_LIMITS.maxFiles,
  };
  const absoluteRoot = resolve(rootDir);
  const rootStat = await stat(absoluteRoot).catch(() => {
    throw errors.notFound('directory', rootDir);
  });
  if (!rootStat.isDirectory()) throw errors.badRequest(`Cannot take a snapshot of '${rootDir}': it is not a directory.`, { rootDir });

  const rules = await loadIgnoreRules(absoluteRoot);
  const found: Found[] = [];
  let totalBytes = 0;

  const walk = async (absDir: string, relDir: string): Promise<void> => {
    const names: { name: string; kind: 'dir' | 'file' | 'symlink' | 'other' }[] = [];
    for await (const entry of await opendir(absDir)) {
      const kind = entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : entry.isSymbolicLink() ? 'symlink' : 'other';
      names.push({ name: entry.name, kind });
    }
    names.sort((a, b) => comparePaths(a.name, b.name));
    for (const { name, kind } of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = join(absDir, name);
      if (kind === 'dir') {
        if (rules.isIgnored(rel, true)) continue;
        await walk(abs, rel);
        continue;
      }
      if (kind === 'symlink') {
        if (rules.isIgnored(rel, false) || rules.isIgnored(rel, true)) continue;
        const target = await readlink(abs).catch(() => '?');
        throw snapshotErrors.unsupportedFile(rootDir, rel, 'symbolic link', target);
      }
      if (rules.isIgnored(rel, false)) continue;
      if (kind === 'other') throw snapshotErrors.unsupportedFile(rootDir, rel, describeSpecial(await lstat(abs)));
      if (name.includes('\\')) throw snapshotErrors.unsupportedFile(rootDir, rel, 'file whose name contains a backslash');
      if (found.length + 1 > limits.maxFiles) throw snapshotErrors.tooManyFiles(rootDir, limits.maxFiles, found.length + 1, absoluteRoot);
      const st = await lstat(abs);
      totalBytes += st.size;
      if (totalBytes > limits.maxBytes) throw snapshotErrors.tooLargeBytes(rootDir, limits.maxBytes, totalBytes, absoluteRoot);
      found.push({ path: rel, absolute: abs, mode: st.mode & 0o100 ? 0o755 : 0o644, size: st.size });
    }
  };
  await walk(absoluteRoot, '');

  found.sort((a, b) => comparePaths(a.path, b.path));
  const files: SnapshotFile[] = [];
  totalBytes = 0;
  for (const f of found) {
    // follow: false (O_NOFOLLOW): a file swapped for a symlink since the walk is refused, not followed.
    // The file may have grown since it was measured: the limit holds for what is stored.
    const before = totalBytes;
    const chunks = [...fileChunks(f.absolute, {
      maxBytes: limits.maxBytes - before,
      follow: false,
      sizeHint: f.size,
      tooLarge: (seen) => snapshotErrors.tooLargeBytes(rootDir, limits.maxBytes, before + seen, absoluteRoot),
    })];
    const content = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    totalBytes += content.length;
    files.push({ path: f.path, mode: f.mode, size: content.length, sha256: sha256Hex(content), content });
  }
  return {
    snapshotId: computeSnapshotId(files),
    rootDir,
    ignoreFile: rules.source,
    files,
    fileCount: files.length,
    totalBytes,
  };
}

function describeSpecial(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isFIFO()) return 'named pipe';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'special file';
}

/**
 * Layout: `AMLSNAP1` (8 bytes) | manifest length (uint32 BE) | manifest JSON (UTF-8)
 * `{ version: 1, snapshotId, files: [{ path, mode, size, sha256 }] }` | file contents
 * concatenated in manifest order.
 */
export function serializeSnapshot(packed: { snapshotId: string; files: readonly SnapshotFile[] }): Buffer {
  return Buffer.concat(snapshotChunks(packed));
}

/** The serialized snapshot as the buffers it is made of (header, manifest, each file's content), not copied into one. */
export function snapshotChunks(packed: { snapshotId: string; files: readonly SnapshotFile[] }): Buffer[] {
  const manifest = {
    version: FORMAT_VERSION,
    snapshotId: packed.snapshotId,
    files: packed.files.map(({ path, mode, size, sha256 }) => ({ path, mode, size, sha256 })),
  };
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return [MAGIC, length, json, ...packed.files.map((f) => f.content)];
}

/**
 * Parses and verifies a serialized snapshot: every file's sha256, the snapshot id, and that
 * every path is a safe relative path (no `..`, `.`, empty segment, absolute path, drive
 * letter, backslash or NUL; no file that is also another file's directory; no duplicates).
 * Anything off → `SnapshotCorrupt`.
 */
export function deserializeSnapshot(buf: Buffer): UnpackedSnapshot {
  const header = MAGIC.length + 4;
  if (buf.length < header || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw snapshotErrors.corrupt('it does not start with the snapshot header');
  }
  const manifestLength = buf.readUInt32BE(MAGIC.length);
  if (header + manifestLength > buf.length) {
    throw snapshotErrors.corrupt(`the manifest claims ${manifestLength} bytes but only ${buf.length - header} follow the header`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(buf.subarray(header, header + manifestLength).toString('utf8'));
  } catch {
    throw snapshotErrors.corrupt('the manifest is not valid JSON');
  }
  const { snapshotId, entries } = checkManifest(manifest);

  const body = buf.subarray(header + manifestLength);
  const declared = entries.reduce((sum, e) => sum + e.size, 0);
  if (declared !== body.length) {
    throw snapshotErrors.corrupt(`the manifest declares ${declared} content bytes but ${body.length} are present`, { snapshotId });
  }
  const files: SnapshotFile[] = [];
  let offset = 0;
  for (const entry of entries) {
    const content = Buffer.from(body.subarray(offset, offset + entry.size));
    offset += entry.size;
    if (sha256Hex(content) !== entry.sha256) {
      throw snapshotErrors.corrupt(`the content of '${entry.path}' does not match its sha256`, { snapshotId, path: entry.path });
    }
    files.push({ ...entry, content });
  }
  const actual = computeSnapshotId(entries);
  if (actual !== snapshotId) {
    throw snapshotErrors.corrupt(`its files hash to ${actual}, not to the snapshot id ${snapshotId}`, { snapshotId, actual });
  }
  return { snapshotId, files, fileCount: files.length, totalBytes: declared };
}

function checkManifest(manifest: unknown): { snapshotId: string; entries: SnapshotManifestEntry[] } {
  if (typeof manifest !== 'object' || manifest === null) throw snapshotErrors.corrupt('the manifest is not an object');
  const m = manifest as Record<string, unknown>;
  if (m.version !== FORMAT_VERSION) throw snapshotErrors.corrupt(`unknown snapshot format version ${JSON.stringify(m.version)}`);
  if (typeof m.snapshotId !== 'string' || !SNAPSHOT_ID.test(m.snapshotId)) throw snapshotErrors.corrupt('the manifest has no valid snapshot id');
  if (!Array.isArray(m.files)) throw snapshotErrors.corrupt('the manifest has no file list');
  const snapshotId = m.snapshotId;
  const entries: SnapshotManifestEntry[] = [];
  const paths = new Set<string>();
  for (const [index, raw] of (m.files as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null) throw snapshotErrors.corrupt(`manifest entry ${index} is not an object`, { snapshotId });
    const e = raw as Record<string, unknown>;
    if (typeof e.path !== 'string') throw snapshotErrors.corrupt(`manifest entry ${index} has no path`, { snapshotId });
    const why = unsafePathReason(e.path);
    if (why) throw snapshotErrors.corrupt(`manifest path '${e.path}' ${why}`, { snapshotId, path: e.path });
    if (e.mode !== 0o644 && e.mode !== 0o755) throw snapshotErrors.corrupt(`'${e.path}' has an invalid mode`, { snapshotId, path: e.path });
    if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) {
      throw snapshotErrors.corrupt(`'${e.path}' has an invalid size`, { snapshotId, path: e.path });
    }
    if (typeof e.sha256 !== 'string' || !SHA256_HEX.test(e.sha256)) {
      throw snapshotErrors.corrupt(`'${e.path}' has an invalid sha256`, { snapshotId, path: e.path });
    }
    const previous = entries[entries.length - 1];
    if (previous && comparePaths(previous.path, e.path) >= 0) {
      throw snapshotErrors.corrupt(`manifest paths are not strictly sorted ('${previous.path}' before '${e.path}')`, { snapshotId });
    }
    entries.push({ path: e.path, mode: e.mode, size: e.size, sha256: e.sha256 });
    paths.add(e.path);
  }
  for (const { path } of entries) {
    const parts = path.split('/');
    for (let k = 1; k < parts.length; k++) {
      const dir = parts.slice(0, k).join('/');
      if (paths.has(dir)) throw snapshotErrors.corrupt(`'${dir}' is both a file and the directory of '${path}'`, { snapshotId });
    }
  }
  return { snapshotId, entries };
}

/** Why a manifest path could escape or confuse the extraction directory; undefined when safe. */
function unsafePathReason(path: string): string | undefined {
  if (path === '') return 'is empty';
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  if (/^[A-Za-z]:/.test(path)) return 'starts with a drive letter';
  for (const part of path.split('/')) {
    if (part === '') return 'has an empty segment';
    if (part === '.' || part === '..') return `has a '${part}' segment`;
  }
  return undefined;
}

export const snapshotBlobName = (snapshotId: string): string => `snapshots/${snapshotId}`;

/**
 * Snapshots in a workspace storage container, one blob per snapshot (`snapshots/<id>`).
 * Content-addressed: saving a snapshot whose blob exists already stores nothing and
 * reports `reused: true`. Encryption at rest is the storage account's (S4.1).
 */
export class SnapshotStore {
  constructor(private readonly storage: BlobStorageService) {}

  save(credential: StorageCredential, account: string, container: string, packed: PackedSnapshot): SavedSnapshot {
    const blob = snapshotBlobName(packed.snapshotId);
    const reused = this.storage.listBlobs(credential, account, container).includes(blob);
    // Encrypted file by file: the contents are not copied into one buffer, nor that into a sealed one.
    if (!reused) this.storage.putBlobChunks(credential, account, container, blob, snapshotChunks(packed));
    return { snapshotId: packed.snapshotId, reused, fileCount: packed.fileCount, totalBytes: packed.totalBytes };
  }

  /** Packs `rootDir` and saves it. */
  async saveDirectory(
    credential: StorageCredential,
    account: string,
    container: string,
    rootDir: string,
    options: PackOptions = {},
  ): Promise<SavedSnapshot & { ignoreFile: IgnoreFileName | null }> {
    const packed = await packDirectory(rootDir, options);
    return { ...this.save(credential, account, container, packed), ignoreFile: packed.ignoreFile };
  }

  exists(credential: StorageCredential, account: string, container: string, snapshotId: string): boolean {
    return SNAPSHOT_ID.test(snapshotId) && this.storage.listBlobs(credential, account, container).includes(snapshotBlobName(snapshotId));
  }

  /** Reads and verifies a snapshot; `ResourceNotFound` if there is none with that id. */
  load(credential: StorageCredential, account: string, container: string, snapshotId: string): UnpackedSnapshot {
    if (!SNAPSHOT_ID.test(snapshotId)) {
      throw errors.badRequest(`'${snapshotId}' is not a snapshot id (expected sha256-<64 hex digits>).`, { snapshotId });
    }
    const blob = snapshotBlobName(snapshotId);
    if (!this.storage.listBlobs(credential, account, container).includes(blob)) {
      throw errors.notFound('snapshot', snapshotId, `${account}/${container}`);
    }
    const snapshot = deserializeSnapshot(this.storage.getBlob(credential, account, container, blob));
    if (snapshot.snapshotId !== snapshotId) {
      throw snapshotErrors.corrupt(`the blob for ${snapshotId} holds snapshot ${snapshot.snapshotId}`, { snapshotId, found: snapshot.snapshotId });
    }
    return snapshot;
  }
}
