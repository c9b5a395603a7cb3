import { closeSync, constants, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '@amlsim/core';

/** What a read of a user's file reads at a time: memory stays bounded whatever the file's size. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * The bytes of a regular file, chunk by chunk, never more than `maxBytes` of them: the
 * file is measured (stat) and refused before this is called, and a file that grew since is
 * refused here, by `tooLarge(bytesSeenSoFar)`, as soon as the limit is passed, before the
 * extra bytes are handed on. With `follow: false` the file is opened with O_NOFOLLOW, so a
 * file swapped for a symbolic link since it was measured is refused, not followed.
 * I/O failures become SimErrors naming the file (a scenario step reports them; no crash).
 */
export function* fileChunks(
  path: string,
  options: { maxBytes: number; tooLarge: (measuredBytes: number) => Error; follow?: boolean; sizeHint?: number },
): Generator<Buffer, number> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (options.follow === false ? constants.O_NOFOLLOW : 0));
  } catch (error) {
    throw fileError(path, error);
  }
  let total = 0;
  try {
    for (;;) {
      // Sized to what is expected (plus one byte to see the end), so small files take small buffers.
      const expected = options.sizeHint === undefined ? CHUNK_BYTES : Math.max(options.sizeHint - total, 0) + 1;
      const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, expected));
      let read: number;
      try {
        read = readSync(fd, buf, 0, buf.length, null);
      } catch (error) {
        throw fileError(path, error);
      }
      if (read === 0) return total;
      total += read;
      if (total > options.maxBytes) throw options.tooLarge(total);
      yield read === buf.length ? buf : buf.subarray(0, read);
    }
  } finally {
    closeSync(fd);
  }
}

/** An I/O error on a user's file as a SimError the user can act on. */
export const fileError = (path: string, error: unknown): Error => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return errors.notFound('file', path);
  if (code === 'ELOOP') return errors.badRequest(`'${path}' is a symbolic link; links are not followed.`, { path });
  if (code === 'EACCES' || code === 'EPERM') return errors.badRequest(`'${path}' cannot be read (permission denied).`, { path });
  if (code === 'EISDIR') return errors.badRequest(`'${path}' is a directory, not a file.`, { path });
  if (code === 'EIO' || code === 'ENXIO' || code === 'EINVAL') return errors.badRequest(`'${path}' cannot be read (${code}).`, { path });
  return error instanceof Error ? error : new Error(String(error));
};

/**
 * Walk a directory's regular files depth-first, in name order (`compare`), never following a
 * link: `onFile` gets each file's path relative to `root` (with `/`), its absolute path and its
 * size (measured, not read), and may throw to stop at a limit; `onOther` gets what is neither a
 * file nor a directory (a link, a socket), ignored when not given.
 */
export const walkRegularFiles = (
  root: string,
  o: { compare: (a: string, b: string) => number; onFile: (relPath: string, absolute: string, size: number) => void; onOther?: (absolute: string) => void },
): void => {
  const walk = (dir: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      throw fileError(dir, error);
    }
    for (const entry of entries.sort((a, b) => o.compare(a.name, b.name))) {
      const full = join(dir, entry.name);
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(full, relPath);
      else if (entry.isFile()) {
        let size: number;
        try {
          size = lstatSync(full).size;
        } catch (error) {
          throw fileError(full, error);
        }
        o.onFile(relPath, full, size);
      } else o.onOther?.(full);
    }
  };
  walk(root, '');
};
