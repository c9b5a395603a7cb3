import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario, type Scenario } from '@amlsim/scenario';
import { REPO, scenarioFiles, storeOf, tempDir } from './helpers';

// Every scenario in scenarios/ is part of the suite: a new file is covered without touching
// this test. Scenarios without compute run on both event stores; scenarios with compute run
// with the docker driver (CI has Docker) and again with the process driver, except where the
// point is something only containers have (memory limits).
const DOCKER_ONLY = new Set(['training-oom.yaml']);
const COMPUTE_VERBS = new Set(['createCompute', 'attachCompute', 'createVm', 'submitRun']);

const scenarios = scenarioFiles().map((file) => ({ file, scenario: parseScenario(readFileSync(file, 'utf8'), file) }));
const usesCompute = (s: Scenario) => s.steps.some((step) => COMPUTE_VERBS.has(step.verb));

type Configuration = { file: string; scenario: Scenario; store: 'memory' | 'sqlite'; driver: 'docker' | 'process' | undefined };

const configurations = scenarios.flatMap(({ file, scenario }): Configuration[] =>
  usesCompute(scenario)
    ? [
        { file, scenario, store: 'sqlite' as const, driver: 'docker' as const },
        ...(DOCKER_ONLY.has(basename(file)) || scenario.options.driver === 'docker' ? [] : [{ file, scenario, store: 'memory' as const, driver: 'process' as const }]),
      ]
    : [
        { file, scenario, store: 'memory' as const, driver: undefined },
        { file, scenario, store: 'sqlite' as const, driver: undefined },
      ],
);

describe('scenarios', () => {
  it('finds them all', () => expect(scenarios.length).toBeGreaterThanOrEqual(15));

  it.each(configurations.map((c) => [relative(REPO, c.file), c.store, c.driver ?? '-', c] as const))(
    '%s (store %s, driver %s) passes with every invariant holding',
    async (_name, _store, _driver, c) => {
      using tmp = tempDir();
      const store = storeOf(c.store, tmp.dir);
      try {
        const result = await runScenario(c.scenario, { store, dataDir: tmp.dir, ...(c.driver ? { driver: c.driver } : {}) });
        const report = [
          ...result.failures.map((f) => `${f.what}: expected ${f.expected}, got ${f.actual}`),
          ...result.invariantViolations.map((v) => `${v.invariant}: ${v.message}`),
        ];
        expect(report).toEqual([]);
        expect(result.passed).toBe(true);
        expect(result.steps).toHaveLength(c.scenario.steps.length);
        for (const id of c.scenario.cites) expect(id).toMatch(/^S[1-8]\.\d+$/);
      } finally {
        store.close();
      }
    },
    180_000,
  );
});
