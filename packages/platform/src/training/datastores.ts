import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RUNTIME_USER } from '@amlsim/docker';
import { errors, isSimError, RUN_INPUT_MODES, SimError, type RunInputSpec, type WorkspaceRecord } from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { sessionTempPath } from '../runtime/session-temp';
import { grantTargetRead } from '../runtime/socket-doors';
import type { BlobStorageService, StorageCredential } from '../workspace/blob-storage';
import { fileChunks, fileError, walkRegularFiles } from '../workspace/file-chunks';

/**
 * Datastores' data (S4.2): training data lives in a blob container of the workspace's storage
 * account (attachDatastore), sealed at rest like every blob (S4.1). AML does not manage it: a
 * user puts files there (`uploadDatastoreFiles`), and a run names them as an input; when the
 * run's target starts, the files are read with the workspace's managed identity (a revoked
 * storage grant refuses it, S2.5), decrypted into a directory of the session's that only the
 * platform reaches, and bind-mounted into the target — read-only for `mount`, a writable copy
 * for `download` — at `/mnt/azureml/inputs/<name>` (docs/control-plane.md "Inputs"). Nothing of
 * it goes into the code snapshot, and the directory is removed when the run ends.
 */

/** Where a run's inputs appear inside a container (AZUREML_DATAREFERENCE_<name> names it to the script). */
export const RUN_INPUTS_ROOT = '/mnt/azureml/inputs';
/** The environment variable that gives the script an input's path (as SDK v1's data references do). */
export const dataReferenceVariable = (input: string): string => `AZUREML_DATAREFERENCE_${input}`;

/**
 * The simulator's limits for one upload: the files are read, hashed and sealed chunk by chunk,
 * and a mount decrypts them to a local directory, so both stay bounded.
 */
export const DATASTORE_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxFiles: 10_000 } as const;

/** An input's name is the suffix of an environment variable. */
const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** A blob name becomes a file name (percent-encoded, + '.bin'): keep it under the file system's 255 bytes. */
const MAX_ENCODED_BLOB = 240;

/** What a run's `inputs` argument gives for each input, before the platform resolves it. */
export type RunInputArgs = Record<string, { datastore: string; path?: string; mode?: string }>;

/**
 * A path inside a datastore, as blob names spell it: `/`-separated, no leading or trailing `/`,
 * no `.` or `..` segment ('' is the whole container). A `..` is refused: a blob name must never
 * lead a mount out of its directory.
 */
export const datastorePath = (path: string | undefined, what: string): string => {
  const segments = (path ?? '').split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..' || s.includes('\\') || s.includes('\0'))) {
    throw errors.badRequest(`${what} '${path}' is not a datastore path: use '/'-separated names inside the datastore, without '..'.`, { path });
  }
  return segments.join('/');
};

/**
 * S4.2: a run's inputs checked against the workspace: each names an attached datastore (an
 * unknown one is refused naming those attached) and a mode of {@link RUN_INPUT_MODES}.
 */
export function resolveRunInputs(ws: WorkspaceRecord, inputs: RunInputArgs | undefined): RunInputSpec[] {
  return Object.entries(inputs ?? {}).map(([name, input]) => {
    if (!INPUT_NAME.test(name)) {
      throw errors.badRequest(`Input name '${name}' is invalid: letters, digits and '_', not starting with a digit, at most 64 (it names ${dataReferenceVariable('<name>')}).`, { input: name });
    }
    const mode = input.mode ?? 'mount';
    if (!(RUN_INPUT_MODES as readonly string[]).includes(mode)) {
      throw errors.badRequest(`Input '${name}' has mode '${mode}'; the modes are ${RUN_INPUT_MODES.join(', ')}.`, { input: name, mode });
    }
    const store = ws.datastores[input.datastore];
    if (!store) {
      const known = Object.keys(ws.datastores);
      throw errors.notFound('datastore', input.datastore, `workspace '${ws.workspace}' (attached: ${known.join(', ') || 'none; attach one with attachDatastore'})`);
    }
    return { name, datastore: input.datastore, container: store.container, path: datastorePath(input.path, `The path of input '${name}'`), mode: mode as RunInputSpec['mode'] };
  });
}

/** The blobs of `container` that are `path` itself or under it, each with its path relative to `path`. */
export function blobsUnder(storage: BlobStorageService, credential: StorageCredential, account: string, container: string, path: string): Array<{ blob: string; relative: string }> {
  return storage.listBlobs(credential, account, container).flatMap((blob) => {
    if (path === '') return [{ blob, relative: blob }];
    if (blob === path) return [{ blob, relative: basename(blob) }];
    return blob.startsWith(`${path}/`) ? [{ blob, relative: blob.slice(path.length + 1) }] : [];
  });
}

/** One fingerprint for a set of files: over their relative paths, sizes and contents' sha256, in path order. */
export const filesFingerprint = (files: ReadonlyArray<{ path: string; bytes: number; sha256: string }>): string =>
  fingerprint([...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.path}\t${f.bytes}\t${f.sha256}`).join('\n'));

type SourceFile = { path: string; absolute: string; size: number };

/** The files of an upload's source (a file, or a directory walked without following links), measured before any is read. */
function measureSource(source: string): SourceFile[] {
  let st;
  try {
    st = statSync(source);
  } catch (error) {
    throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? errors.notFound('upload source', source) : fileError(source, error);
  }
  const tooLarge = (bytes: number) =>
    errors.badRequest(`The upload from ${source} is ${bytes} bytes so far, over the limit of ${DATASTORE_LIMITS.maxBytes}; nothing was uploaded.`, { source });
  if (st.isFile()) {
    if (st.size > DATASTORE_LIMITS.maxBytes) throw tooLarge(st.size);
    return [{ path: basename(source), absolute: source, size: st.size }];
  }
  if (!st.isDirectory()) throw errors.badRequest(`Upload source '${source}' is neither a file nor a directory.`, { source });
  const out: SourceFile[] = [];
  let total = 0;
  // Links are not followed: an upload holds what is inside its source, nothing it points at.
  walkRegularFiles(source, {
    compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    onFile: (relPath, full, size) => {
      total += size;
      if (total > DATASTORE_LIMITS.maxBytes) throw tooLarge(total);
      if (out.length + 1 > DATASTORE_LIMITS.maxFiles) {
        throw errors.badRequest(`The upload from ${source} has more than ${DATASTORE_LIMITS.maxFiles} files; nothing was uploaded.`, { source });
      }
      out.push({ path: relPath, absolute: full, size });
    },
  });
  if (out.length === 0) throw errors.badRequest(`Upload source '${source}' holds no files; nothing was uploaded.`, { source });
  return out;
}

/**
 * S4.2: put the files of `source` in the blob container `container` under `path`, sealed and
 * hashed chunk by chunk as they are read, written with `credential` (the workspace identity).
 * A file that fails half-way takes back what this upload wrote. Answers what the event records.
 */
export function uploadDatastoreFiles(
  storage: BlobStorageService,
  credential: StorageCredential,
  account: string,
  container: string,
  source: string,
  path: string,
): { files: number; bytes: number; fingerprint: string } {
  const files = measureSource(source);
  for (const f of files) {
    const blob = path === '' ? f.path : `${path}/${f.path}`;
    if (encodeURIComponent(blob).length > MAX_ENCODED_BLOB) throw errors.badRequest(`The blob name '${blob}' is too long; nothing was uploaded.`, { blob });
  }
  const written: string[] = [];
  const stored: Array<{ path: string; bytes: number; sha256: string }> = [];
  try {
    for (const f of files) {
      const blob = path === '' ? f.path : `${path}/${f.path}`;
      const chunks = fileChunks(f.absolute, {
        maxBytes: DATASTORE_LIMITS.maxBytes,
        follow: false,
        sizeHint: f.size,
        tooLarge: (seen) => errors.badRequest(`'${f.path}' grew to ${seen} bytes while it was uploaded, over the limit; nothing was uploaded.`, { file: f.path }),
      });
      written.push(blob);
      const { bytes, sha256 } = storage.putBlobChunks(credential, account, container, blob, chunks);
      stored.push({ path: f.path, bytes, sha256 });
    }
  } catch (error) {
    for (const blob of written) storage.deleteBlob(credential, account, container, blob);
    throw error;
  }
  return { files: stored.length, bytes: stored.reduce((n, f) => n + f.bytes, 0), fingerprint: filesFingerprint(stored) };
}

/** The session's directory of a run's inputs: 0700, the platform's; its inputs are the directories inside. */
export const runInputsDir = (session: string, runId: string): string => sessionTempPath(session, 'in', runId);

/** Remove a run's inputs (its decrypted data); nothing there is no error. */
export const removeRunInputs = (session: string, runId: string): void => rmSync(runInputsDir(session, runId), { recursive: true, force: true });

/**
 * Why a run's input could not be given to it (the run fails with the message). Not in the core
 * catalog: `AuthorizationFailure` is the code Azure Storage answers a caller without a data-plane grant.
 */
export const inputErrors = {
  identityRefused: (spec: RunInputSpec, where: string, refusal: string) =>
    new SimError(
      'AuthorizationFailure',
      `the workspace identity has no access to ${where}: AuthorizationFailure: ${refusal} Input '${spec.name}' was not mounted; resyncKeys restores the identity's grant (S2.5).`,
      { status: 403, details: { input: spec.name, datastore: spec.datastore } },
    ),
  nothingAt: (spec: RunInputSpec, where: string) =>
    new SimError('ResourceNotFound', `input '${spec.name}': nothing is at path '${spec.path}' in ${where}.`, { status: 404, details: { input: spec.name, datastore: spec.datastore } }),
} as const;

/** One input decrypted into the run's inputs directory, and what `RunInputMounted` records of it. */
export type MountedInput = { spec: RunInputSpec; hostPath: string; readOnly: boolean; files: number; bytes: number; fingerprint: string };

/**
 * S4.2, when the run's target starts: each input's blobs are read with `credential` (the
 * workspace identity: a revoked storage grant is refused here, and the run fails saying so),
 * decrypted by the storage account, and written to `<inputs dir>/<name>/`, which is given to the
 * target's user (read-only files for `mount`; its own writable copy for `download`). On any
 * failure the inputs directory is removed and the error says which input and why (the run fails with it):
 * no target sees any of the data.
 */
export function mountRunInputs(
  storage: BlobStorageService,
  credential: StorageCredential,
  ws: WorkspaceRecord,
  session: string,
  runId: string,
  inputs: readonly RunInputSpec[],
): MountedInput[] {
  if (inputs.length === 0) return [];
  const root = runInputsDir(session, runId);
  // A start carried out again (a resumed session) decrypts afresh.
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { mode: 0o700 });
  const mounted: MountedInput[] = [];
  try {
    for (const spec of inputs) {
      const where = `datastore '${spec.datastore}' (storage account ${ws.storageAccount}, container ${spec.container})`;
      let blobs: Array<{ blob: string; relative: string }>;
      try {
        blobs = blobsUnder(storage, credential, ws.storageAccount!, spec.container, spec.path);
      } catch (error) {
        if (isSimError(error) && error.code === 'Forbidden') throw inputErrors.identityRefused(spec, where, error.message);
        throw error;
      }
      if (blobs.length === 0) throw inputErrors.nothingAt(spec, where);
      const dir = join(root, spec.name);
      mkdirSync(dir, { mode: 0o700 });
      const files: Array<{ path: string; bytes: number; sha256: string }> = [];
      for (const { blob, relative } of blobs) {
        const content = storage.getBlob(credential, ws.storageAccount!, spec.container, blob);
        const target = join(dir, relative);
        mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
        writeFileSync(target, content, { mode: 0o600 });
        files.push({ path: relative, bytes: content.length, sha256: createHash('sha256').update(content).digest('hex') });
      }
      const readOnly = spec.mode === 'mount';
      if (readOnly) grantTargetRead(dir);
      else grantTargetWrite(dir);
      mounted.push({ spec, hostPath: dir, readOnly, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0), fingerprint: filesFingerprint(files) });
    }
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return mounted;
}

/** A downloaded input is the target's own copy: its user owns it and may change it (the copy goes with the run). */
function grantTargetWrite(dir: string): void {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const visit = (path: string, isDir: boolean) => {
    if (root) chownSync(path, RUNTIME_USER.uid, RUNTIME_USER.gid);
    // Inside the 0700 inputs directory no other host user reaches it either way.
    chmodSync(path, isDir ? (root ? 0o700 : 0o777) : root ? 0o600 : 0o666);
  };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) visit(join(entry.parentPath, entry.name), entry.isDirectory());
  visit(dir, true);
}
