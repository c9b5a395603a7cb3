import { defineConfig } from 'vite';

/**
 * The dashboard's build (packages/web/README.md): one page, bundled with everything it uses
 * (Preact, uPlot, elkjs, @amlsim/core's projections), so it needs no network when it is opened;
 * `amlsim serve` serves dist/ (packages/server/src/server.ts).
 */
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // Preact's automatic JSX runtime, as packages/web/tsconfig.json declares it.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096, reportCompressedSize: false },
  logLevel: 'warn',
});
