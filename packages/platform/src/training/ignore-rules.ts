import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Which files a code snapshot leaves out (S8.2), with gitignore semantics and no dependency.
 *
 * Azure ML reads `.amlignore` at the root of the source directory if there is one, otherwise
 * `.gitignore`, otherwise nothing is ignored. Only the root-level file is read (nested ignore
 * files are not consulted). The ignore file itself is *not* ignored: it is part of the
 * snapshot, as on the platform — unless one of its own patterns matches it.
 *
 * Supported: comments (`#`, `\#` for a literal), blank lines, trailing spaces (kept when
 * escaped with `\`), negation `!` (`\!` for a literal), trailing `/` (directories only), a
 * leading or inner `/` (anchored to the root), `*`, `?`, `[abc]` / `[a-z]` / `[!abc]` /
 * `[^abc]` / `[[:digit:]]` (an unterminated `[` makes the pattern match nothing, as in
 * git), `**` as a whole segment (leading: any depth; trailing: everything inside; in the
 * middle: zero or more directories), `\` escapes.
 * A pattern without a slash matches the name at any depth. `*`, `?` and classes never match
 * `/`. Matching is case-sensitive. As in git, a file cannot be re-included (`!`) when one of
 * its parent directories is excluded; last matching rule wins otherwise.
 *
 * Directories named `.git` are always ignored: the platform does not upload them.
 */

export type IgnoreFileName = '.amlignore' | '.gitignore';

/** Looked up in this order; the first that exists wins. */
export const IGNORE_FILE_NAMES: readonly IgnoreFileName[] = ['.amlignore', '.gitignore'];

/** Directory names ignored whatever the ignore file says. */
export const ALWAYS_IGNORED_DIRECTORIES: readonly string[] = ['.git'];

export type IgnoreRule = {
  /** The line as written (trailing unescaped spaces removed). */
  source: string;
  /** 1-based line number in the ignore file. */
  line: number;
  negated: boolean;
  directoryOnly: boolean;
  anchored: boolean;
  regex: RegExp;
};

export class IgnoreRules {
  readonly rules: readonly IgnoreRule[];

  /**
   * @param text contents of an ignore file (empty for none)
   * @param source which file the rules came from (`null`: no ignore file)
   */
  constructor(
    text: string,
    readonly source: IgnoreFileName | null = null,
  ) {
    this.rules = parseIgnoreRules(text);
  }

  static none(): IgnoreRules {
    return new IgnoreRules('', null);
  }

  /**
   * Whether `relativePath` (POSIX separators, relative to the snapshot root, no leading
   * `./`) is left out of the snapshot. `isDirectory` says whether the path names a
   * directory (patterns with a trailing `/` only match directories). A path inside an
   * ignored directory is ignored.
   */
  isIgnored(relativePath: string, isDirectory: boolean): boolean {
    const path = normalizeRelative(relativePath);
    if (path === '') return false;
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = i < parts.length - 1 || isDirectory;
      if (dir && ALWAYS_IGNORED_DIRECTORIES.includes(parts[i]!)) return true;
    }
    for (let k = 1; k < parts.length; k++) {
      if (this.matches(parts.slice(0, k).join('/'), true)) return true;
    }
    return this.matches(path, isDirectory);
  }

  /** Last matching rule wins; no ancestor check. */
  private matches(path: string, isDirectory: boolean): boolean {
    let ignored = false;
    for (const rule of this.rules) {
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.negated === !ignored) continue; // cannot change the outcome
      if (rule.regex.test(path)) ignored = !rule.negated;
    }
    return ignored;
  }
}

/**
 * Reads `<rootDir>/.amlignore` if present, else `<rootDir>/.gitignore`, else no rules.
 * `rules.source` says which file was used.
 */
export async function loadIgnoreRules(rootDir: string): Promise<IgnoreRules> {
  for (const name of IGNORE_FILE_NAMES) {
    let text: string;
    try {
      text = await readFile(join(rootDir, name), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') continue;
      throw err;
    }
    return new IgnoreRules(text, name);
  }
  return IgnoreRules.none();
}

export function parseIgnoreRules(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const rule = parseLine(raw, index + 1);
    if (rule) rules.push(rule);
  });
  return rules;
}

function parseLine(raw: string, line: number): IgnoreRule | undefined {
  let text = stripTrailingSpaces(raw);
  if (text === '' || text.startsWith('#')) return undefined;
  const source = text;
  let negated = false;
  if (text.startsWith('!')) {
    negated = true;
    text = text.slice(1);
  }
  let directoryOnly = false;
  while (text.endsWith('/') && !text.endsWith('\\/')) {
    directoryOnly = true;
    text = text.slice(0, -1);
  }
  if (text === '') return undefined;
  const anchored = text.includes('/');
  if (text.startsWith('/')) text = text.replace(/^\/+/, '');
  if (text === '') return undefined;
  let body: string;
  try {
    body = globToRegexSource(text);
  } catch {
    return undefined; // a pattern we cannot compile matches nothing
  }
  const regex = new RegExp(`^${anchored ? '' : '(?:.*/)?'}${body}$`, 's');
  return { source, line, negated, directoryOnly, anchored, regex };
}

/** Trailing spaces are dropped unless escaped with a backslash. */
function stripTrailingSpaces(line: string): string {
  let end = line.length;
  while (end > 0 && line[end - 1] === ' ') {
    let backslashes = 0;
    for (let i = end - 2; i >= 0 && line[i] === '\\'; i--) backslashes++;
    if (backslashes % 2 === 1) break; // `\ ` keeps that space (and those before it)
    end--;
  }
  return line.slice(0, end);
}

function globToRegexSource(pattern: string): string {
  const segments = pattern.split('/');
  let out = '';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') {
      if (last) out += i === 0 ? '.*' : '.+'; // `x/**`: everything inside x, not x itself
      else out += '(?:.*/)?'; // zero or more directories
      return;
    }
    out += segmentToRegexSource(segment);
    if (!last) out += '/';
  });
  return out;
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/]/g;
const escapeRegex = (s: string): string => s.replace(REGEX_SPECIAL, '\\$&');
const escapeClassChar = (c: string): string => (/[\\\]\[^-]/.test(c) ? `\\${c}` : c);

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  xdigit: '0-9a-fA-F',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
};

function segmentToRegexSource(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '\\') {
      const next = segment[i + 1];
      if (next !== undefined) {
        out += escapeRegex(next);
        i++;
      }
      // a lone trailing backslash matches nothing in git; treat it as absent
      continue;
    }
    if (c === '*') {
      while (segment[i + 1] === '*') i++; // `**` inside a segment is a plain `*`
      out += '[^/]*';
      continue;
    }
    if (c === '?') {
      out += '[^/]';
      continue;
    }
    if (c === '[') {
      const parsed = parseClass(segment, i);
      // As in git's wildmatch, a `[` without its `]` makes the whole pattern match nothing.
      if (!parsed) throw new Error('unterminated character class');
      out += parsed.source;
      i = parsed.end;
      continue;
    }
    out += escapeRegex(c);
  }
  return out;
}

/** Parses `[...]` starting at `start`; undefined when there is no closing `]`. */
function parseClass(segment: string, start: number): { source: string; end: number } | undefined {
  let j = start + 1;
  let negated = false;
  if (segment[j] === '!' || segment[j] === '^') {
    negated = true;
    j++;
  }
  const items: string[] = [];
  let first = true;
  let previous: string | undefined; // last single character, for ranges
  while (j < segment.length) {
    let c = segment[j]!;
    if (c === ']' && !first) {
      const body = items.join('');
      const source = negated ? `[^${body}/]` : `(?!/)[${body}]`;
      return { source, end: j };
    }
    first = false;
    if (c === '[' && segment[j + 1] === ':') {
      const close = segment.indexOf(':]', j + 2);
      if (close !== -1) {
        const name = segment.slice(j + 2, close);
        const cls = POSIX_CLASSES[name];
        if (cls) items.push(cls);
        previous = undefined;
        j = close + 2;
        continue;
      }
    }
    if (c === '\\' && j + 1 < segment.length) {
      j++;
      c = segment[j]!;
    }
    if (c === '-' && previous !== undefined && j + 1 < segment.length && segment[j + 1] !== ']') {
      let hi = segment[j + 1]!;
      let skip = 1;
      if (hi === '\\' && j + 2 < segment.length) {
        hi = segment[j + 2]!;
        skip = 2;
      }
      items.pop();
      if (previous <= hi) items.push(`${escapeClassChar(previous)}-${escapeClassChar(hi)}`);
      // a reversed range matches nothing
      previous = undefined;
      j += 1 + skip;
      continue;
    }
    items.push(escapeClassChar(c));
    previous = c;
    j++;
  }
  return undefined;
}

function normalizeRelative(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  p = p.replace(/\/+$/, '').replace(/\/{2,}/g, '/');
  if (p === '.') return '';
  return p;
}
