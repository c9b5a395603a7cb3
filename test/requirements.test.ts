import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { EVENT_CATALOG, REQUIREMENTS } from '@amlsim/core';
import { REQUIREMENTS_DOC_FILE, readScenarioCites, renderRequirementsDoc, scenarioCites } from '../scripts/gen-requirements-doc';
import { REPO } from './helpers';

/**
 * REQUIREMENTS (packages/core/src/requirements/catalog.ts) is where an id such as S7.2 is
 * defined. Everything else only cites ids: the event catalog, the scenario files, the docs and
 * the comments of the source. Each citing place is checked here against the catalog, and an
 * unknown id is reported with the file and line that cites it.
 */
const known = (id: string): boolean => Object.hasOwn(REQUIREMENTS, id);
/** Wider than the catalog's own form (S<digit>.<digit>) so that an S10.1 or S1.12 is caught too. */
const ID = /\bS\d+\.\d+\b/g;

/** The unknown ids in a text, as `file:line: id`; `line0` is the line the text starts on, less one. */
const unknownIn = (file: string, text: string, line0 = 0): string[] =>
  text.split('\n').flatMap((line, i) =>
    [...line.matchAll(ID)].map((m) => m[0]).filter((id) => !known(id)).map((id) => `${file}:${line0 + i + 1}: ${id}`),
  );

const filesUnder = (dir: string, keep: (name: string) => boolean): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && keep(d.name) && !d.parentPath.split(/[\\/]/).includes('node_modules'))
    .map((d) => join(d.parentPath, d.name))
    .sort();

/** packages/<name>/src of every package. */
const sourceDirs = readdirSync(join(REPO, 'packages'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(REPO, 'packages', d.name, 'src')))
  .map((d) => join(REPO, 'packages', d.name, 'src'));
const sources = sourceDirs.flatMap((dir) => filesUnder(dir, (name) => /\.(ts|tsx|mts|cts)$/.test(name) && !name.endsWith('.d.ts')));
const isTest = (file: string): boolean => /\.test\.tsx?$/.test(file);

/**
 * The text of a source file with every string, template, regular-expression literal and JSX
 * text blanked out (same length, newlines kept, so lines still count). What is left of an id is
 * in a comment.
 */
function commentsOnly(file: string, text: string): string {
  const kind = file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, kind);
  const literal = new Set([
    ts.SyntaxKind.StringLiteral,
    ts.SyntaxKind.NoSubstitutionTemplateLiteral,
    ts.SyntaxKind.TemplateHead,
    ts.SyntaxKind.TemplateMiddle,
    ts.SyntaxKind.TemplateTail,
    ts.SyntaxKind.RegularExpressionLiteral,
    ts.SyntaxKind.JsxText,
  ]);
  let out = text;
  const visit = (node: ts.Node): void => {
    if (literal.has(node.kind)) {
      const start = node.getStart(source);
      out = out.slice(0, start) + out.slice(start, node.end).replace(/[^\n]/g, ' ') + out.slice(node.end);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('docs/requirements.md', () => {
  it('is what scripts/gen-requirements-doc.ts renders from REQUIREMENTS, EVENT_CATALOG and the scenarios', () => {
    const regenerate = 'run `pnpm tsx scripts/gen-requirements-doc.ts`';
    expect(existsSync(REQUIREMENTS_DOC_FILE), `docs/requirements.md is missing; ${regenerate}`).toBe(true);
    expect(
      readFileSync(REQUIREMENTS_DOC_FILE, 'utf8'),
      `docs/requirements.md is out of date with packages/core/src/requirements/catalog.ts, EVENT_CATALOG or the cites of scenarios/*.yaml; ${regenerate}`,
    ).toBe(renderRequirementsDoc());
  });

  it('shows every requirement under its own heading', () => {
    const doc = readFileSync(REQUIREMENTS_DOC_FILE, 'utf8');
    const missing = Object.values(REQUIREMENTS).filter((r) => !doc.includes(`${r.id} ${r.title}\n\n${r.text}\n`));
    expect(missing.map((r) => r.id)).toEqual([]);
  });
});

describe('every cited requirement id exists in REQUIREMENTS', () => {
  it('reads the cites of a scenario with their lines', () => {
    expect(scenarioCites('name: x\ncites: [S1.1, "S2.2"] # shown\n')).toEqual([
      { id: 'S1.1', line: 2 },
      { id: 'S2.2', line: 2 },
    ]);
    expect(scenarioCites('name: x\ncites: [S1.1,\n  S8.5]\n')).toEqual([
      { id: 'S1.1', line: 2 },
      { id: 'S8.5', line: 3 },
    ]);
    expect(scenarioCites('name: x\ncites:\n  - S1.1\n  # note\n  - S8.5\ntenant: {}\n')).toEqual([
      { id: 'S1.1', line: 3 },
      { id: 'S8.5', line: 5 },
    ]);
    expect(scenarioCites('name: x\n')).toEqual([]);
  });

  it('in the event catalog', () => {
    const unknown = Object.entries(EVENT_CATALOG).flatMap(([type, { cites }]) => cites.filter((id) => !known(id)).map((id) => `${type}: ${id}`));
    expect(unknown, 'EVENT_CATALOG (packages/core/src/events/catalog.ts) cites ids that REQUIREMENTS does not define').toEqual([]);
  });

  it('in the cites of the scenario files', () => {
    const scenarios = readScenarioCites();
    expect(scenarios.some(({ cites }) => cites.length > 0), 'no scenario cites anything: the reader is broken').toBe(true);
    const unknown = scenarios.flatMap(({ file, cites }) => cites.filter(({ id }) => !known(id)).map(({ id, line }) => `scenarios/${file}:${line}: ${id}`));
    expect(unknown, 'scenario files cite ids that REQUIREMENTS does not define').toEqual([]);
  });

  it('anywhere in the scenario files (comments, step names)', () => {
    const unknown = filesUnder(join(REPO, 'scenarios'), (name) => /\.ya?ml$/.test(name)).flatMap((file) =>
      unknownIn(relative(REPO, file), readFileSync(file, 'utf8')),
    );
    expect(unknown, 'scenario files mention ids that REQUIREMENTS does not define').toEqual([]);
  });

  it('in README.md and docs/**/*.md', () => {
    const docs = [join(REPO, 'README.md'), ...filesUnder(join(REPO, 'docs'), (name) => name.endsWith('.md'))];
    const unknown = docs.flatMap((file) => unknownIn(relative(REPO, file), readFileSync(file, 'utf8')));
    expect(unknown, 'the docs mention ids that REQUIREMENTS does not define').toEqual([]);
  });

  it('in the source of packages/*/src: comments everywhere, and the code of non-test files', () => {
    expect(sources.length).toBeGreaterThan(50);
    // A test may feed the parser an unknown id on purpose, so only its comments are read.
    const unknown = sources.flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      const found = unknownIn(relative(REPO, file), text);
      // Parsing is the slow part: only a test file with an unknown id somewhere needs it.
      return found.length > 0 && isTest(file) ? unknownIn(relative(REPO, file), commentsOnly(file, text)) : found;
    });
    expect(unknown, 'the source mentions ids that REQUIREMENTS does not define').toEqual([]);
  });

  it('reads comments of a source file and leaves out its literals', () => {
    const text = "// S9.1 here\nconst a = 'S9.2';\nconst b = `x ${a} S9.3`;\nconst c = /S9.4/;\n/* S9.5\n S9.6 */\n";
    expect(unknownIn('f.ts', commentsOnly('f.ts', text))).toEqual(['f.ts:1: S9.1', 'f.ts:5: S9.5', 'f.ts:6: S9.6']);
    expect(unknownIn('f.tsx', commentsOnly('f.tsx', 'const v = <p>S9.7 {/* S9.8 */}</p>;\n'))).toEqual(['f.tsx:1: S9.8']);
  });
});
