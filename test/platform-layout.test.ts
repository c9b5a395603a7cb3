import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers';

/**
 * packages/platform/src is grouped by the parties of the architecture (docs/architecture.md
 * "Packages"), and lower folders do not import upper ones. A folder may import a folder of a
 * lower layer, never one of its own layer or above; runtime/ imports nothing of the platform.
 * The files at the top (createPlatform, its PlatformContext, checkpoints) sit above every folder.
 */
const PLATFORM_SRC = join(REPO, 'packages', 'platform', 'src');

export const LAYERS: Record<string, number> = {
  runtime: 0,
  crypto: 0,
  compute: 1,
  identity: 1,
  workspace: 2,
  arm: 3,
  training: 4,
  inference: 4,
};

const relativeSpecifiers = (text: string): string[] =>
  [...text.matchAll(/\bfrom\s+['"](\.[^'"]*)['"]|\bimport\(\s*['"](\.[^'"]*)['"]\s*\)/g)].map((m) => m[1] ?? m[2] ?? '');

/** The top folder of packages/platform/src a specifier in `file` points into ('' for a top-level file). */
export const folderOf = (file: string, specifier: string): string => {
  const target = relative(PLATFORM_SRC, join(dirname(file), specifier));
  return target.includes(sep) ? target.split(sep)[0]! : '';
};

/** What `file` (in folder `from`) imports against the layering: a folder of its layer or above, or a top-level file. */
export const offendingImports = (from: string, file: string, text: string, isTest: boolean): string[] =>
  relativeSpecifiers(text).filter((specifier) => {
    const to = folderOf(file, specifier);
    if (to === from) return false;
    // runtime/ imports nothing of the platform; its tests may build a whole platform (createPlatform).
    if (from === 'runtime') return !isTest || to !== '';
    // Tests may build a whole platform; PlatformContext is the grab-bag every service is handed.
    if (to === '') return !(isTest || specifier.endsWith('/platform-context'));
    return !(to in LAYERS) || LAYERS[to]! >= LAYERS[from]!;
  });

const files = readdirSync(PLATFORM_SRC, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith('.ts') && d.parentPath !== PLATFORM_SRC)
  .map((d) => join(d.parentPath, d.name));

describe('packages/platform/src layout', () => {
  it('has one folder per layer, and no flat services/ folder', () => {
    const folders = readdirSync(PLATFORM_SRC, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(folders).toEqual(Object.keys(LAYERS).sort());
    expect(existsSync(join(PLATFORM_SRC, 'services'))).toBe(false);
  });

  it.each(files.map((f) => [relative(REPO, f), f]))('%s imports only lower folders', (_n, file) => {
    const from = relative(PLATFORM_SRC, file).split(sep)[0]!;
    expect(offendingImports(from, file, readFileSync(file, 'utf8'), file.endsWith('.test.ts'))).toEqual([]);
  });

  it('the check catches runtime/ importing a service, a folder importing its peer or one above, and a flat services/ import', () => {
    const at = (folder: string) => join(PLATFORM_SRC, folder, 'x.ts');
    const text = (...specifiers: string[]) => specifiers.map((s) => `import { x } from '${s}';`).join('\n');
    expect(offendingImports('runtime', at('runtime'), text('./clock', '../workspace/key-vault', '../platform-context'), false)).toEqual([
      '../workspace/key-vault',
      '../platform-context',
    ]);
    expect(offendingImports('runtime', at('runtime'), "const m = await import('../arm/arm');", true)).toEqual(['../arm/arm']);
    expect(offendingImports('identity', at('identity'), text('../runtime/ids', '../compute/compute-driver', '../arm/arm'), false)).toEqual([
      '../compute/compute-driver',
      '../arm/arm',
    ]);
    expect(offendingImports('training', at('training'), text('../arm/arm', '../inference/images', '../services/run-manager', '../platform'), false)).toEqual([
      '../inference/images',
      '../services/run-manager',
      '../platform',
    ]);
  });
});
