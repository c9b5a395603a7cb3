import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confinePath, parseScenario, ScenarioInvalidError, widenRoots, type ParseOptions, type ScenarioIssue } from './index';

// A scenario directory with code and a model inside, and a secret outside it.
let top: string;
let dir: string;
let outside: string;
beforeEach(() => {
  top = mkdtempSync(join(tmpdir(), 'amlsim-paths-'));
  dir = join(top, 'scenarios');
  outside = join(top, 'private');
  mkdirSync(join(dir, 'code'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(dir, 'code', 'train.js'), '');
  writeFileSync(join(dir, 'model.json'), '{}');
  writeFileSync(join(outside, 'id_rsa'), 'secret');
});
afterEach(() => rmSync(top, { recursive: true, force: true }));

const file = () => join(dir, 'paths.yaml');
/** A scenario whose step 1 (line 8) is `line`. */
const scenarioWith = (...steps: string[]) =>
  [
    'name: Paths',
    'tenant:',
    '  principals:',
    '    alice: { kind: user }',
    'steps:',
    '  - signIn: alice',
    '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
    ...steps,
  ].join('\n') + '\n';

const issuesOf = (text: string, options?: ParseOptions): ScenarioIssue[] => {
  try {
    parseScenario(text, file(), options);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioInvalidError);
    return (error as ScenarioInvalidError).issues;
  }
  throw new Error('expected the scenario to be invalid');
};
const ok = (text: string, options?: ParseOptions) => parseScenario(text, file(), options);

describe('paths in a scenario stay inside its directory', () => {
  it('accepts relative paths inside it, also ones that do not exist yet and ones that come back from ..', () => {
    expect(() =>
      ok(
        scenarioWith(
          '  - snapshot: { workspace: ws1, experiment: e, source: code }',
          '  - registerModel: { workspace: ws1, name: m, path: code/../model.json }',
          '  - registerModel: { workspace: ws1, name: n, path: models/does-not-exist.pkl }',
          '    expect: { error: ResourceNotFound }',
        ),
      ),
    ).not.toThrow();
  });

  it('refuses an absolute path, at its value, saying what is allowed and how to widen it', () => {
    const issues = issuesOf(scenarioWith(`  - registerModel: { workspace: ws1, name: m, path: ${join(outside, 'id_rsa')} }`));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 8, col: 53, key: "path" });
    expect(issues[0]!.message).toContain(`'path' in registerModel ('${join(outside, 'id_rsa')}') is an absolute path outside the scenario's directory`);
    expect(issues[0]!.message).toContain('--allow-path <dir>');
  });

  it("refuses a '..' that leaves the directory, in every file-ish key", () => {
    const issues = issuesOf(
      scenarioWith(
        '  - snapshot: { workspace: ws1, experiment: e, source: ../private }', // 8
        '  - submitRun: { workspace: ws1, experiment: e, compute: local, source: code/../../private, script: train.js }', // 9
        '  - createImage: { workspace: ws1, name: i, models: [m1], scoringScript: ../private/score.js, dependencies: ../private/id_rsa }', // 10
      ),
    ).filter((i) => !/compute|registerModel/.test(i.message));
    expect(issues.map((i) => [i.line, i.key])).toEqual([
      [8, 'source'],
      [9, 'source'],
      [10, 'scoringScript'],
      [10, 'dependencies'],
    ]);
    for (const issue of issues) expect(issue.message).toMatch(/leads outside the scenario's directory \(.*\) \(through '\.\.'\)/);
  });

  it('refuses a symlink that leads out, also a dangling one, and names where it leads', () => {
    symlinkSync(outside, join(dir, 'code', 'escape'));
    symlinkSync(join(outside, 'not-yet'), join(dir, 'dangling'));
    const issues = issuesOf(
      scenarioWith(
        '  - snapshot: { workspace: ws1, experiment: e, source: code/escape }', // 8
        '  - registerModel: { workspace: ws1, name: m, path: code/escape/id_rsa }', // 9
        '  - registerModel: { workspace: ws1, name: n, path: dangling }', // 10
      ),
    );
    expect(issues.map((i) => i.line)).toEqual([8, 9, 10]);
    expect(issues[0]!.message).toMatch(/^'source' in snapshot \('code\/escape'\) leads through a symbolic link to '.*private', outside the scenario's directory/);
    expect(issues[2]!.message).toContain('not-yet');
  });

  it('accepts a symlink that stays inside, and a scenario directory reached through a symlink', () => {
    symlinkSync(join(dir, 'code'), join(dir, 'alias'));
    symlinkSync(dir, join(top, 'linked'));
    const text = scenarioWith('  - snapshot: { workspace: ws1, experiment: e, source: alias }');
    expect(() => ok(text)).not.toThrow();
    expect(() => parseScenario(text, join(top, 'linked', 'paths.yaml'))).not.toThrow();
  });

  it('allowPaths widens the root explicitly: absolute paths and symlinks into an allowed directory pass', () => {
    symlinkSync(outside, join(dir, 'code', 'escape'));
    const text = scenarioWith(
      `  - registerModel: { workspace: ws1, name: m, path: ${join(outside, 'id_rsa')} }`,
      '  - snapshot: { workspace: ws1, experiment: e, source: code/escape }',
    );
    expect(issuesOf(text)).toHaveLength(2);
    expect(() => ok(text, { allowPaths: [outside] })).not.toThrow();
    const other = issuesOf(scenarioWith('  - snapshot: { workspace: ws1, experiment: e, source: /etc }'), { allowPaths: [outside] });
    expect(other[0]!.message).toContain(`and the allowed paths (`);
  });

  it('checks a dependencies file but not a list of packages', () => {
    const text = (deps: string) => scenarioWith('  - registerModel: { workspace: ws1, name: m, path: model.json }', '    id: m1', `  - createImage: { workspace: ws1, name: i, models: [m1], scoringScript: code/train.js, dependencies: ${deps} }`);
    expect(() => ok(text('[numpy, ../x]'))).not.toThrow();
    expect(issuesOf(text('/etc/passwd'))[0]).toMatchObject({ line: 10, key: 'dependencies' });
  });

  it("refuses a run script that is absolute or leaves the run's source", () => {
    const text = (script: string) =>
      scenarioWith('  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute }', `  - submitRun: { workspace: ws1, experiment: e, compute: cpu, source: code, script: ${script} }`);
    expect(() => ok(text('train.js'))).not.toThrow();
    expect(() => ok(text('sub/../train.js'))).not.toThrow();
    for (const bad of ['../train.js', '/bin/sh', 'sub/../../x.js']) {
      const [issue] = issuesOf(text(bad));
      expect(issue).toMatchObject({ line: 9, key: 'script' });
      expect(issue!.message).toContain("must name a file inside the run's source");
    }
  });
});

describe('confinePath at run time', () => {
  it('refuses a path whose symlink was changed to lead out after the scenario was parsed', () => {
    symlinkSync(join(dir, 'code'), join(dir, 'swap'));
    const scenario = ok(scenarioWith('  - snapshot: { workspace: ws1, experiment: e, source: swap }'));
    expect(confinePath('swap', scenario.paths)).toEqual({ ok: true, path: join(dir, 'swap') });
    unlinkSync(join(dir, 'swap'));
    symlinkSync(outside, join(dir, 'swap'));
    const after = confinePath('swap', scenario.paths);
    expect(after.ok).toBe(false);
    expect(confinePath('swap', widenRoots(scenario.paths, [outside])).ok).toBe(true);
  });
});
