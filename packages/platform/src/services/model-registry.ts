import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { actions, errors, type ModelVersion, type WorkspaceRecord } from '@amlsim/core';
import type { PlatformContext } from '../runtime/platform-context';
import type { ArmService } from './arm';
import type { DirectoryService } from './directory';

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** The blob path of a model version's file: models/<name>/<version>/<file>. */
export const modelBlob = (model: string, version: number, file: string): string => `models/${model}/${version}/${file}`;

/**
 * The model registry (S8.5 "the user registers a model"): a name with versions (registering a
 * name again adds a version) and tags; the files go to the workspace's blob storage, encrypted
 * at rest (S4.1), written by the workspace identity. A registration counts in the workspace
 * metrics (S7.1) and is deliberately absent from the activity log (S7.2).
 */
export class ModelRegistry {
  constructor(
    private readonly p: PlatformContext,
    private readonly directory: DirectoryService,
    private readonly arm: ArmService,
  ) {}

  async registerModel(token: string | undefined, args: { workspace: string; name: string; path: string; tags?: Record<string, string> }): Promise<ModelVersion> {
    return this.p.bus.run('RegisterModel', (ctx) => {
      const who = this.directory.authenticate(ctx, token, 'registerModel');
      const ws = this.arm.workspace(args.workspace);
      this.arm.check(ctx, who, actions.registerModel, ws.scope);
      if (!MODEL_NAME.test(args.name)) {
        throw errors.badRequest(`Model name '${args.name}' is invalid: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 255.`);
      }
      if (ws.revoked.includes('storage')) throw errors.managedIdentityAccessDenied(ws.workspace, 'storage account', 'registerModel');
      const files = readModelFiles(args.path);
      const version = (this.p.world.models[ws.workspaceId]?.[args.name]?.length ?? 0) + 1;
      const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
      for (const f of files) this.p.storage.putBlob(identity, ws.storageAccount!, ws.blobContainer!, modelBlob(args.name, version, f.path), f.content);
      const stream = `models-${ws.workspaceId}`;
      ctx.emit(stream, this.p.store.streamVersion(stream), [
        {
          type: 'ModelRegistered',
          data: {
            workspaceId: ws.workspaceId,
            workspace: ws.workspace,
            modelId: `${args.name}:${version}`,
            model: args.name,
            version,
            files: files.map((f) => ({ path: f.path, bytes: f.content.length, sha256: createHash('sha256').update(f.content).digest('hex') })),
            tags: args.tags ?? {},
          },
        },
      ]);
      return this.version(ws, args.name, version);
    });
  }

  /** A registered version (S2.2 "view models": Reader too). */
  async getModel(token: string | undefined, args: { workspace: string; name: string; version?: number }): Promise<ModelVersion> {
    return this.p.bus.run('GetModel', (ctx) => {
      const who = this.directory.authenticate(ctx, token, 'getModel');
      const ws = this.arm.workspace(args.workspace);
      this.arm.check(ctx, who, actions.viewModels, ws.scope);
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

/** A model is a file (it keeps its name) or a directory (its files, relative paths kept). */
const readModelFiles = (path: string): Array<{ path: string; content: Buffer }> => {
  if (!existsSync(path)) throw errors.notFound('model path', path);
  const st = statSync(path);
  if (st.isFile()) return [{ path: basename(path), content: readFileSync(path) }];
  if (!st.isDirectory()) throw errors.badRequest(`Model path '${path}' is neither a file nor a directory.`);
  const out: Array<{ path: string; content: Buffer }> = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push({ path: relative(path, full).split(sep).join('/'), content: readFileSync(full) });
      else throw errors.badRequest(`Model path '${full}' is not a regular file (links are not followed).`);
    }
  };
  walk(path);
  if (out.length === 0) throw errors.badRequest(`Model directory '${path}' holds no files.`);
  return out;
};
