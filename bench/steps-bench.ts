import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScenario, runScenario } from '../packages/scenario/src/index';
import { createMemoryEventStore } from '../packages/store/src/index';

/**
 * Issue 8 §2 "many steps": a scenario's cost grows linearly with its steps. The workload is
 * N `signIn` steps: trivial, but each goes through the whole runner (parse, the command bus,
 * two appended events, a minted token in the secret registry, the step's expectation) and
 * at the end every global invariant is checked over all events (no-secret-in-log searches
 * each event for every token). The per-step cost is (T(N) - T(1)) / (N - 1), T(1) being the
 * same scenario with one step (a scenario needs one; what it costs is mostly the platform's
 * bootstrap and close), so a fixed cost does not flatter the large run or burden the small
 * one. In-memory log, process driver, virtual clock.
 */
export type StepsBenchResult = {
  steps: number;
  baselineSteps: number;
  /** Microseconds a step, the large run and the small one. */
  perStepUs: number;
  baselinePerStepUs: number;
  ratio: number;
  target: number;
  seconds: number;
};

const scenarioText = (steps: number): string =>
  'name: many steps\noptions: { driver: process, clock: virtual }\ntenant:\n  mfa: optional\n  principals:\n    alice: { kind: user }\n' +
  `subscriptions:\n  sub-1: { owners: [alice] }\nsteps:\n${'  - signIn: alice\n'.repeat(steps)}`;

/** Milliseconds to parse and play a scenario of `steps` sign-ins. */
const timeScenario = async (steps: number): Promise<number> => {
  const text = scenarioText(steps);
  const dataDir = mkdtempSync(join(tmpdir(), 'amlsim-bench-steps-'));
  const store = createMemoryEventStore();
  try {
    const started = performance.now();
    const result = await runScenario(parseScenario(text, join(dataDir, 'many-steps.yaml')), { store, dataDir, driver: 'process' });
    const ms = performance.now() - started;
    if (!result.passed || result.steps.length !== steps) throw new Error(`the ${steps}-step scenario did not pass: ${JSON.stringify(result.failures[0] ?? result.invariantViolations[0])}`);
    return ms;
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export const benchSteps = async (steps = 100_000, baselineSteps = 1_000): Promise<StepsBenchResult> => {
  // Warm-up: the JIT compiles the runner's hot paths before anything is measured.
  await timeScenario(baselineSteps);
  const fixed = median(await sequence(5, () => timeScenario(1)));
  const small = median(await sequence(5, () => timeScenario(baselineSteps)));
  const large = await timeScenario(steps);
  const perStepUs = ((large - fixed) / (steps - 1)) * 1000;
  const baselinePerStepUs = ((small - fixed) / (baselineSteps - 1)) * 1000;
  return { steps, baselineSteps, perStepUs, baselinePerStepUs, ratio: perStepUs / baselinePerStepUs, target: 1.5, seconds: large / 1000 };
};

const sequence = async (n: number, fn: () => Promise<number>): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
};
