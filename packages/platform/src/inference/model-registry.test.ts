import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimError, type StoredEvent } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { afterEach, describe, expect, it } from 'vitest';
import { createPlatform, type Platform } from '../platform';
import { virtualClock } from '../runtime/clock';
import { MODEL_LIMITS, ModelRegistry } from './model-registry';

const GiB = 1024 * 1024 * 1024;
const dirs: string[] = [];
const platforms: Platform[] = [];
afterEach(async () => {
  for (const p of platforms.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'amlsim-models-'));
  dirs.push(d);
  return d;
};

/** A file of `bytes` that takes no disk: a hole, as `truncate -s` makes. */
const sparse = (path: string, bytes: number): string => {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return path;
};

const setUp = async () => {
  const dataDir = tmp();
  const store = createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir,
    clock: virtualClock(),
    driver: 'process',
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  platforms.push(platform);
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  const ws = Object.values(platform.world.workspaces.byId).find((w) => w.workspace === 'ws1')!;
  const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
  const blobs = () => platform.context.storage.listBlobs(identity, ws.storageAccount!, ws.blobContainer!);
  /** Every file under the data dir (a partial blob would be one). */
  const files = () => readdirSync(join(dataDir, 'storage'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
  return { platform, store, token, ws, blobs, files, dataDir };
};

/** Runs `fn`, expects a SimError, returns it. */
const refusal = async (fn: () => Promise<unknown>): Promise<SimError> => {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SimError);
  return err as SimError;
};

const eventsSince = (store: ReturnType<typeof createMemoryEventStore>, position: number): StoredEvent[] => [...store.readAll()].filter((e) => e.position > position);
const lastPosition = (store: ReturnType<typeof createMemoryEventStore>): number => [...store.readAll()].at(-1)?.position ?? 0;

describe('model registry: big inputs (issue 8 §2)', () => {
  it('a 3 GiB model file is refused before it is read: ModelTooLarge, one CommandRejected, nothing stored, and the next registration works', async () => {
    const { platform, store, token, blobs, files } = await setUp();
    const big = sparse(join(tmp(), 'big.bin'), 3 * GiB);
    const filesBefore = files();
    const from = lastPosition(store);

    const err = await refusal(() => platform.models.registerModel(token, { workspace: 'ws1', name: 'big', path: big }));
    expect(err.code).toBe('ModelTooLarge');
    expect(err.status).toBe(413);
    expect(err.message).toBe(
      `While attempting to register model 'big' from ${big}\n` +
        "Your model's total size (3072.0 MB so far; 'big.bin' is 3072.0 MB) exceeds the limit of 1024.0 MB.\n" +
        'Nothing was uploaded. Keep large files in a datastore and register the model from a smaller set of files.',
    );
    expect(err.details).toMatchObject({ limit: 'size', maxBytes: MODEL_LIMITS.maxBytes, measuredBytes: 3 * GiB, file: 'big.bin' });

    const after = eventsSince(store, from);
    expect(after.map((e) => e.type)).toEqual(['CommandRejected']);
    expect(after[0]!.data).toMatchObject({ command: 'RegisterModel', code: 'ModelTooLarge' });
    expect(blobs().filter((b) => b.startsWith('models/'))).toEqual([]);
    expect(files()).toEqual(filesBefore);

    const small = join(tmp(), 'small.json');
    writeFileSync(small, '{"w":[1,2,3]}');
    const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'big', path: small });
    expect(model.version).toBe(1);
    expect(blobs()).toContain('models/big/1/small.json');
  });

  it('a directory holding a small file and a 3 GiB one: refused as a whole, the small file is not uploaded either', async () => {
    const { platform, store, token, blobs, files } = await setUp();
    const dir = tmp();
    writeFileSync(join(dir, 'a-config.json'), '{}');
    mkdirSync(join(dir, 'weights'));
    sparse(join(dir, 'weights', 'huge.bin'), 2 * GiB + 1);
    const filesBefore = files();
    const from = lastPosition(store);
    const err = await refusal(() => platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: dir }));
    expect(err.code).toBe('ModelTooLarge');
    expect(err.details).toMatchObject({ file: 'weights/huge.bin', fileBytes: 2 * GiB + 1 });
    expect(eventsSince(store, from).map((e) => e.type)).toEqual(['CommandRejected']);
    expect(blobs()).toEqual([]);
    expect(files()).toEqual(filesBefore);
  });

  it('the limits hold at their edge: exactly the limit is registered, one byte more and one file more are refused', async () => {
    const { platform, token, ws, blobs } = await setUp();
    const limited = new ModelRegistry(platform.context, platform.arm, { maxBytes: 100, maxFiles: 2 });
    const dir = tmp();
    writeFileSync(join(dir, 'a.bin'), Buffer.alloc(60, 1));
    writeFileSync(join(dir, 'b.bin'), Buffer.alloc(40, 2));
    const model = await limited.registerModel(token, { workspace: 'ws1', name: 'edge', path: dir });
    expect(model.files.map((f) => [f.path, f.bytes])).toEqual([
      ['a.bin', 60],
      ['b.bin', 40],
    ]);
    expect(limited.files(ws, model).map((f) => f.content.length)).toEqual([60, 40]);

    writeFileSync(join(dir, 'b.bin'), Buffer.alloc(41, 2));
    expect((await refusal(() => limited.registerModel(token, { workspace: 'ws1', name: 'edge', path: dir }))).details).toMatchObject({ limit: 'size', measuredBytes: 101 });
    writeFileSync(join(dir, 'b.bin'), Buffer.alloc(40, 2));
    writeFileSync(join(dir, 'c.bin'), '');
    const tooMany = await refusal(() => limited.registerModel(token, { workspace: 'ws1', name: 'edge', path: dir }));
    expect(tooMany.code).toBe('ModelTooLarge');
    expect(tooMany.details).toMatchObject({ limit: 'fileCount', maxFiles: 2, measuredFiles: 3 });
    expect(blobs().filter((b) => b.startsWith('models/edge/2/'))).toEqual([]);
  });

  it('a model of several chunks is stored whole: the event carries each file\'s size and sha256, the bytes read back equal', async () => {
    const { platform, token, ws, store } = await setUp();
    const dir = tmp();
    const weights = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < weights.length; i++) weights[i] = (i * 31) & 0xff;
    writeFileSync(join(dir, 'weights.bin'), weights);
    const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'chunky', path: join(dir, 'weights.bin') });
    const back = platform.models.files(ws, model);
    expect(back).toHaveLength(1);
    expect(back[0]!.content.equals(weights)).toBe(true);
    const registered = [...store.readAll()].find((e) => e.type === 'ModelRegistered')!;
    expect(registered.data.files).toEqual([{ path: 'weights.bin', bytes: weights.length, sha256: createHash('sha256').update(weights).digest('hex') }]);
  });

  it('a missing path or a link inside a model directory is refused with a SimError, not a crash', async () => {
    const { platform, token } = await setUp();
    expect((await refusal(() => platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: join(tmp(), 'nope.bin') }))).code).toBe('ResourceNotFound');
    const dir = tmp();
    writeFileSync(join(dir, 'a.json'), '{}');
    symlinkSync('/etc/hostname', join(dir, 'leak'));
    const err = await refusal(() => platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: dir }));
    expect(err.code).toBe('BadRequest');
    expect(err.message).toContain('links are not followed');
  });

  it('model bytes at rest are the platform\'s alone: blob files 0600, their directories 0700', async () => {
    const { platform, token, dataDir } = await setUp();
    const file = join(tmp(), 'm.json');
    writeFileSync(file, '{}');
    await platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: file });
    const root = join(dataDir, 'storage');
    const entries = readdirSync(root, { recursive: true, withFileTypes: true });
    const blobFiles = entries.filter((d) => d.isFile() && d.parentPath.includes(`${join('blobs')}`));
    expect(blobFiles.length).toBeGreaterThan(0);
    for (const d of entries.filter((e) => e.isFile())) expect({ file: d.name, mode: statSync(join(d.parentPath, d.name)).mode & 0o777 }).toEqual({ file: d.name, mode: 0o600 });
    const dirsUnder = entries.filter((e) => e.isDirectory() && !join(e.parentPath, e.name).includes(`${join('shares', '')}`));
    for (const d of [root, ...dirsUnder.map((e) => join(e.parentPath, e.name))]) expect({ dir: d, mode: statSync(d).mode & 0o777 }).toEqual({ dir: d, mode: 0o700 });
  });
});
