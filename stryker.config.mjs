// Mutation testing (`pnpm mutate`; README "Mutation testing"): how many deliberate breakages of
// the security- and ordering-critical rules the fast tests catch. Not part of CI: too slow.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'stryker.vitest.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'packages/core/src/**/*.ts',
    '!packages/core/src/**/*.test.ts',
    'packages/platform/src/services/run-tokens.ts',
    'packages/platform/src/crypto/jwt.ts',
    'packages/platform/src/services/key-vault.ts',
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
