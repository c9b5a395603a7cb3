import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { actions, errors, SimError, STREAMS, type ModelVersion, type WorkspaceRecord } from '@amlsim/core';
import { declareCommand } from '../runtime/command-bus';
import type { PlatformRuntime, DataPlane } from '../platform-context';
import type { ArmService } from '../arm/arm';
import { fileChunks, fileError, walkRegularFiles } from '../workspace/file-chunks';

/**
 * The simulator's limits for one model version. Azure ML SDK v1 sets none of its own for a
 * model (the snapshot limits, 300 MB / 2000 files, are for code); these keep what the
 * simulator does with a model bounded: its files are listed in the ModelRegistered event,
 * and an image build bakes them into the image. 1 GiB and 2000 files.
 */
export const MODEL_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxFiles: 2000 } as const;
export type ModelLimits = { maxBytes: number; maxFiles: number };

const ONE_MB = 1024 * 1024;
const megabytes = (n: number): string => `${(n / ONE_MB).toFixed(1)} MB`;

/**
 * Errors raised here (not in the core catalog: this file is owned separately). Code
 * `ModelTooLarge` (413), worded like the SDK's snapshot refusal: what was measured, the
 * limit, and that nothing was uploaded.
 */
export const modelErrors = {
  tooLarge: (model: string, path: string, maxBytes: number, measuredBytes: number, file: { path: string; bytes: number }) =>
    new SimError(
      'ModelTooLarge',
      `While attempting to register model '${model}' from ${path}\n` +
        `Your model's total size (${megabytes(measuredBytes)} so far; '${file.path}' is ${megabytes(file.bytes)}) exceeds the limit of ${megabytes(maxBytes)}.\n` +
        'Nothing was uploaded. Keep large files in a datastore and register the model from a smaller set of files.',
      { status: 413, details: { model, path, limit: 'size', maxBytes, measuredBytes, file: file.path, fileBytes: file.bytes } },
    ),
  tooManyFiles: (model: string, path: string, maxFiles: number, measuredFiles: number) =>
    new SimError(
      'ModelTooLarge',
      `While attempting to register model '${model}' from ${path}\nYour model exceeds the file limit of ${maxFiles}.\nNothing was uploaded.`,
      { status: 413, details: { model, path, limit: 'fileCount', maxFiles, measuredFiles } },
    ),
} as const;

type ModelFile = { path: string; absolute: string; size: number; follow: boolean };

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** The blob path of a model version's file: models/<name>/<version>/<file>. */
export const modelBlob = (model: string, version: number, file: string): string => `models/${model}/${version}/${file}`;

/** What the model registry uses of the platform (wired by createPlatform). */
export type ModelRegistryDeps = Pick<PlatformRuntime, 'bus' | 'store' | 'world'> & Pick<DataPlane, 'storage'>;

/**
 * The model registry (S8.5 "the user registers a model"): a name with versions (registering a
 * name again adds a version) and tags; the files go to the workspace's blob storage, encrypted
 * at rest (S4.1), written by the workspace identity. A registration counts in the workspace
 * metrics (S7.1) and is deliberately absent from the activity log (S7.2).
 *
 * Big inputs (issue 8 §2): every file is measured before any byte is read, and a model over
 * {@link MODEL_LIMITS} is refused (`ModelTooLarge`, recorded as a CommandRejected) with
 * nothing uploaded. Files are then read, hashed and encrypted chunk by chunk (memory holds a
 * chunk, not a file); if one fails half-way (it grew past the limit, an I/O error) the blobs
 * already written for this version are removed, so a refusal leaves only its CommandRejected.
 */
export class ModelRegistry {
  constructor(
    private readonly p: ModelRegistryDeps,
    private readonly arm: ArmService,
    private readonly limits: ModelLimits = MODEL_LIMITS,
  ) {}

  /** Each command once: name, RBAC action, scope (runtime/command-bus.ts); the files go to storage as the workspace identity (S2.5). */
  private readonly commands = {
    registerModel: declareCommand({
      name: 'RegisterModel',
      verb: 'registerModel',
      action: actions.registerModel,
      target: (args: { workspace: string }) => this.arm.inWorkspace(args.workspace),
      identity: ['storage'],
    }),
    getModel: declareCommand({ name: 'GetModel', verb: 'getModel', action: actions.viewModels, target: (args: { workspace: string }) => this.arm.inWorkspace(args.workspace) }),
  };

  async registerModel(token: string | undefined, args: { workspace: string; name: string; path: string; tags?: Record<string, string> }): Promise<ModelVersion> {
    return this.p.bus.execute(this.commands.registerModel, token, args, (ctx, { ws }) => {
      if (!MODEL_NAME.test(args.name)) {
        throw errors.badRequest(`Model name '${args.name}' is invalid: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 255.`);
      }
      const files = measureModelFiles(args.name, args.path, this.limits);
      const version = (this.p.world.models[ws.workspaceId]?.[args.name]?.length ?? 0) + 1;
      const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
      const stored = this.upload(identity, ws, args.name, args.path, version, files);
      const stream = STREAMS.models(ws.workspaceId);
      ctx.emit(stream, this.p.store.streamVersion(stream), [
        {
          type: 'ModelRegistered',
          data: {
            workspaceId: ws.workspaceId,
            workspace: ws.workspace,
            modelId: `${args.name}:${version}`,
            model: args.name,
            version,
            files: stored,
            tags: args.tags ?? {},
          },
        },
      ]);
      return this.version(ws, args.name, version);
    });
  }

  /**
   * Streams every file into the blob storage (encrypted and hashed on the way), within the
   * limit as measured so far; on any failure the blobs of this version written so far are removed.
   */
  private upload(
    identity: { kind: 'identity'; principalId: string; name: string },
    ws: WorkspaceRecord,
    model: string,
    path: string,
    version: number,
    files: readonly ModelFile[],
  ): Array<{ path: string; bytes: number; sha256: string }> {
    const written: string[] = [];
    const stored: Array<{ path: string; bytes: number; sha256: string }> = [];
    let total = 0;
    try {
      for (const f of files) {
        const blob = modelBlob(model, version, f.path);
        const before = total;
        const chunks = fileChunks(f.absolute, {
          maxBytes: this.limits.maxBytes - before,
          follow: f.follow,
          sizeHint: f.size,
          tooLarge: (seen) => modelErrors.tooLarge(model, path, this.limits.maxBytes, before + seen, { path: f.path, bytes: seen }),
        });
        written.push(blob);
        const { bytes, sha256 } = this.p.storage.putBlobChunks(identity, ws.storageAccount!, ws.blobContainer!, blob, chunks);
        total += bytes;
        stored.push({ path: f.path, bytes, sha256 });
      }
    } catch (error) {
      for (const blob of written) this.p.storage.deleteBlob(identity, ws.storageAccount!, ws.blobContainer!, blob);
      throw error;
    }
    return stored;
  }

  /** A registered version (S2.2 "view models": Reader too). */
  async getModel(token: string | undefined, args: { workspace: string; name: string; version?: number }): Promise<ModelVersion> {
    return this.p.bus.execute(this.commands.getModel, token, args, (_ctx, { ws }) => {
      const versions = this.p.world.models[ws.workspaceId]?.[args.name] ?? [];
      return this.version(ws, args.name, args.version ?? versions.length);
    });
  }

  /** The files of a version, read back from the blob store as the workspace identity. */
  files(ws: WorkspaceRecord, model: ModelVersion): Array<{ path: string; content: Buffer }> {
    const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
    return model.files.map((f) => ({ path: f.path, content: this.p.storage.getBlob(identity, ws.storageAccount!, ws.blobContainer!, modelBlob(model.model, model.version, f.path)) }));
  }

  private version(ws: WorkspaceRecord, name: string, version: number): ModelVersion {
    const found = this.p.world.models[ws.workspaceId]?.[name]?.find((v) => v.version === version);
    if (!found) throw errors.notFound('model', `${name}:${version}`, `workspace '${ws.workspace}'`);
    return found;
  }
}

/**
 * A model is a file (it keeps its name) or a directory (its files, relative paths kept, in
 * path order). Measures every file without reading it, and refuses as soon as the model is
 * over a limit. Inside a directory, links are never followed.
 */
const measureModelFiles = (model: string, path: string, limits: ModelLimits): ModelFile[] => {
  let st;
  try {
    st = statSync(path);
  } catch (error) {
    throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? errors.notFound('model path', path) : fileError(path, error);
  }
  if (st.isFile()) {
    if (st.size > limits.maxBytes) throw modelErrors.tooLarge(model, path, limits.maxBytes, st.size, { path: basename(path), bytes: st.size });
    return [{ path: basename(path), absolute: path, size: st.size, follow: true }];
  }
  if (!st.isDirectory()) throw errors.badRequest(`Model path '${path}' is neither a file nor a directory.`);
  const out: ModelFile[] = [];
  let total = 0;
  walkRegularFiles(path, {
    compare: (a, b) => a.localeCompare(b),
    onFile: (relPath, full, size) => {
      if (out.length + 1 > limits.maxFiles) throw modelErrors.tooManyFiles(model, path, limits.maxFiles, out.length + 1);
      total += size;
      if (total > limits.maxBytes) throw modelErrors.tooLarge(model, path, limits.maxBytes, total, { path: relPath, bytes: size });
      out.push({ path: relPath, absolute: full, size, follow: false });
    },
    onOther: (full) => {
      throw errors.badRequest(`Model path '${full}' is not a regular file (links are not followed).`);
    },
  });
  if (out.length === 0) throw errors.badRequest(`Model directory '${path}' holds no files.`);
  return out;
};
