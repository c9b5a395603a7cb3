import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import tar from 'tar-stream';
import { imageRelativePath, type ImageFile } from './image-files';

/** What goes into the generated Dockerfile besides `FROM` and `COPY rootfs/ /`. */
export interface DockerfileSpec {
  /** `scratch` or a local image tag. Nothing is ever pulled (docs/architecture.md "Docker conventions"). */
  from: string;
  labels?: Record<string, string>;
  env?: Record<string, string>;
  workdir?: string;
  user?: string;
  cmd?: string[];
}

// Fixed mtime: the same inputs give the same tar, whatever the host clock says.
const EPOCH = new Date(0);

/**
 * Generates the Dockerfile. Values are JSON-quoted: Dockerfile double-quoted strings accept
 * JSON's escapes, so a label or env value with spaces or quotes survives intact.
 */
export function renderDockerfile(spec: DockerfileSpec): string {
  const lines = [`FROM ${spec.from}`, 'COPY rootfs/ /'];
  const labels = Object.entries(spec.labels ?? {});
  if (labels.length > 0) lines.push(`LABEL ${labels.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`);
  const env = Object.entries(spec.env ?? {});
  // An unquoted key with a space would silently become the legacy `ENV key value` form.
  for (const [k] of env) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`environment variable name '${k}' is not valid`);
  if (env.length > 0) lines.push(`ENV ${env.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  if (spec.workdir) lines.push(`WORKDIR ${spec.workdir}`);
  if (spec.user) lines.push(`USER ${spec.user}`);
  // Exec form: no shell is needed (a scratch image may have none).
  if (spec.cmd) lines.push(`CMD ${JSON.stringify(spec.cmd)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the build context (`Dockerfile` + `rootfs/…`) into `pack`, then finalizes it.
 * Runs concurrently with the build request consuming the pack, and honours backpressure,
 * so a large host file is streamed rather than held in memory.
 */
export async function writeBuildContext(pack: tar.Pack, dockerfile: string, files: readonly ImageFile[]): Promise<void> {
  await addEntry(pack, { name: 'Dockerfile', mode: 0o644, mtime: EPOCH }, Buffer.from(dockerfile));

  // Parent directories first, each once; an explicit directory entry sets its own mode.
  const explicitDirs = new Map<string, number | undefined>();
  for (const f of files) if ('directory' in f) explicitDirs.set(imageRelativePath(f.path), f.mode);
  const dirs = new Set<string>(['rootfs']);
  for (const f of files) {
    const rel = imageRelativePath(f.path);
    const parts = rel.split('/');
    const upto = 'directory' in f ? parts.length : parts.length - 1;
    for (let i = 1; i <= upto; i++) dirs.add(`rootfs/${parts.slice(0, i).join('/')}`);
  }
  for (const dir of [...dirs].sort()) {
    const mode = explicitDirs.get(dir.slice('rootfs/'.length)) ?? 0o755;
    await addEntry(pack, { name: `${dir}/`, type: 'directory', mode, mtime: EPOCH });
  }

  for (const f of files) {
    const name = `rootfs/${imageRelativePath(f.path)}`;
    if ('directory' in f) continue;
    if ('linkTo' in f) {
      await addEntry(pack, { name, type: 'symlink', linkname: f.linkTo, mode: 0o777, mtime: EPOCH });
    } else if ('content' in f) {
      await addEntry(pack, { name, mode: f.mode ?? 0o644, mtime: EPOCH }, Buffer.from(f.content));
    } else {
      await addHostFile(pack, name, f.hostPath, f.mode);
    }
  }
  pack.finalize();
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) pack.entry(header, body, cb);
    else pack.entry(header, cb);
  });
}

async function addHostFile(pack: tar.Pack, name: string, hostPath: string, mode: number | undefined): Promise<void> {
  const st = await stat(hostPath); // follows symlinks: the image gets the real file's bytes
  if (!st.isFile()) throw new Error(`'${hostPath}' (for ${name.slice('rootfs'.length)}) is not a regular file`);
  let entry!: ReturnType<tar.Pack['entry']>;
  // The executor runs synchronously, so `entry` is set before it is used below.
  const done = new Promise<void>((resolve, reject) => {
    entry = pack.entry({ name, size: st.size, mode: mode ?? st.mode & 0o7777, mtime: EPOCH }, (err) => (err ? reject(err) : resolve()));
  });
  for await (const chunk of createReadStream(hostPath)) {
    if (!entry.write(chunk as Buffer)) await once(entry, 'drain');
  }
  entry.end(undefined); // streamx types want an argument; undefined writes nothing
  await done;
}

