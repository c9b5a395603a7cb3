import { describe, expect, it } from 'vitest';
import { parseDuration } from './durations';
import {
  FAULT_KINDS,
  IMPLEMENTED_FAULTS,
  IMPLEMENTED_VERBS,
  isStepOf,
  KNOWN_REGIONS,
  parseScenario,
  ScenarioInvalidError,
  VERBS,
  type ScenarioIssue,
} from './index';
import { nearest } from './suggest';

const FILE = 'scenarios/test.yaml';

/** Joins lines so that line numbers in assertions can be read off the array index (+1). */
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

/** A valid header; without extra lines, its first step is at line 8. */
const header = (...extra: string[]) => [
  'name: Test',
  'cites: [S1.1]',
  'tenant:',
  '  principals:',
  '    alice: { kind: user }',
  '    bob: { kind: user }',
  ...extra,
  'steps:',
];

function issuesOf(text: string): ScenarioIssue[] {
  try {
    parseScenario(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioInvalidError);
    return (error as ScenarioInvalidError).issues;
  }
  throw new Error('expected the scenario to be invalid');
}

/** The one issue whose message contains `fragment`. */
function issueWith(issues: ScenarioIssue[], fragment: string): ScenarioIssue {
  const found = issues.filter((i) => i.message.includes(fragment));
  expect(found.map((i) => i.message), `issues containing "${fragment}" in:\n${issues.map((i) => i.message).join('\n')}`).toHaveLength(1);
  return found[0]!;
}

describe('parseScenario: a valid scenario', () => {
  const text = yaml(
    'name: Share a workspace', // 1
    'cites: [S2.1, S2.5]', // 2
    'tenant:', // 3
    '  principals:', // 4
    '    alice: { kind: user }', // 5
    '    bob: { kind: servicePrincipal }', // 6
    'steps:', // 7
    '  - signIn: alice', // 8
    '  - signIn: { principal: bob, mfa: true }', // 9
    '    id: bobToken', // 10
    '  - as: alice', // 11
    '    createWorkspace: { name: ws1, resourceGroup: rg1, region: westeurope }', // 12
    '  - as: alice', // 13
    '    defineRole:', // 14
    '      name: Runner',
    '      actions: [Microsoft.MachineLearningServices/workspaces/*/read]',
    '      assignableScopes: [/subscriptions/sub-1/resourceGroups/rg1, { workspace: ws1 }]',
    '  - as: alice', // 18
    '    assignRole: { principal: bob, role: Runner, workspace: ws1 }', // 19
    '  - fault: { failProvisioning: keyVault }', // 20
    '  - sleep: 1h30m', // 21
    '  - as: bob', // 22
    '    upgradeWorkspace: { workspace: ws1, edition: enterprise }', // 23
    '    expect: { error: AuthorizationFailed }', // 24
    '  - as: alice', // 25
    '    queryActivityLog: { workspace: ws1 }', // 26
    '    expect:', // 27
    '      contains: [Microsoft.Authorization/roleAssignments/write, { operation: x, status: Succeeded }]',
    '  - as: alice',
    '    resyncKeys: { workspace: ws1 }',
    '    expect: {}',
    'expect:',
    '  order:',
    '    - { type: WorkspaceCreated, workspace: ws1 }',
    '  count:',
    '    - { event: { type: RoleAssigned }, times: 1 }',
  );
  const scenario = parseScenario(text, FILE);

  it('fills the header defaults', () => {
    expect(scenario.file).toBe(FILE);
    expect(scenario.name).toBe('Share a workspace');
    expect(scenario.cites).toEqual(['S2.1', 'S2.5']);
    expect(scenario.tenant).toEqual({ mfa: 'optional', principals: { alice: { kind: 'user' }, bob: { kind: 'servicePrincipal' } } });
    // The default subscription is owned by the first principal listed.
    expect(scenario.subscriptions).toEqual({ 'sub-1': { owners: ['alice'] } });
    expect(scenario.options).toEqual({ runTokenTtl: 600_000, clock: 'real', rbac: 'enforce' });
    expect(scenario.expect).toEqual({
      order: [{ type: 'WorkspaceCreated', workspace: 'ws1' }],
      never: [],
      count: [{ event: { type: 'RoleAssigned' }, times: 1 }],
    });
  });

  it('normalizes step arguments and expectations', () => {
    const [signIn, signInBob, create, defineRole, assign, fault, sleep, upgrade, log, resync] = scenario.steps;
    expect(signIn).toEqual({ index: 0, line: 8, col: 5, verb: 'signIn', args: { principal: 'alice', mfa: false }, expect: { kind: 'success' } });
    expect(signInBob).toMatchObject({ index: 1, verb: 'signIn', args: { principal: 'bob', mfa: true }, id: 'bobToken' });
    expect(create).toMatchObject({
      line: 12,
      col: 5,
      as: 'alice',
      args: { name: 'ws1', resourceGroup: 'rg1', region: 'westeurope', subscription: 'sub-1', edition: 'basic', customerManagedKey: false },
    });
    expect(defineRole?.args).toEqual({
      name: 'Runner',
      actions: ['Microsoft.MachineLearningServices/workspaces/*/read'],
      notActions: [],
      assignableScopes: ['/subscriptions/sub-1/resourceGroups/rg1', { workspace: 'ws1' }],
    });
    expect(assign?.args).toEqual({ principal: 'bob', role: 'Runner', workspace: 'ws1' });
    expect(fault?.args).toEqual({ failProvisioning: 'keyVault' });
    expect(sleep?.args).toBe(90 * 60_000);
    expect(upgrade?.expect).toEqual({ kind: 'error', code: 'AuthorizationFailed' });
    expect(log?.expect).toEqual({
      kind: 'success',
      contains: ['Microsoft.Authorization/roleAssignments/write', { operation: 'x', status: 'Succeeded' }],
    });
    expect(resync?.expect).toEqual({ kind: 'success' });
    expect(scenario.ids).toEqual({ bobToken: { verb: 'signIn', stepIndex: 1 } });
  });

  it('types arguments by verb through isStepOf', () => {
    const step = scenario.steps[2]!;
    expect(isStepOf(step, 'createWorkspace') && step.args.region).toBe('westeurope');
    expect(isStepOf(step, 'signIn')).toBe(false);
  });

  it('keeps declared subscriptions and options', () => {
    const parsed = parseScenario(
      yaml(
        ...header('subscriptions:', '  prod: { owners: [bob] }', 'options: { runTokenTtl: 30s, clock: virtual, rbac: soft, driver: process }'),
        '  - advanceClock: 2h',
        '  - as: alice',
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
      ),
      FILE,
    );
    expect(parsed.subscriptions).toEqual({ prod: { owners: ['bob'] } });
    expect(parsed.options).toEqual({ runTokenTtl: 30_000, clock: 'virtual', rbac: 'soft', driver: 'process' });
    expect(parsed.steps[0]?.args).toBe(2 * 3_600_000);
    // A workspace without a subscription goes to the first one declared.
    expect(parsed.steps[1]?.args).toMatchObject({ subscription: 'prod' });
  });
});

describe('parseScenario: invalid scenarios', () => {
  it('reports a misspelled verb with the nearest verb at the key', () => {
    const issues = issuesOf(yaml(...header(), '  - as: alice', '    createWorkspce: { name: ws1, resourceGroup: rg1, region: eastus }'));
    const issue = issueWith(issues, "unknown key 'createWorkspce'");
    expect(issue).toMatchObject({ line: 9, col: 5, key: 'createWorkspce', suggestion: 'createWorkspace' });
    expect(issue.message).toMatch(/did you mean 'createWorkspace'\?$/);
    expect(issue.allowed).toContain('signIn');
  });

  it('reports an unknown argument key with what is allowed and the nearest name', () => {
    const issues = issuesOf(yaml(...header(), '  - as: alice', '    createWorkspace: { name: ws1, resourceGrup: rg1, region: eastus }'));
    const issue = issueWith(issues, "unknown key 'resourceGrup'");
    expect(issue.message).toBe(
      "unknown key 'resourceGrup' in createWorkspace; allowed: name, resourceGroup, region, subscription, edition, customerManagedKey; did you mean 'resourceGroup'?",
    );
    expect(issue).toMatchObject({ line: 9, col: 35, path: ['steps', 0, 'createWorkspace', 'resourceGrup'], suggestion: 'resourceGroup' });
    // The misspelling also leaves the real key missing.
    expect(issueWith(issues, "missing key 'resourceGroup'")).toMatchObject({ line: 9, col: 5 });
  });

  it('reports a bad enum value at the value, with the allowed values and a suggestion', () => {
    const issues = issuesOf(yaml(...header(), '  - as: alice', '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastu }'));
    const issue = issueWith(issues, "bad value 'eastu'");
    expect(issue).toMatchObject({ line: 9, col: 63, key: 'region', suggestion: 'eastus', allowed: [...KNOWN_REGIONS] });
    expect(issue.message).toMatch(/^bad value 'eastu' for 'region' in createWorkspace; allowed: eastus, eastus2, .*; did you mean 'eastus'\?$/);
  });

  it('gives no suggestion when nothing is near', () => {
    const issues = issuesOf(yaml(...header('options: { rbac: loose }'), '  - signIn: alice'));
    expect(issueWith(issues, "bad value 'loose'").message).toBe("bad value 'loose' for 'rbac' in options; allowed: enforce, soft, off");
  });

  it('reports missing required keys at the key that should hold them', () => {
    const issues = issuesOf(yaml('tenant:', '  principals:', '    alice: { kind: user }', 'steps:', '  - as: alice', '    createWorkspace: { name: ws1, region: eastus }'));
    expect(issueWith(issues, "missing key 'name' in the scenario")).toMatchObject({ line: 1, col: 1 });
    expect(issueWith(issues, "missing key 'resourceGroup' in createWorkspace")).toMatchObject({ line: 6, col: 5 });
  });

  it('rejects principals that are not declared, with a suggestion', () => {
    const issues = issuesOf(
      yaml(
        ...header('subscriptions:', '  sub-1: { owners: [alcie] }'),
        '  - signIn: bbo', // 10
        '  - as: alise', // 11
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - as: alice', // 13
        '    assignRole: { principal: carol, role: Reader, workspace: ws1 }',
      ),
    );
    expect(issueWith(issues, "'alcie' is not a declared principal")).toMatchObject({ line: 8, col: 21, suggestion: 'alice' });
    expect(issueWith(issues, "'bbo' is not a declared principal")).toMatchObject({ line: 10, col: 13, suggestion: 'bob' });
    const as = issueWith(issues, "'alise' is not a declared principal");
    expect(as).toMatchObject({ line: 11, col: 9, allowed: ['alice', 'bob'] });
    expect(as.message).toBe("'alise' is not a declared principal (tenant.principals: alice, bob); did you mean 'alice'?");
    expect(issueWith(issues, "'carol' is not a declared principal").suggestion).toBeUndefined();
  });

  it('requires step-id references to name an earlier step of the right verb', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - as: alice', // 8
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute }', // 10
        '  - waitForRun: { run: r1 }', // 11: r1 comes later
        '  - submitRun: { workspace: ws1, experiment: e, compute: cpu, source: ., script: train.py }', // 12
        '    id: r1',
        '  - getMetrics: { run: r2 }', // 14: a typo
        '  - registerModel: { workspace: ws1, name: m, path: model.pkl }', // 15
        '    id: m1',
        '  - cancelRun: { run: m1 }', // 17: names a model, not a run
        '  - fault: { killContainer: { run: nope } }', // 18
      ),
    );
    expect(issueWith(issues, "'r1' is the id of a later step (line 12)")).toMatchObject({ line: 11, col: 24 });
    const typo = issueWith(issues, "'r2' is not the id of an earlier submitRun step");
    expect(typo).toMatchObject({ line: 14, col: 24, suggestion: 'r1' });
    expect(typo.message).toBe("'r2' is not the id of an earlier submitRun step (submitRun ids so far: r1); did you mean 'r1'?");
    expect(issueWith(issues, "'m1' is the id of a registerModel step (line 15), not of a submitRun step")).toMatchObject({ line: 17 });
    expect(issueWith(issues, "'nope' is not the id").line).toBe(18);
  });

  it('lets models, images and services be named by the name their step gave them, as the SDKs do; an unknown or ambiguous name is refused at file:line:col', () => {
    const fine = parseScenario(
      yaml(
        ...header(),
        '  - as: alice', // 8
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - registerModel: { workspace: ws1, name: doubler, path: model.pkl }', // 10
        '  - createImage: { workspace: ws1, name: doubler-img, models: [doubler], scoringScript: score.js }', // 11
        '  - deployWebservice: { workspace: ws1, name: dbl, image: doubler-img, target: ACI }', // 12
        '  - getKeys: { service: dbl }', // 13
      ),
      FILE,
    );
    expect(fine.steps.map((st) => st.verb)).toEqual(['createWorkspace', 'registerModel', 'createImage', 'deployWebservice', 'getKeys']);

    const issues = issuesOf(
      yaml(
        ...header(),
        '  - as: alice', // 8
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - registerModel: { workspace: ws1, name: doubler, path: model.pkl }', // 10
        '  - registerModel: { workspace: ws1, name: doubler, path: model2.pkl }', // 11: a second version
        '  - id: img', // 12
        '    createImage: { workspace: ws1, name: doubler-img, models: [doubler], scoringScript: score.js }', // 13: which version?
        '  - deployWebservice: { workspace: ws1, name: dbl, image: dobler-img, target: ACI }', // 14: a typo
        '  - registerModel: { workspace: ws1, name: img, path: model.pkl }', // 15
        '  - createImage: { workspace: ws1, name: img, models: [img], scoringScript: score.js }', // 16
        '  - deployWebservice: { workspace: ws1, name: two, image: img, target: ACI }', // 17: the id of the step at 12-13, the name of line 16
      ),
    );
    expect(issueWith(issues, "'doubler' is ambiguous")).toMatchObject({
      line: 13,
      message: "'doubler' is ambiguous: the name given by the registerModel steps at lines 10, 11; give the one you mean an id and refer to it by that",
    });
    const typo = issueWith(issues, "'dobler-img' is neither");
    expect(typo).toMatchObject({ line: 14, suggestion: 'doubler-img' });
    expect(typo.message).toBe(
      "'dobler-img' is neither the id of an earlier createImage step nor a name one gave (createImage ids so far: img, names given so far: doubler-img); did you mean 'doubler-img'?",
    );
    expect(issueWith(issues, "'img' is ambiguous")).toMatchObject({ line: 17, message: "'img' is ambiguous: the id of the createImage step at line 13 and the name given by the createImage step at line 16; rename one" });
  });

  it('rejects duplicate step ids and references to steps expected to fail', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - sleep: 1s', // 8
        '    id: a',
        '  - sleep: 1s', // 10
        '    id: a', // 11
        '  - createVm: { name: vm1 }',
        '  - submitRun: { workspace: ws1, experiment: e, compute: c, source: ., script: t.py }', // 13
        '    id: r1',
        '    expect: { error: AuthorizationFailed }',
        '  - waitForRun: { run: r1 }', // 16
      ),
    );
    expect(issueWith(issues, "duplicate step id 'a' (first used by the step at line 8)")).toMatchObject({ line: 11, col: 9 });
    expect(issueWith(issues, "'r1' is the id of a step expected to fail (line 13)").line).toBe(16);
  });

  it('requires workspaces and computes made by earlier steps, unless the step expects ResourceNotFound', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - as: alice', // 8
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - resyncKeys: { workspace: ws2 }', // 10
        '  - resyncKeys: { workspace: ghost }', // 11
        '    expect: { error: ResourceNotFound }',
        '  - submitRun: { workspace: ws1, experiment: e, compute: gpu, source: ., script: t.py }', // 13
      ),
    );
    const workspace = issueWith(issues, "workspace 'ws2' is not created by an earlier createWorkspace step");
    expect(workspace).toMatchObject({ line: 10, col: 30, suggestion: 'ws1' });
    expect(issues.some((i) => i.message.includes('ghost'))).toBe(false);
    expect(issueWith(issues, "compute 'gpu' is not created in workspace 'ws1'").line).toBe(13);
  });

  it('rejects advanceClock unless the clock is virtual', () => {
    const issues = issuesOf(yaml(...header(), '  - signIn: alice', '  - advanceClock: 2h'));
    const issue = issueWith(issues, 'advanceClock needs a virtual clock');
    expect(issue).toMatchObject({ line: 9, col: 5, key: 'advanceClock' });
    expect(() => parseScenario(yaml(...header('options: { clock: virtual }'), '  - advanceClock: 2h'), FILE)).not.toThrow();
  });

  it('reports an unclosed bracket at the bracket, not where the parser noticed it', () => {
    const issues = issuesOf(yaml('name: x', 'tenant:', '  principals:', '    alice: { kind: user', 'steps:', '  - signIn: alice'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 4, col: 12 });
    expect(issues[0]?.message).toBe(
      "YAML syntax error: the '{' here is never closed: end the map with '}' (lines that continue it must be indented deeper than its key) (noticed at line 5, col 1)",
    );
  });

  it('reports an unclosed bracket at the end of the file at the bracket, the inner one first', () => {
    const at = (text: string) => issuesOf(text).map((i) => `${i.line}:${i.col} ${i.message.slice(0, 40)}`);
    expect(at(yaml(...header(), '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus'))).toEqual([
      "8:22 YAML syntax error: the '{' here is never",
    ]);
    expect(at(yaml(...header(), '  - createImage: { workspace: ws1, name: i, models: [m1, scoringScript: s.js }'))).toEqual([
      "8:18 YAML syntax error: the '{' here is never",
      "8:53 YAML syntax error: the '[' here is never",
    ]);
    expect(at(yaml(...header(), "  - signIn: 'alice"))).toEqual([`8:13 YAML syntax error: the "'" here opens a `]);
  });

  it("says a required key is missing, not that its value is bad (\"missing key 'region'\")", () => {
    const issues = issuesOf(yaml(...header(), '  - createWorkspace: { name: ws1, resourceGroup: rg1 }'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 8, col: 5, key: 'region', allowed: [...KNOWN_REGIONS] });
    expect(issues[0]!.message).toMatch(/^missing key 'region' in createWorkspace; expected one of: eastus, eastus2, /);
    expect(issues[0]!.message).not.toContain('null');
    const name = issuesOf(yaml(...header(), '  - createVm: { username: bob }'));
    expect(name.map((i) => i.message)).toEqual(["missing key 'name' in createVm; expected a string"]);
  });

  it('reports every problem on one line, also in a second verb of the same step', () => {
    const bothOnOneLine = issuesOf(yaml(...header(), '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastu, edition: pro, color: red }'));
    expect(bothOnOneLine.map((i) => [i.line, i.key])).toEqual([
      [8, 'region'],
      [8, 'edition'],
      [8, 'color'],
    ]);
    const twoVerbs = issuesOf(yaml(...header(), '  - { signIn: alice, createWorkspace: { name: ws1, region: eastu } }'));
    expect(twoVerbs.map((i) => i.message.replace(/;.*/, ''))).toEqual([
      'the step has 2 verbs (signIn, createWorkspace)',
      "missing key 'resourceGroup' in createWorkspace",
      "bad value 'eastu' for 'region' in createWorkspace",
    ]);
  });

  it('reports duplicate keys and still validates the rest', () => {
    const issues = issuesOf(yaml('name: a', 'name: b', 'tenant:', '  principals:', '    alice: { kind: user }', 'steps:', '  - signIn: zed'));
    expect(issueWith(issues, "duplicate key 'name'")).toMatchObject({ line: 2, col: 1, key: 'name' });
    expect(issueWith(issues, "'zed' is not a declared principal").line).toBe(7);
  });

  it('rejects a step with two verbs or none', () => {
    const issues = issuesOf(yaml(...header(), '  - signIn: alice', '    sleep: 2s', '  - as: alice'));
    expect(issueWith(issues, 'the step has 2 verbs (signIn, sleep)')).toMatchObject({ line: 9, col: 5, key: 'sleep' });
    const none = issueWith(issues, 'the step has no verb');
    expect(none).toMatchObject({ line: 10, col: 5 });
    expect(none.allowed).toEqual(VERBS);
  });

  it('implements every verb and fault kind of the language (the not-implemented check has nothing left to refuse)', () => {
    expect(VERBS.filter((v) => !IMPLEMENTED_VERBS.has(v))).toEqual([]);
    expect(FAULT_KINDS.filter((f) => !IMPLEMENTED_FAULTS.has(f))).toEqual([]);
  });

  it('collects every issue, sorted by position, into one formatted message', () => {
    const text = yaml(...header('options: { runTokenTtl: 600 }'), '  - sleep: soon', '  - signIn: { principal: alice, mfa: maybe }');
    let error: ScenarioInvalidError | undefined;
    try {
      parseScenario(text, FILE);
    } catch (e) {
      error = e as ScenarioInvalidError;
    }
    expect(error?.file).toBe(FILE);
    expect(error?.issues.map((i) => i.line)).toEqual([7, 9, 10]);
    expect(error?.message.split('\n')).toEqual([
      `${FILE}:7:25: bad value 600 for 'runTokenTtl' in options; a duration needs a unit, e.g. 600ms, 600s or 600m`,
      `${FILE}:9:12: bad value 'soon' for 'sleep' in the step; expected a duration such as 500ms, 30s, 10m, 1h or 1h30m`,
      `${FILE}:10:38: 'mfa' in signIn must be a boolean (true/false), not 'maybe'`,
    ]);
  });

  it('checks error codes: near-misses are typos, other well-shaped codes pass', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - signIn: alice',
        '    expect: { error: AuthorisationFailed }', // 9
        '  - signIn: alice',
        '    expect: { error: not-a-code }', // 11
        '  - signIn: alice',
        '    expect: { error: AADSTS50079 }',
        '  - signIn: alice',
        '    expect: { error: QuotaExceeded }',
        '  - signIn: alice',
        '    expect: { error: Conflict, status: Completed }', // 17
      ),
    );
    expect(issueWith(issues, "'AuthorisationFailed'")).toMatchObject({ line: 9, col: 22, suggestion: 'AuthorizationFailed' });
    expect(issueWith(issues, "'not-a-code'").message).toContain('expected a PascalCase error code');
    expect(issues.some((i) => /AADSTS50079|QuotaExceeded/.test(i.message))).toBe(false);
    expect(issueWith(issues, "unknown key 'status' in expect; allowed: error")).toMatchObject({ line: 17 });
  });

  it('allows verb-specific expectation keys only where they belong, and never beside error', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - getMetrics: { run: r }', // 8
        '    expect: { metrics: { accuracy: 0.9, loss: "<0.5", f1: "about 1" } }',
        '  - callWebservice: { service: s, data: { x: [1, 2] } }', // 10
        '    expect: { httpStatus: 200, body: { y: 1 }, error: Conflict }',
        '  - waitForRun: { run: r }', // 12
        '    expect: { status: Complete }',
      ),
    );
    expect(issueWith(issues, "bad value 'about 1' for 'f1' in expect.metrics").line).toBe(9);
    expect(issueWith(issues, "'httpStatus' cannot be combined with 'error'").line).toBe(11);
    expect(issueWith(issues, "bad value 'Complete' for 'status' in expect").suggestion).toBe('Completed');
  });

  it('checks assignRole scopes and near-misses of role names', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - as: alice',
        '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }',
        '  - assignRole: { principal: bob, role: Reader }', // 10
        '  - assignRole: { principal: bob, role: Owner, workspace: ws1, resourceGroup: rg1 }', // 11
        '  - assignRole: { principal: bob, role: Contibutor, workspace: ws1 }', // 12
        '  - assignRole: { principal: bob, role: Data Scientist, workspace: ws1 }', // 13: custom, fine
      ),
    );
    expect(issueWith(issues, 'assignRole needs exactly one of: workspace, resourceGroup, subscription')).toMatchObject({ line: 10, col: 5 });
    expect(issueWith(issues, "'workspace' and 'resourceGroup' cannot be combined in assignRole")).toMatchObject({ line: 11, col: 64 });
    expect(issueWith(issues, "role 'Contibutor'")).toMatchObject({ line: 12, suggestion: 'Contributor' });
    expect(issues.some((i) => i.line === 13)).toBe(false);
  });

  it('lets a step expecting an error use a value the platform rejects, but not a step expecting success', () => {
    const rejected = yaml(...header(), '  - regenKey: { service: s, key: primary }', '    expect: { error: BadRequest }');
    expect(issuesOf(rejected).some((i) => i.message.includes("bad value 'primary'"))).toBe(false);
    const typo = issuesOf(yaml(...header(), '  - regenKey: { service: s, key: primary }'));
    expect(issueWith(typo, "bad value 'primary' for 'key' in regenKey")).toMatchObject({ suggestion: 'Primary', line: 8, col: 34 });
  });

  it('validates the argument shapes of verbs that are not implemented yet', () => {
    const issues = issuesOf(
      yaml(
        ...header(),
        '  - submitRun: { workspace: w, experiment: e, compute: c, script: t.py }', // 8
        '  - createCompute: { workspace: w, name: c, type: AmlCompute, maxNodes: 0, minNodes: 1.5 }', // 9
        '  - signIn: { principl: alice }', // 10
        '  - fault: {}', // 11
      ),
    );
    expect(issueWith(issues, 'submitRun needs exactly one of: source, snapshot').line).toBe(8);
    expect(issueWith(issues, "bad value 0 for 'maxNodes' in createCompute; expected at least 1").line).toBe(9);
    expect(issueWith(issues, "'minNodes' in createCompute must be an integer, not 1.5").line).toBe(9);
    // The map form of signIn was meant: report its key, not "must be a string".
    expect(issueWith(issues, "unknown key 'principl' in signIn")).toMatchObject({ line: 10, suggestion: 'principal' });
    expect(issueWith(issues, 'fault needs exactly one of').line).toBe(11);
  });

  it('checks the top level: unknown keys, cites, event matchers', () => {
    const issues = issuesOf(
      yaml(
        'name: x',
        'cites: [S1.3, 8.2]', // 2
        'tenant:',
        '  principals: {}', // 4
        'steps: []', // 5
        'expect:',
        '  nevr: []', // 7
        '  order:',
        '    - { typ: RunCompleted }', // 9
        '    - { type: containerStarted, run: { id: 1 } }', // 10
      ),
    );
    expect(issueWith(issues, "'cites[1]' in the scenario must be a string, not 8.2").line).toBe(2);
    expect(issueWith(issues, "'principals' in tenant needs at least one entry").line).toBe(4);
    expect(issueWith(issues, "'steps' in the scenario needs at least 1 item").line).toBe(5);
    expect(issueWith(issues, "unknown key 'nevr' in expect")).toMatchObject({ line: 7, suggestion: 'never' });
    expect(issueWith(issues, "key 'typ' in expect.order[0] looks misspelled; did you mean 'type'?").line).toBe(9);
    expect(issueWith(issues, "bad value 'containerStarted' for 'type'").line).toBe(10);
    expect(issueWith(issues, "'run' in expect.order[1] must be a string, a number or a boolean (true/false), not a map").line).toBe(10);
  });

  it('rejects a file that is not a map', () => {
    expect(issuesOf('')[0]?.message).toBe('a scenario file is a map with at least name, tenant and steps');
    expect(issuesOf('- a\n- b\n')[0]).toMatchObject({ line: 1, col: 1 });
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2m500ms', 120_500],
    ['1.5s', 1_500],
    ['1h 30m', 5_400_000],
  ])('%s is %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '10', '10 minutes', '1m1h', 'ms', '-1s'])('rejects %j', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('nearest', () => {
  it('finds a near name case-insensitively', () => {
    expect(nearest('createworkspace', ['createWorkspace', 'createCompute'])).toBe('createWorkspace');
    expect(nearest('resourceGrup', ['name', 'resourceGroup'])).toBe('resourceGroup');
  });
  it('allows more edits for longer names, and none for unrelated ones', () => {
    expect(nearest('getRunStatusHistry', VERBS)).toBe('getRunStatusHistory');
    expect(nearest('xyz', ['abc'])).toBeUndefined();
    expect(nearest('bake', ['signIn', 'sleep'])).toBeUndefined();
  });
  it('suggests nothing for an exact match', () => {
    expect(nearest('sleep', ['sleep', 'sleeq'])).toBeUndefined();
  });
});

describe('the verb sets', () => {
  it('holds every verb of docs/scenarios.md (a public contract) plus additions', () => {
    const contract = [
      'signIn', 'createWorkspace', 'assignRole', 'defineRole', 'upgradeWorkspace', 'revokeIdentityAccess', 'resyncKeys',
      'regenerateStorageKey', 'attachDatastore', 'createCompute', 'createVm', 'attachCompute', 'snapshot', 'submitRun',
      'waitForRun', 'cancelRun', 'getMetrics', 'getRunStatusHistory', 'registerModel', 'createImage', 'deployWebservice',
      'getKeys', 'regenKey', 'getToken', 'callWebservice', 'deleteWebservice', 'queryAppInsights', 'queryActivityLog',
      'advanceClock', 'sleep', 'fault',
    ];
    expect(VERBS).toEqual(expect.arrayContaining([...contract, 'queryWorkspaceMetrics']));
    for (const verb of IMPLEMENTED_VERBS) expect(VERBS).toContain(verb);
  });
});
