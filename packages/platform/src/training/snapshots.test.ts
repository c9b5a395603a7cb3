import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SimError } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPlatform } from '../platform';
import { virtualClock } from '../runtime/clock';
import { BlobStorageService, type StorageCredential } from '../workspace/blob-storage';
import {
  SNAPSHOT_LIMITS,
  SnapshotStore,
  computeSnapshotId,
  deserializeSnapshot,
  packDirectory,
  serializeSnapshot,
  snapshotErrors,
} from './snapshots';

const dirs: string[] = [];
const tmp = (prefix = 'amlsim-snap-'): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Writes `files` (relative path → content) under a fresh temp dir. */
const tree = (files: Record<string, string | Buffer>): string => {
  const root = tmp();
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
};

const paths = async (root: string) => (await packDirectory(root)).files.map((f) => f.path);

/** Runs `fn`, expects a SimError, returns it. */
const simError = async (fn: () => unknown): Promise<SimError> => {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error('expected a SimError');
};

describe('packDirectory', () => {
  it('honours .amlignore over .gitignore, and includes the ignore file itself', async () => {
    const root = tree({
      '.amlignore': 'data/\n*.ckpt\n',
      '.gitignore': 'train.py\n',
      'train.py': 'print(1)',
      'model.ckpt': 'x',
      'data/big.bin': 'y',
    });
    const packed = await packDirectory(root);
    expect(packed.ignoreFile).toBe('.amlignore');
    expect(packed.files.map((f) => f.path)).toEqual(['.amlignore', '.gitignore', 'train.py']);
  });

  it('falls back to .gitignore', async () => {
    const root = tree({ '.gitignore': '*.log\n', 'a.log': 'l', 'a.py': 'p' });
    const packed = await packDirectory(root);
    expect(packed.ignoreFile).toBe('.gitignore');
    expect(packed.files.map((f) => f.path)).toEqual(['.gitignore', 'a.py']);
  });

  it('does not descend into ignored directories (they do not count against the limits)', async () => {
    const files: Record<string, string> = { '.amlignore': 'outputs/\n', 'train.py': 'p' };
    for (let i = 0; i < 50; i++) files[`outputs/run${i}.txt`] = 'x'.repeat(1000);
    const root = tree(files);
    const packed = await packDirectory(root, { maxFiles: 5, maxBytes: 2000 });
    expect(packed.files.map((f) => f.path)).toEqual(['.amlignore', 'train.py']);
  });

  it('never packs .git, sorts by path, records the executable bit, size and sha256', async () => {
    const root = tree({ '.git/HEAD': 'ref', 'b/z.py': 'z', 'a.py': 'a', 'run.sh': '#!/bin/sh\n' });
    chmodSync(join(root, 'run.sh'), 0o755);
    chmodSync(join(root, 'a.py'), 0o600);
    const packed = await packDirectory(root);
    expect(packed.ignoreFile).toBeNull();
    expect(packed.files.map(({ path, mode, size }) => ({ path, mode, size }))).toEqual([
      { path: 'a.py', mode: 0o644, size: 1 },
      { path: 'b/z.py', mode: 0o644, size: 1 },
      { path: 'run.sh', mode: 0o755, size: 10 },
    ]);
    expect(packed.files[0]!.sha256).toBe('ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb');
    expect(packed.fileCount).toBe(3);
    expect(packed.totalBytes).toBe(12);
    expect(packed.snapshotId).toMatch(/^sha256-[0-9a-f]{64}$/);
  });

  it('an empty directory is a valid snapshot with no files', async () => {
    const root = tmp();
    mkdirSync(join(root, 'empty-sub'));
    const packed = await packDirectory(root);
    expect(packed.files).toEqual([]);
    expect(packed.fileCount).toBe(0);
    expect(packed.totalBytes).toBe(0);
    expect(packed.snapshotId).toBe(computeSnapshotId([]));
    const back = deserializeSnapshot(serializeSnapshot(packed));
    expect(back).toEqual({ snapshotId: packed.snapshotId, files: [], fileCount: 0, totalBytes: 0 });
  });

  it('refuses a symlink naming it, unless it is ignored', async () => {
    const outside = tree({ 'secret.txt': 's' });
    const root = tree({ 'train.py': 'p' });
    symlinkSync(join(outside, 'secret.txt'), join(root, 'leak.txt'));
    const err = await simError(() => packDirectory(root));
    expect(err.code).toBe('SnapshotUnsupportedFile');
    expect(err.message).toContain("'leak.txt' is a symbolic link");
    expect(err.details).toMatchObject({ path: 'leak.txt', kind: 'symbolic link', target: join(outside, 'secret.txt') });

    writeFileSync(join(root, '.amlignore'), 'leak.txt\n');
    expect(await paths(root)).toEqual(['.amlignore', 'train.py']);
  });

  it('a symlinked directory is ignored by a directory pattern', async () => {
    const outside = tree({ 'lib/x.py': 'x' });
    const root = tree({ '.amlignore': 'venv/\n', 'train.py': 'p' });
    symlinkSync(outside, join(root, 'venv'));
    expect(await paths(root)).toEqual(['.amlignore', 'train.py']);
  });

  it('same content in two directories → same id; mtime and mode bits other than x do not matter', async () => {
    const content = { 'train.py': 'print("hi")\n', 'lib/util.py': 'def f(): pass\n' };
    const a = tree(content);
    const b = tree(content);
    chmodSync(join(b, 'train.py'), 0o600);
    const idA = (await packDirectory(a)).snapshotId;
    expect((await packDirectory(b)).snapshotId).toBe(idA);
  });

  it('a changed byte, a renamed file or a changed executable bit → a new id', async () => {
    const base = { 'train.py': 'print("hi")\n', 'lib/util.py': 'def f(): pass\n' };
    const id = (await packDirectory(tree(base))).snapshotId;
    expect((await packDirectory(tree({ ...base, 'train.py': 'print("hI")\n' }))).snapshotId).not.toBe(id);
    expect((await packDirectory(tree({ 'train2.py': base['train.py'], 'lib/util.py': base['lib/util.py'] }))).snapshotId).not.toBe(id);
    expect((await packDirectory(tree({ 'train.py': base['train.py'], 'lib2/util.py': base['lib/util.py'] }))).snapshotId).not.toBe(id);
    const exec = tree(base);
    chmodSync(join(exec, 'train.py'), 0o755);
    expect((await packDirectory(exec)).snapshotId).not.toBe(id);
  });

  it('more files than the limit → SnapshotTooLarge with the platform wording and the directory', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 6; i++) files[`f${i}.py`] = `${i}`;
    const root = tree(files);
    expect((await packDirectory(root, { maxFiles: 6 })).fileCount).toBe(6);
    const err = await simError(() => packDirectory(root, { maxFiles: 5 }));
    expect(err.code).toBe('SnapshotTooLarge');
    expect(err.status).toBe(413);
    expect(err.message).toBe(
      '====================================================================\n\n' +
        `While attempting to take snapshot of ${root}\n` +
        'Your project exceeds the file limit of 5.\n\n' +
        '====================================================================',
    );
    expect(err.details).toMatchObject({ directory: root, limit: 'fileCount', maxFiles: 5, measuredFiles: 6 });
  });

  it('more bytes than the limit → SnapshotTooLarge with the platform wording', async () => {
    const root = tree({ 'a.bin': Buffer.alloc(600), 'b.bin': Buffer.alloc(600) });
    expect((await packDirectory(root, { maxBytes: 1200 })).totalBytes).toBe(1200);
    const err = await simError(() => packDirectory(root, { maxBytes: 1024 }));
    expect(err.code).toBe('SnapshotTooLarge');
    expect(err.message).toContain(`While attempting to take snapshot of ${root}\n`);
    expect(err.message).toContain('Your total snapshot size exceeds the limit of 0.0009765625 MB.\n');
    expect(err.message).toContain('Please see http://aka.ms/aml-largefiles on how to work with large files.');
    expect(err.details).toMatchObject({ directory: root, limit: 'size', maxBytes: 1024, measuredBytes: 1200 });
  });

  it('defaults to the platform limits: 300 MB and 2000 files', async () => {
    expect(SNAPSHOT_LIMITS).toEqual({ maxBytes: 300 * 1024 * 1024, maxFiles: 2000 });
    expect(snapshotErrors.tooLargeBytes('.', SNAPSHOT_LIMITS.maxBytes, SNAPSHOT_LIMITS.maxBytes + 1, '/x').message).toBe(
      '====================================================================\n\n' +
        'While attempting to take snapshot of .\n' +
        'Your total snapshot size exceeds the limit of 300.0 MB.\n' +
        'Please see http://aka.ms/aml-largefiles on how to work with large files.\n\n' +
        '====================================================================',
    );
  });

  it('a missing directory is ResourceNotFound', async () => {
    const err = await simError(() => packDirectory(join(tmp(), 'nope')));
    expect(err.code).toBe('ResourceNotFound');
  });
});

describe('serializeSnapshot / deserializeSnapshot', () => {
  const sample = async () =>
    packDirectory(tree({ 'train.py': 'print(1)\n', 'data/labels.csv': 'a,b\n1,2\n', 'bin/blob': randomBytes(300) }));

  it('round-trips bytes, modes and the id', async () => {
    const packed = await sample();
    const back = deserializeSnapshot(serializeSnapshot(packed));
    expect(back.snapshotId).toBe(packed.snapshotId);
    expect(back.files).toEqual(packed.files);
    expect(back.totalBytes).toBe(packed.totalBytes);
  });

  it('a flipped content byte → SnapshotCorrupt', async () => {
    const buf = serializeSnapshot(await sample());
    buf[buf.length - 1]! ^= 0xff;
    const err = await simError(() => deserializeSnapshot(buf));
    expect(err.code).toBe('SnapshotCorrupt');
  });

  it('a truncated buffer, a bad header or trailing bytes → SnapshotCorrupt', async () => {
    const buf = serializeSnapshot(await sample());
    expect((await simError(() => deserializeSnapshot(buf.subarray(0, buf.length - 1)))).code).toBe('SnapshotCorrupt');
    expect((await simError(() => deserializeSnapshot(Buffer.concat([buf, Buffer.from('x')])))).code).toBe('SnapshotCorrupt');
    expect((await simError(() => deserializeSnapshot(buf.subarray(0, 10)))).code).toBe('SnapshotCorrupt');
    expect((await simError(() => deserializeSnapshot(Buffer.from('not a snapshot')))).code).toBe('SnapshotCorrupt');
  });

  /** Re-serializes with a rewritten manifest (file hashes stay valid). */
  const withManifest = (buf: Buffer, edit: (m: { snapshotId: string; files: { path: string; mode: number }[] }) => void): Buffer => {
    const len = buf.readUInt32BE(8);
    const manifest = JSON.parse(buf.subarray(12, 12 + len).toString('utf8'));
    edit(manifest);
    const json = Buffer.from(JSON.stringify(manifest));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(json.length);
    return Buffer.concat([buf.subarray(0, 8), header, json, buf.subarray(12 + len)]);
  };

  it('a manifest whose files do not hash to its id → SnapshotCorrupt', async () => {
    const packed = await sample();
    const buf = serializeSnapshot(packed);
    const otherId = withManifest(buf, (m) => {
      m.snapshotId = `sha256-${'0'.repeat(64)}`;
    });
    expect((await simError(() => deserializeSnapshot(otherId))).code).toBe('SnapshotCorrupt');
    const chmod = withManifest(buf, (m) => {
      m.files[0]!.mode = 0o755;
    });
    expect((await simError(() => deserializeSnapshot(chmod))).code).toBe('SnapshotCorrupt');
  });

  it.each(['../evil.py', '/etc/passwd', 'a/../../evil.py', 'a/./b', 'a//b', 'C:evil', 'a\\..\\b', ''])(
    'a manifest path %j → SnapshotCorrupt (no traversal on extraction)',
    async (bad) => {
      // The id is recomputed over the rewritten manifest, so only the path check can reject it.
      const packed = await packDirectory(tree({ 'z.py': 'z' }));
      const files = packed.files.map((f) => ({ ...f, path: bad }));
      const buf = serializeSnapshot({ snapshotId: computeSnapshotId(files), files });
      const err = await simError(() => deserializeSnapshot(buf));
      expect(err.code).toBe('SnapshotCorrupt');
      expect(err.details.path).toBe(bad);
    },
  );

  it('duplicate paths or a file that is also a directory → SnapshotCorrupt', async () => {
    const packed = await packDirectory(tree({ 'a': '1' }));
    const f = packed.files[0]!;
    const dup = [f, f];
    expect((await simError(() => deserializeSnapshot(serializeSnapshot({ snapshotId: computeSnapshotId(dup), files: dup }))))
      .code).toBe('SnapshotCorrupt');
    const nested = [f, { ...f, path: 'a/b' }];
    expect((await simError(() => deserializeSnapshot(serializeSnapshot({ snapshotId: computeSnapshotId(nested), files: nested }))))
      .code).toBe('SnapshotCorrupt');
  });
});

describe('SnapshotStore', () => {
  const account = 'wsstore';
  const container = 'azureml-snapshots';
  const identity: StorageCredential = { kind: 'identity', principalId: 'ws-mi', name: 'workspace identity' };
  let storageRoot: string;
  let storage: BlobStorageService;
  let store: SnapshotStore;

  beforeEach(() => {
    storageRoot = tmp('amlsim-blobs-');
    storage = new BlobStorageService(storageRoot, randomBytes(32), () => true);
    storage.createAccount(account, '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/wsstore');
    storage.createContainer(identity, account, container);
    store = new SnapshotStore(storage);
  });

  it('saves under snapshots/<id> and loads identical bytes back', async () => {
    const packed = await packDirectory(tree({ 'train.py': 'print("train")\n', 'conf/x.yaml': 'lr: 0.1\n', 'w.bin': randomBytes(2048) }));
    const saved = store.save(identity, account, container, packed);
    expect(saved).toEqual({ snapshotId: packed.snapshotId, reused: false, fileCount: 3, totalBytes: packed.totalBytes });
    expect(storage.listBlobs(identity, account, container)).toEqual([`snapshots/${packed.snapshotId}`]);
    expect(store.exists(identity, account, container, packed.snapshotId)).toBe(true);

    const loaded = store.load(identity, account, container, packed.snapshotId);
    expect(loaded.snapshotId).toBe(packed.snapshotId);
    expect(loaded.files.map((f) => [f.path, f.mode])).toEqual(packed.files.map((f) => [f.path, f.mode]));
    loaded.files.forEach((f, i) => expect(f.content.equals(packed.files[i]!.content)).toBe(true));
  });

  it('is encrypted at rest by the storage account (no plaintext on disk)', async () => {
    const marker = 'SUPER-DISTINCTIVE-TRAINING-CODE-MARKER';
    const packed = await packDirectory(tree({ 'train.py': marker }));
    store.save(identity, account, container, packed);
    const blobDir = join(storageRoot, account, 'blobs', container);
    const [file] = readdirSync(blobDir);
    const raw = readFileSync(join(blobDir, file!));
    expect(raw.includes(Buffer.from(marker))).toBe(false);
    expect(raw.includes(Buffer.from('train.py'))).toBe(false);
  });

  it('the same content from another directory is the same snapshot: reused, stored once', async () => {
    const content = { 'train.py': 'print(42)\n', 'lib/a.py': 'A = 1\n' };
    const first = await store.saveDirectory(identity, account, container, tree(content));
    const second = await store.saveDirectory(identity, account, container, tree(content));
    expect(first.reused).toBe(false);
    expect(second).toEqual({ ...first, reused: true });
    expect(storage.listBlobs(identity, account, container)).toHaveLength(1);

    const changed = await store.saveDirectory(identity, account, container, tree({ ...content, 'train.py': 'print(43)\n' }));
    expect(changed.reused).toBe(false);
    expect(changed.snapshotId).not.toBe(first.snapshotId);
    expect(storage.listBlobs(identity, account, container)).toHaveLength(2);
  });

  it('works with an account key too, and refuses a wrong one', async () => {
    const { key1 } = storage.listKeys(account);
    const packed = await packDirectory(tree({ 'a.py': 'a' }));
    expect(store.save({ kind: 'accountKey', key: key1 }, account, container, packed).reused).toBe(false);
    expect(() => store.load({ kind: 'accountKey', key: 'wrong' }, account, container, packed.snapshotId)).toThrow(SimError);
  });

  it('an unknown id is ResourceNotFound, a malformed id BadRequest', async () => {
    expect((await simError(() => store.load(identity, account, container, `sha256-${'a'.repeat(64)}`))).code).toBe('ResourceNotFound');
    expect((await simError(() => store.load(identity, account, container, '../x'))).code).toBe('BadRequest');
  });

  it('a blob whose content is another snapshot → SnapshotCorrupt', async () => {
    const a = await packDirectory(tree({ 'a.py': 'a' }));
    const b = await packDirectory(tree({ 'b.py': 'b' }));
    storage.putBlob(identity, account, container, `snapshots/${a.snapshotId}`, serializeSnapshot(b));
    expect((await simError(() => store.load(identity, account, container, a.snapshotId))).code).toBe('SnapshotCorrupt');
  });
});

describe('big inputs (issue 8 §2)', () => {
  const GiB = 1024 * 1024 * 1024;
  /** A file of `bytes` that takes no disk (a hole, as `truncate -s` makes). */
  const sparse = (path: string, bytes: number): void => {
    const fd = openSync(path, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
  };

  it('a 3 GiB file in the directory is measured, never read: SnapshotTooLarge with the SDK wording', async () => {
    const root = tree({ 'train.py': 'print(1)\n' });
    sparse(join(root, 'data.bin'), 3 * GiB);
    const err = await simError(() => packDirectory(root));
    expect(err.code).toBe('SnapshotTooLarge');
    expect(err.message).toContain('Your total snapshot size exceeds the limit of 300.0 MB.');
    expect(err.details).toMatchObject({ limit: 'size', maxBytes: SNAPSHOT_LIMITS.maxBytes, measuredBytes: 3 * GiB });
  });

  it('through the platform: one CommandRejected, no snapshot blob, no partial file; the same directory ignoring the big file then packs', async () => {
    const dataDir = tmp('amlsim-snap-platform-');
    const store = createMemoryEventStore();
    const platform = await createPlatform({
      store,
      dataDir,
      clock: virtualClock(),
      driver: 'process',
      tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
    });
    try {
      const token = await platform.directory.signIn('alice', { mfa: false });
      await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
      const storageFiles = () => readdirSync(join(dataDir, 'storage'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
      const filesBefore = storageFiles();
      const from = [...store.readAll()].length;
      const root = tree({ 'train.py': 'print(1)\n' });
      sparse(join(root, 'data.bin'), 3 * GiB);
      const err = await simError(() => platform.ml.snapshot(token, { workspace: 'ws1', experiment: 'e', source: root }));
      expect(err.code).toBe('SnapshotTooLarge');
      const after = [...store.readAll()].slice(from);
      expect(after.map((e) => e.type)).toEqual(['CommandRejected']);
      expect(after[0]!.data).toMatchObject({ command: 'Snapshot', code: 'SnapshotTooLarge' });
      expect(storageFiles()).toBe(filesBefore);

      writeFileSync(join(root, '.amlignore'), 'data.bin\n');
      const ok = await platform.ml.snapshot(token, { workspace: 'ws1', experiment: 'e', source: root });
      expect(ok.files).toEqual(['.amlignore', 'train.py']);
    } finally {
      await platform.close();
    }
  });

  it('a saved snapshot blob is 0600 in 0700 directories', async () => {
    const storageRoot = tmp('amlsim-blobs-');
    const storage = new BlobStorageService(join(storageRoot, 'storage'), randomBytes(32), () => true);
    const identity: StorageCredential = { kind: 'identity', principalId: 'ws-mi', name: 'workspace identity' };
    storage.createAccount('wsmode', '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/wsmode');
    storage.createContainer(identity, 'wsmode', 'azureml-snapshots');
    await new SnapshotStore(storage).saveDirectory(identity, 'wsmode', 'azureml-snapshots', tree({ 'train.py': 'secret code' }));
    const blobDir = join(storageRoot, 'storage', 'wsmode', 'blobs', 'azureml-snapshots');
    const [blob] = readdirSync(blobDir);
    expect(statSync(join(blobDir, blob!)).mode & 0o777).toBe(0o600);
    expect(statSync(blobDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(storageRoot, 'storage', 'wsmode')).mode & 0o777).toBe(0o700);
  });
});
