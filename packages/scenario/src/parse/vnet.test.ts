import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioInvalidError, type ScenarioIssue } from './index';

// S3.1: the `vnet` key of createCompute, createVm and deployWebservice follows Azure's name rule.
const scenario = (step: string) =>
  ['name: VNet', 'cites: [S3.1]', 'tenant:', '  principals:', '    alice: { kind: user }', 'steps:', '  - signIn: alice', '  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }', step, ''].join('\n');

const issuesOf = (text: string): ScenarioIssue[] => {
  try {
    parseScenario(text, 'scenarios/vnet.yaml');
  } catch (error) {
    if (error instanceof ScenarioInvalidError) return error.issues;
    throw error;
  }
  return [];
};

describe('the vnet key (S3.1)', () => {
  it('takes a valid name on createCompute, createVm and deployWebservice, and passes it on', () => {
    const parsed = parseScenario(
      [
        scenario('  - createCompute: { workspace: ws1, name: aks1, type: AKS, vnet: vnet-a }').trimEnd(),
        '  - createVm: { name: dsvm, vnet: vnet-a, region: eastus, subscription: sub-1 }',
        '  - id: m1',
        '    registerModel: { workspace: ws1, name: m, path: models/sentiment.json }',
        '',
      ].join('\n'),
      'scenarios/vnet.yaml',
    );
    expect(parsed.steps.find((s) => s.verb === 'createCompute')?.args).toMatchObject({ vnet: 'vnet-a' });
    expect(parsed.steps.find((s) => s.verb === 'createVm')?.args).toMatchObject({ vnet: 'vnet-a', region: 'eastus', subscription: 'sub-1' });
  });

  it.each([
    ['  - createCompute: { workspace: ws1, name: aks1, type: AKS, vnet: "my vnet" }', "holds ' '"],
    ['  - createVm: { name: dsvm, vnet: v }', 'shorter than 2 characters'],
    ['  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, vnet: vnet- }', "must end with a letter, digit or '_'"],
  ])('refuses a bad name at its line: %s', (step, why) => {
    const issues = issuesOf(scenario(step));
    expect(issues.map((i) => i.message)).toEqual([expect.stringContaining('expected a virtual network name: it ')]);
    expect(issues[0]!.message).toContain(why);
    expect(issues[0]).toMatchObject({ line: 9, key: 'vnet' });
  });
});
