import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '@amlsim/scenario';
import { REPO, scenarioFiles, storeOf, tempDir } from './helpers';

// Every scenario in scenarios/ is part of the suite, on both event stores: a new file is
// covered without touching this test.
const files = scenarioFiles();

describe.each(['memory', 'sqlite'] as const)('scenarios on the %s store', (kind) => {
  it('finds the scenarios', () => expect(files.length).toBeGreaterThanOrEqual(8));

  it.each(files.map((f) => [relative(REPO, f), f]))('%s passes with every invariant holding', async (_name, file) => {
    using tmp = tempDir();
    const store = storeOf(kind, tmp.dir);
    try {
      const scenario = parseScenario(readFileSync(file, 'utf8'), file);
      const result = await runScenario(scenario, { store, dataDir: tmp.dir });
      const report = [
        ...result.failures.map((f) => `${f.what}: expected ${f.expected}, got ${f.actual}`),
        ...result.invariantViolations.map((v) => `${v.invariant}: ${v.message}`),
      ];
      expect(report).toEqual([]);
      expect(result.passed).toBe(true);
      expect(result.steps).toHaveLength(scenario.steps.length);
      // Every cited requirement id exists in the spec's numbering scheme.
      for (const id of scenario.cites) expect(id).toMatch(/^S[1-8]\.\d+$/);
    } finally {
      store.close();
    }
  });
});
