import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IgnoreRules, loadIgnoreRules, parseIgnoreRules } from './ignore-rules';

const rules = (...lines: string[]) => new IgnoreRules(lines.join('\n'), '.amlignore');

describe('IgnoreRules (gitignore semantics)', () => {
  it('skips comments and blank lines; \\# is a literal', () => {
    const r = rules('# a comment', '', '   ', '\\#hash', 'x.log');
    expect(r.rules.map((x) => x.source)).toEqual(['\\#hash', 'x.log']);
    expect(r.isIgnored('#hash', false)).toBe(true);
    expect(r.isIgnored('# a comment', false)).toBe(false);
  });

  it('matches a slash-less pattern at any depth, an anchored one only at the root', () => {
    const r = rules('*.log', '/build', 'docs/tmp');
    expect(r.isIgnored('a.log', false)).toBe(true);
    expect(r.isIgnored('deep/er/a.log', false)).toBe(true);
    expect(r.isIgnored('build', true)).toBe(true);
    expect(r.isIgnored('src/build', true)).toBe(false);
    expect(r.isIgnored('docs/tmp', false)).toBe(true);
    expect(r.isIgnored('x/docs/tmp', false)).toBe(false); // inner slash anchors too
  });

  it('a trailing slash matches directories only (and what is inside them)', () => {
    const r = rules('out/');
    expect(r.isIgnored('out', true)).toBe(true);
    expect(r.isIgnored('out', false)).toBe(false);
    expect(r.isIgnored('a/out', true)).toBe(true);
    expect(r.isIgnored('a/out/model.pkl', false)).toBe(true);
  });

  it('negation re-includes a file, but not inside an excluded directory', () => {
    const r = rules('*.csv', '!keep.csv', 'data/', '!data/small.csv');
    expect(r.isIgnored('big.csv', false)).toBe(true);
    expect(r.isIgnored('keep.csv', false)).toBe(false);
    expect(r.isIgnored('sub/keep.csv', false)).toBe(false);
    expect(r.isIgnored('data/small.csv', false)).toBe(true); // parent excluded: cannot re-include
  });

  it('last matching rule wins', () => {
    expect(rules('!a.txt', 'a.txt').isIgnored('a.txt', false)).toBe(true);
    expect(rules('a.txt', '!a.txt').isIgnored('a.txt', false)).toBe(false);
  });

  it('data/** ignores the contents, so a file inside can be re-included', () => {
    const r = rules('data/**', '!data/keep.txt');
    expect(r.isIgnored('data', true)).toBe(false);
    expect(r.isIgnored('data/x.bin', false)).toBe(true);
    expect(r.isIgnored('data/sub/y.bin', false)).toBe(true);
    expect(r.isIgnored('data/keep.txt', false)).toBe(false);
  });

  it('**/ matches at any depth, /**/ zero or more directories', () => {
    const r = rules('**/cache', 'a/**/b.txt');
    expect(r.isIgnored('cache', true)).toBe(true);
    expect(r.isIgnored('x/y/cache', false)).toBe(true);
    expect(r.isIgnored('a/b.txt', false)).toBe(true);
    expect(r.isIgnored('a/x/y/b.txt', false)).toBe(true);
    expect(r.isIgnored('z/a/b.txt', false)).toBe(false);
  });

  it('*, ? and classes do not cross a slash', () => {
    const r = rules('/src/*.py', 'file?.txt', 'run[0-9].log', 'tmp[!ab]', '[[:digit:]]x');
    expect(r.isIgnored('src/train.py', false)).toBe(true);
    expect(r.isIgnored('src/sub/train.py', false)).toBe(false);
    expect(r.isIgnored('file1.txt', false)).toBe(true);
    expect(r.isIgnored('file12.txt', false)).toBe(false);
    expect(r.isIgnored('run7.log', false)).toBe(true);
    expect(r.isIgnored('runx.log', false)).toBe(false);
    expect(r.isIgnored('tmpc', false)).toBe(true);
    expect(r.isIgnored('tmpa', false)).toBe(false);
    expect(r.isIgnored('5x', false)).toBe(true);
    expect(r.isIgnored('q/5x', false)).toBe(true);
  });

  it('escapes, trailing spaces and regex metacharacters are literal', () => {
    const r = rules('a+b(1).txt', 'trail   ', 'space\\ ', '\\!bang', '[abc');
    expect(r.isIgnored('a+b(1).txt', false)).toBe(true);
    expect(r.isIgnored('aab(1).txt', false)).toBe(false);
    expect(r.isIgnored('trail', false)).toBe(true);
    expect(r.isIgnored('space ', false)).toBe(true);
    expect(r.isIgnored('!bang', false)).toBe(true);
    expect(r.isIgnored('[abc', false)).toBe(false); // as git: an unterminated class never matches
    expect(rules('\\[abc').isIgnored('[abc', false)).toBe(true);
  });

  it('always ignores .git directories, whatever the rules say', () => {
    const r = rules('!.git');
    expect(r.isIgnored('.git', true)).toBe(true);
    expect(r.isIgnored('.git/config', false)).toBe(true);
    expect(r.isIgnored('sub/.git/HEAD', false)).toBe(true);
    expect(r.isIgnored('.gitignore', false)).toBe(false);
    expect(IgnoreRules.none().isIgnored('.git', true)).toBe(true);
  });

  it('accepts ./ prefixes and CRLF files', () => {
    expect(parseIgnoreRules('a\r\nb\r\n').map((x) => x.source)).toEqual(['a', 'b']);
    expect(rules('b').isIgnored('./x/b', false)).toBe(true);
  });
});

describe('loadIgnoreRules', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'amlsim-ignore-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('prefers .amlignore over .gitignore, falls back to .gitignore, else none', async () => {
    const dir = tmp();
    expect((await loadIgnoreRules(dir)).source).toBeNull();
    writeFileSync(join(dir, '.gitignore'), 'from-git\n');
    const git = await loadIgnoreRules(dir);
    expect(git.source).toBe('.gitignore');
    expect(git.isIgnored('from-git', false)).toBe(true);
    writeFileSync(join(dir, '.amlignore'), 'from-aml\n');
    const aml = await loadIgnoreRules(dir);
    expect(aml.source).toBe('.amlignore');
    expect(aml.isIgnored('from-aml', false)).toBe(true);
    expect(aml.isIgnored('from-git', false)).toBe(false);
  });

  it('an empty .amlignore still wins (nothing ignored)', async () => {
    const dir = tmp();
    writeFileSync(join(dir, '.amlignore'), '');
    writeFileSync(join(dir, '.gitignore'), '*\n');
    const r = await loadIgnoreRules(dir);
    expect(r.source).toBe('.amlignore');
    expect(r.isIgnored('train.py', false)).toBe(false);
  });

  it('a directory named .amlignore is not an ignore file', async () => {
    const dir = tmp();
    mkdirSync(join(dir, '.amlignore'));
    writeFileSync(join(dir, '.gitignore'), 'x\n');
    expect((await loadIgnoreRules(dir)).source).toBe('.gitignore');
  });
});
