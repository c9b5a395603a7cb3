import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioInvalidError, type ScenarioIssue } from './index';

// S4.2: uploadToDatastore and submitRun's `inputs` are checked when the file is read: a
// datastore no earlier attachDatastore step attached, a mode other than mount or download, a
// path leaving the datastore and a bad input name are each an issue at file:line:col.

const FILE = 'scenarios/inputs.yaml';
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

/** A workspace ws1 with datastore ds1 and compute cpu; the next step is at line 17. */
const prelude = [
  'name: Inputs', // 1
  'cites: [S4.2]', // 2
  'tenant:', // 3
  '  principals:', // 4
  '    alice: { kind: user }', // 5
  'steps:', // 6
  '  - signIn: alice', // 7
  '  - as: alice', // 8
  '    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }', // 9
  '  - as: alice', // 10
  '    attachDatastore: { workspace: ws1, name: ds1, container: data-1 }', // 11
  '  - as: alice', // 12
  '    createCompute: { workspace: ws1, name: cpu, type: AmlCompute }', // 13
  '  - as: alice', // 14
  '    uploadToDatastore: { workspace: ws1, datastore: ds1, source: ., path: train }', // 15
  '  - as: alice', // 16
];
const run = (inputs: string) => `    submitRun: { workspace: ws1, experiment: e, compute: cpu, source: ., script: t.js, inputs: ${inputs} }`;

function invalid(text: string): ScenarioInvalidError {
  try {
    parseScenario(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioInvalidError);
    return error as ScenarioInvalidError;
  }
  throw new Error('expected the scenario to be invalid');
}

const only = (issues: ScenarioIssue[], fragment: string): ScenarioIssue => {
  const found = issues.filter((i) => i.message.includes(fragment));
  expect(found.map((i) => i.message), issues.map((i) => i.message).join('\n')).toHaveLength(1);
  return found[0]!;
};

describe('run inputs and uploadToDatastore in a scenario file (S4.2)', () => {
  it('takes an input with its datastore, path and mode (mount by default) and an upload with its path', () => {
    const scenario = parseScenario(yaml(...prelude, run('{ data: { datastore: ds1, path: train }, raw: { datastore: ds1, mode: download } }')), FILE);
    const submit = scenario.steps.at(-1)!;
    expect(submit.verb).toBe('submitRun');
    expect((submit.args as { inputs: unknown }).inputs).toEqual({ data: { datastore: 'ds1', path: 'train', mode: 'mount' }, raw: { datastore: 'ds1', mode: 'download' } });
    expect(scenario.steps[4]!.args).toEqual({ workspace: 'ws1', datastore: 'ds1', source: '.', path: 'train' });
  });

  it('refuses a datastore no earlier attachDatastore step attached, naming the ones that were', () => {
    const error = invalid(yaml(...prelude, run('{ data: { datastore: ds2 } }')));
    const issue = only(error.issues, "datastore 'ds2' is not attached to workspace 'ws1' by an earlier attachDatastore step (so far: ds1)");
    expect(issue).toMatchObject({ line: 17, col: 117, allowed: ['ds1'], suggestion: 'ds1' });
    expect(error.message).toContain(`${FILE}:17:117: datastore 'ds2' is not attached`);
  });

  it('refuses an upload to a datastore that is not attached, and one to a datastore of another workspace', () => {
    const error = invalid(
      yaml(
        ...prelude,
        '    uploadToDatastore: { workspace: ws1, datastore: training, source: . }', // 17
        '  - as: alice', // 18
        '    createWorkspace: { name: ws2, resourceGroup: rg1, region: eastus }', // 19
        '  - as: alice', // 20
        '    uploadToDatastore: { workspace: ws2, datastore: ds1, source: . }', // 21
      ),
    );
    expect(only(error.issues, "datastore 'training' is not attached to workspace 'ws1'")).toMatchObject({ line: 17, col: 53 });
    expect(only(error.issues, "datastore 'ds1' is not attached to workspace 'ws2' by an earlier attachDatastore step (so far: none)")).toMatchObject({ line: 21, col: 53 });
  });

  it('refuses a mode other than mount or download, listing both', () => {
    const error = invalid(yaml(...prelude, run('{ data: { datastore: ds1, mode: copy } }')));
    const issue = only(error.issues, 'copy');
    expect(issue.message).toMatch(/mount/);
    expect(issue.message).toMatch(/download/);
    expect(issue).toMatchObject({ line: 17, col: 128, path: ['steps', 5, 'submitRun', 'inputs', 'data', 'mode'] });
    expect(error.message).toContain(`${FILE}:17:128:`);
  });

  it('refuses a path that leaves the datastore, an unknown key of an input and an input name that is no variable suffix', () => {
    const error = invalid(yaml(...prelude, run("{ data: { datastore: ds1, path: '../other' }, 2nd: { datastore: ds1 }, x: { datastore: ds1, readonly: true } }")));
    expect(only(error.issues, "expected a path inside the datastore ('/'-separated, without '..')")).toMatchObject({ line: 17, path: ['steps', 5, 'submitRun', 'inputs', 'data', 'path'] });
    expect(only(error.issues, 'AZUREML_DATAREFERENCE_<name>')).toMatchObject({ line: 17 });
    expect(only(error.issues, 'readonly')).toMatchObject({ line: 17, key: 'readonly' });
  });

  it('lets a step that expects ResourceNotFound name a datastore that is not attached (to show the refusal)', () => {
    expect(() => parseScenario(yaml(...prelude, run('{ data: { datastore: ghost } }'), '    expect: { error: ResourceNotFound }'), FILE)).not.toThrow();
  });
});
