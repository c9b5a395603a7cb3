import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The tests `pnpm mutate` runs against each mutant: fast, pure, no Docker, no processes.
 * The workspace packages resolve to the sources beside this file, so inside Stryker's sandbox
 * a test that imports `@amlsim/platform` sees the mutated copy, not the original.
 */
const src = (pkg: string) => resolve(import.meta.dirname, 'packages', pkg, 'src', 'index.ts');

export default defineConfig({
  resolve: {
    alias: {
      '@amlsim/core': src('core'),
      '@amlsim/store': src('store'),
      '@amlsim/platform': src('platform'),
      '@amlsim/scenario': src('scenario'),
    },
  },
  test: {
    include: [
      'packages/core/src/**/*.test.ts',
      'packages/platform/src/identity/run-tokens*.test.ts',
      'packages/platform/src/workspace/key-vault.test.ts',
      'packages/platform/src/workspace/storage-account-keys.test.ts',
      'packages/platform/src/workspace/blob-storage.test.ts',
      'packages/platform/src/identity/jwt.test.ts',
      'packages/platform/src/inference/local-ca.test.ts',
      'packages/scenario/src/run/invariants.test.ts',
      'test/identity.test.ts',
      'test/storage-keys.int.test.ts',
    ],
    pool: 'forks',
    testTimeout: 30_000,
  },
});
