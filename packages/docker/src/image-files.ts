import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * One entry of an image's root filesystem. `path` is where it appears in the container
 * (absolute, e.g. `/usr/bin/node`).
 *
 * - `content`: bytes given inline (small generated files: scripts, /etc/passwd).
 * - `hostPath`: a file copied from this machine at build time. Only the path is held, so a
 *   cached file list for the ~100 MB Node runtime costs no memory; contents are streamed into
 *   the build context.
 * - `linkTo`: a symbolic link (e.g. `/bin/sh` -> `busybox`).
 * - `directory`: an (empty) directory, e.g. `/tmp` with mode 01777.
 */
export type ImageFile =
  | { path: string; content: Buffer | string; mode?: number }
  | { path: string; hostPath: string; mode?: number }
  | { path: string; linkTo: string }
  | { path: string; directory: true; mode?: number };

/** Normalises an in-image path to `a/b/c` (no leading slash), refusing anything escaping the root. */
export function imageRelativePath(p: string): string {
  const normalized = path.posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
  if (normalized === '' || normalized.split('/').includes('..')) {
    throw new Error(`image file path '${p}' must name something below '/'`);
  }
  return normalized;
}

/**
 * A stable digest of a file list, for content-addressed image tags. Inline contents are hashed;
 * host files are identified by path, size and mtime (hashing ~100 MB on every start would cost
 * more than the build it saves, and a changed binary changes its mtime).
 */
export async function digestFiles(files: readonly ImageFile[]): Promise<string> {
  const hash = createHash('sha256');
  const sorted = [...files].sort((a, b) => compare(imageRelativePath(a.path), imageRelativePath(b.path)));
  for (const file of sorted) {
    const rel = imageRelativePath(file.path);
    if ('content' in file) {
      const digest = createHash('sha256').update(file.content).digest('hex');
      hash.update(`file\0${rel}\0${file.mode ?? ''}\0${digest}\n`);
    } else if ('hostPath' in file) {
      const st = await stat(file.hostPath);
      hash.update(`host\0${rel}\0${file.mode ?? ''}\0${file.hostPath}\0${st.size}\0${st.mtimeMs}\0${st.mode}\n`);
    } else if ('linkTo' in file) {
      hash.update(`link\0${rel}\0${file.linkTo}\n`);
    } else {
      hash.update(`dir\0${rel}\0${file.mode ?? ''}\n`);
    }
  }
  return hash.digest('hex');
}

/** Digest of any JSON-able value with sorted object keys, so key order never changes a tag. */
export function digestJson(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex');
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => compare(a, b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
