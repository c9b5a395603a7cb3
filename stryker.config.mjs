// Mutation testing (`pnpm mutate`; README "Mutation testing"): how many deliberate breakages of
// the security- and ordering-critical rules the fast tests catch. Not part of CI: too slow.
import { readFileSync } from 'node:fs';

/**
 * `file:start-end` for each named method of a class file (two-space indented, closed by the
 * next line that is exactly `  }`), so only the key code of a larger service is mutated and
 * the ranges follow the code when lines move.
 */
const methods = (file, names) => {
  const lines = readFileSync(file, 'utf8').split('\n');
  return names.map((name) => {
    const start = lines.findIndex((l) => new RegExp(`^  (private |async )*${name}\\(`).test(l));
    const end = lines.findIndex((l, i) => i > start && l === '  }');
    if (start < 0 || end < 0) throw new Error(`stryker.config.mjs: no method ${name} in ${file}`);
    return `${file}:${start + 1}-${end + 1}`;
  });
};

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'stryker.vitest.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'packages/core/src/**/*.ts',
    '!packages/core/src/**/*.test.ts',
    'packages/platform/src/identity/run-tokens.ts',
    'packages/platform/src/identity/jwt.ts',
    'packages/platform/src/workspace/key-vault.ts',
    ...methods('packages/platform/src/workspace/blob-storage.ts', ['createAccount', 'regenerateKey', 'listKeys', 'connectionString', 'authenticate', 'sealKey', 'openKey']),
    'packages/scenario/src/run/invariants.ts',
  ],
  coverageAnalysis: 'perTest',
  // Module-level constants (role tables, the event catalog) would need the whole test set per
  // mutant; their meaning is pinned by the tests that read them (role matrix, docs).
  ignoreStatic: true,
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['.amlsim', 'coverage', 'reports', 'bench/_*'],
  thresholds: { high: 90, low: 85, break: null },
  timeoutMS: 20_000,
};
