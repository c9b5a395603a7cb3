import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimError } from '@amlsim/core';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK_BYTES, fileChunks } from './file-chunks';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'amlsim-chunks-'));
  dirs.push(d);
  return d;
};

class TooLarge extends Error {
  constructor(readonly seen: number) {
    super(`too large: ${seen}`);
  }
}

describe('fileChunks', () => {
  it('hands a file on in chunks of at most CHUNK_BYTES and answers its size', () => {
    const file = join(tmp(), 'f.bin');
    const bytes = Buffer.alloc(2 * CHUNK_BYTES + 5, 7);
    writeFileSync(file, bytes);
    const gen = fileChunks(file, { maxBytes: bytes.length, tooLarge: (n) => new TooLarge(n) });
    const chunks: Buffer[] = [];
    let step = gen.next();
    for (; !step.done; step = gen.next()) chunks.push(step.value);
    expect(step.value).toBe(bytes.length);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(CHUNK_BYTES);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('a file longer than it was measured is refused once past the limit, before the excess is handed on', () => {
    const file = join(tmp(), 'grown.bin');
    writeFileSync(file, Buffer.alloc(3 * CHUNK_BYTES));
    const got: Buffer[] = [];
    let error: unknown;
    try {
      // Measured at 10 bytes (the hint), allowed 2 chunks: it has grown to 3.
      for (const c of fileChunks(file, { maxBytes: 2 * CHUNK_BYTES, sizeHint: 10, tooLarge: (n) => new TooLarge(n) })) got.push(c);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TooLarge);
    expect((error as TooLarge).seen).toBeGreaterThan(2 * CHUNK_BYTES);
    expect(got.reduce((n, c) => n + c.length, 0)).toBeLessThanOrEqual(2 * CHUNK_BYTES);
  });

  it('follow: false refuses a symbolic link; a missing file is ResourceNotFound (SimErrors, not crashes)', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'real'), 'x');
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const first = (path: string, follow: boolean) => () => fileChunks(path, { maxBytes: 10, follow, tooLarge: (n) => new TooLarge(n) }).next();
    expect(first(join(dir, 'link'), true)().value).toEqual(Buffer.from('x'));
    expect(first(join(dir, 'link'), false)).toThrow(SimError);
    expect(first(join(dir, 'link'), false)).toThrow('is a symbolic link');
    let missing: unknown;
    try {
      first(join(dir, 'nope'), true)();
    } catch (e) {
      missing = e;
    }
    expect((missing as SimError).code).toBe('ResourceNotFound');
  });
});
