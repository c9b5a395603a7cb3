import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS, MAX_DURATION_SECONDS, parseScenario, ScenarioInvalidError, type ScenarioIssue } from './index';

const FILE = 'scenarios/limits.yaml';
const yaml = (...lines: string[]) => lines.join('\n') + '\n';
const header = (options = '{ clock: virtual }') => [
  'name: Limits', // 1
  `options: ${options}`, // 2
  'tenant:', // 3
  '  principals:', // 4
  '    alice: { kind: user }', // 5
  'steps:', // 6
  '  - signIn: alice', // 7
  '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }', // 8
];

const issuesOf = (text: string): ScenarioIssue[] => {
  try {
    parseScenario(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioInvalidError);
    return (error as ScenarioInvalidError).issues;
  }
  throw new Error('expected the scenario to be invalid');
};

describe('durations past what a timer can hold are refused at parse time', () => {
  it('stays below what one Node timer holds (2^31-1 ms)', () => {
    expect(MAX_DURATION_MS).toBeLessThan(2 ** 31 - 1);
    expect(MAX_DURATION_SECONDS * 1000).toBe(MAX_DURATION_MS);
  });

  it('refuses runTokenTtl: 600h, sleep: 600h, a waitForRun timeout of 1000000h and 3,000,000 idle seconds, each at its value', () => {
    const issues = issuesOf(
      yaml(
        ...header('{ runTokenTtl: 600h }'),
        '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, idleSecondsBeforeScaledown: 3000000 }', // 9
        '  - submitRun: { workspace: ws1, experiment: e, compute: cpu, source: ., script: t.js }', // 10
        '    id: r1',
        '  - waitForRun: { run: r1, timeout: 1000000h }', // 12
        '  - sleep: 600h', // 13
      ),
    );
    expect(issues.map((i) => `${i.line}:${i.col} ${i.message}`)).toEqual([
      "2:25 bad value '600h' for 'runTokenTtl' in options; a duration may be at most 576h (24 days)",
      "9:95 bad value 3000000 for 'idleSecondsBeforeScaledown' in createCompute; expected at most 2073600 seconds (24 days)",
      "12:37 bad value '1000000h' for 'timeout' in waitForRun; a duration may be at most 576h (24 days)",
      "13:12 bad value '600h' for 'sleep' in the step; a duration may be at most 576h (24 days)",
    ]);
  });

  it('refuses runTokenTtl: 0s (a token expired when issued)', () => {
    const issues = issuesOf(yaml(...header('{ runTokenTtl: 0s }')));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 2, col: 25, key: 'runTokenTtl' });
    expect(issues[0]!.message).toBe("bad value '0s' for 'runTokenTtl' in options; expected a duration longer than 0, at most 576h (24 days)");
  });

  it('refuses a duration too large to be a number at all', () => {
    const issues = issuesOf(yaml(...header(), `  - advanceClock: ${'9'.repeat(400)}h`));
    expect(issues[0]!.message).toMatch(/^bad value '9+\.\.\.' for 'advanceClock' in the step; a duration may be at most 576h \(24 days\)$/);
  });

  it('accepts the maximum itself', () => {
    const scenario = parseScenario(
      yaml(
        ...header('{ runTokenTtl: 576h, clock: virtual }'),
        '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, idleSecondsBeforeScaledown: 2073600 }',
        '  - advanceClock: 576h',
      ),
      FILE,
    );
    expect(scenario.options.runTokenTtl).toBe(MAX_DURATION_MS);
    expect(scenario.steps.at(-1)?.args).toBe(MAX_DURATION_MS);
  });
});
