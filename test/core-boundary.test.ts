import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers';

/**
 * The core is pure (docs/architecture.md): it imports xstate and its own modules only — no node:*
 * module, no other package of ours. tsconfig gives it no Node types either; this test checks
 * the source text so a violation is caught even where types would not catch it.
 */
const coreDir = join(REPO, 'packages', 'core', 'src');
const sources = readdirSync(coreDir, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.test.ts'))
  .map((d) => join(d.parentPath, d.name));

const importsOf = (text: string): string[] =>
  [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
    (m) => m[1] ?? m[2] ?? m[3] ?? '',
  );

export const forbiddenImports = (specifiers: string[]): string[] =>
  specifiers.filter((s) => !(s.startsWith('.') || s === 'xstate' || s.startsWith('xstate/')));

describe('packages/core boundary', () => {
  it('has sources to check', () => expect(sources.length).toBeGreaterThan(10));

  it.each(sources.map((f) => [relative(REPO, f), f]))('%s imports only xstate and core modules', (_n, file) => {
    expect(forbiddenImports(importsOf(readFileSync(file, 'utf8')))).toEqual([]);
  });

  it('the check catches node:* modules, bare node modules and sibling packages', () => {
    const text = "import { readFileSync } from 'node:fs';\nimport x from 'fs';\nimport { y } from '@amlsim/store';\nconst z = await import('node:child_process');";
    expect(forbiddenImports(importsOf(text))).toEqual(['node:fs', 'fs', '@amlsim/store', 'node:child_process']);
  });
});
