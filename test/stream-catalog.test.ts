import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STREAMS, parseStream, streamKindOf } from '@amlsim/core';
import { REPO } from './helpers';

/** The source files of every package (tests aside: they may build streams of their own). */
const sources = (): string[] =>
  readdirSync(join(REPO, 'packages'))
    .flatMap((pkg) => {
      const src = join(REPO, 'packages', pkg, 'src');
      try {
        return readdirSync(src, { recursive: true, withFileTypes: true }).map((d) => join(d.parentPath, d.name));
      } catch {
        return [];
      }
    })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('contract'));

const KINDS = Object.keys(STREAMS).map((kind) => STREAMS[kind as keyof typeof STREAMS]('\u0000', '\u0000').split('\u0000')[0]!);

describe('stream catalog (packages/core/src/streams/catalog.ts)', () => {
  it('is the only place that spells a stream id', () => {
    const catalog = join(REPO, 'packages', 'core', 'src', 'streams', 'catalog.ts');
    // A known kind spelled out anywhere, or any `<word>-${…}` where a stream is used.
    const literal = new RegExp(`[\`'"](${KINDS.map((k) => k.replace(/-$/, '')).join('|')})-(\\$\\{|['"\`])`);
    const streamish = /(emit|emitAsPlatform|readStream|streamVersion|stream:|stream =)[^;]*[`'"][a-z][a-z-]*-\$\{/;
    const offenders = sources()
      .filter((f) => f !== catalog)
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, at: `${relative(REPO, f)}:${i + 1}` }))
          .filter(({ line }) => (literal.test(line) || streamish.test(line)) && !line.trim().startsWith('//') && !line.trim().startsWith('*')),
      )
      .map(({ at, line }) => `${at}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });

  it('knows the kind of every stream it names, and no other', () => {
    for (const kind of Object.keys(STREAMS) as Array<keyof typeof STREAMS>) expect(streamKindOf(STREAMS[kind]('k1', 'k2'))).toBe(kind);
    expect(streamKindOf('nonsense-1')).toBeUndefined();
    expect(new Set(KINDS).size).toBe(KINDS.length);
  });

  it('takes every stream it names apart into its kind and the key after the prefix', () => {
    for (const kind of Object.keys(STREAMS) as Array<keyof typeof STREAMS>) {
      const parsed = parseStream(STREAMS[kind]('k1', 'k2'));
      expect(parsed?.kind).toBe(kind);
      expect(parsed?.key.startsWith('k1')).toBe(true);
    }
    expect(parseStream(STREAMS.service('svc_1'))).toEqual({ kind: 'service', key: 'svc_1' });
    expect(parseStream('nonsense-1')).toBeUndefined();
  });
});
