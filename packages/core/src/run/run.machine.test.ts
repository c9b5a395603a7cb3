import { describe, expect, it } from 'vitest';
import type { EventDataMap } from '../events/catalog';
import { advanceRun, runStatusOf, startRun, type RunSnapshot } from './run-fold';
import type { RunMachineEvent } from './run.machine';

const ref = { runId: 'exp_1_a', workspaceId: 'ws_1', workspace: 'ws1' };
const submitted = (computeType: EventDataMap['RunSubmitted']['computeType']): EventDataMap['RunSubmitted'] => ({
  ...ref,
  experiment: 'exp',
  computeId: 'cmp_1',
  compute: computeType === 'VirtualMachine' ? 'vm1' : 'cpu',
  computeType,
  snapshotId: 'sha256-x',
  script: 'train.js',
  args: [],
  dependencies: [],
});
const vm = { vmId: 'vm_1', vm: 'dsvm', username: 'azureuser', fingerprint: 'SHA256:abc' };
const step = (s: EventDataMap['ManagementStepCompleted']['step']): RunMachineEvent => ({ type: 'ManagementStepCompleted', ...ref, vm: 'dsvm', step: s, detail: s });

/** Feed events; return the statuses passed through and every effect named. */
const play = (computeType: EventDataMap['RunSubmitted']['computeType'], events: RunMachineEvent[]) => {
  let [snapshot, effects] = startRun(submitted(computeType));
  const statuses = [runStatusOf(snapshot)];
  const named = effects.map((e) => e.type);
  for (const event of events) {
    expect(snapshot.can(event), `${event.type} in ${JSON.stringify(snapshot.value)}`).toBe(true);
    let next: RunSnapshot;
    [next, effects] = advanceRun(snapshot, event);
    snapshot = next;
    named.push(...effects.map((e) => e.type));
    const status = runStatusOf(snapshot);
    if (status && statuses.at(-1) !== status) statuses.push(status);
  }
  return { snapshot, statuses, effects: named };
};

describe('run machine on an attached VM (S8.3 unmanaged)', () => {
  const start: RunMachineEvent[] = [
    { type: 'RunTokenIssued', ...ref, tokenId: 'rtok_1', fingerprint: 'sha256:1', expiresAt: '2025-01-01T10:00:00Z', channel: 'ch_1' },
    { type: 'VmLoginSucceeded', ...ref, ...vm },
    { type: 'ManagementCodeStarted', ...ref, vm: 'dsvm', pid: 7, workDir: '/tmp/azureml_runs/exp_1_a' },
  ];

  it('logs in instead of building an image, has no queue, and finishes on the management code exit', () => {
    const { statuses, effects, snapshot } = play('VirtualMachine', [
      ...start,
      { type: 'RunStatusReported', ...ref, status: 'Preparing', step: 'Preparing' },
      step('prepareEnvironment'),
      step('downloadCode'),
      step('setEnvironment'),
      { type: 'RunStatusReported', ...ref, status: 'Running', step: 'Running' },
      step('runScript'),
      { type: 'RunStatusReported', ...ref, status: 'Finalizing', step: 'Finalizing' },
      { type: 'MetricsWrittenBack', ...ref, batch: 1, count: 0, rows: [] },
      { type: 'RunScriptEnded', ...ref, exitCode: 0 },
      { type: 'ManagementCodeExited', ...ref, vm: 'dsvm', pid: 7, exitCode: 0 },
      { type: 'RunCompleted', ...ref },
    ]);
    expect(statuses).toEqual(['NotStarted', 'Starting', 'Preparing', 'Running', 'Finalizing', 'Completed']);
    expect(effects).toEqual(['issueRunToken', 'startOnVm', 'finishRun', 'revokeRunToken', 'releaseNode']);
    expect(snapshot.context.pid).toBe(7);
  });

  it('fails when the VM refuses the platform key, saying so', () => {
    const { snapshot, effects } = play('VirtualMachine', [start[0]!, { type: 'VmLoginRefused', ...ref, ...vm, reason: 'the key is not in authorized keys' }]);
    expect(snapshot.context.reason).toContain("refused the platform's login");
    expect(effects.at(-1)).toBe('finishRun');
    const [failed, end] = advanceRun(snapshot, { type: 'RunFailed', ...ref, reason: snapshot.context.reason! });
    expect(runStatusOf(failed)).toBe('Failed');
    expect(end.map((e) => e.type)).toContain('revokeRunToken');
  });

  it('fails with the script exit code, and cancels by stopping the management code', () => {
    const failed = play('VirtualMachine', [
      ...start,
      { type: 'RunStatusReported', ...ref, status: 'Running', step: 'Running' },
      { type: 'RunScriptEnded', ...ref, exitCode: 3 },
      { type: 'ManagementCodeExited', ...ref, vm: 'dsvm', pid: 7, exitCode: 3 },
    ]);
    expect(failed.snapshot.context).toMatchObject({ outcome: 'Failed', reason: 'the script exited with code 3' });

    const [snapshot] = advanceRun(play('VirtualMachine', start).snapshot, { type: 'RunCancelRequested', ...ref, by: 'alice' });
    expect(runStatusOf(snapshot)).toBe('CancelRequested');
    const [canceled] = advanceRun(snapshot, { type: 'ManagementCodeExited', ...ref, vm: 'dsvm', pid: 7, exitCode: 143 });
    expect(canceled.context.outcome).toBe('Canceled');
  });

  it('leaves the managed path as it was', () => {
    const { effects } = play('AmlCompute', [{ type: 'RunTokenIssued', ...ref, tokenId: 'rtok_1', fingerprint: 'sha256:1', expiresAt: '2025-01-01T10:00:00Z', channel: 'ch_1' }]);
    expect(effects).toEqual(['issueRunToken', 'prepareImage']);
  });
});

describe('run machine on a managed cluster', () => {
  it('takes one node: a second assignment while it waits for its container is refused', () => {
    const { snapshot } = play('AmlCompute', [
      { type: 'RunTokenIssued', ...ref, tokenId: 't', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00Z', channel: 'ch_1' },
      { type: 'RunImagePrepared', ...ref, image: 'img', reused: true, dependencies: [] },
      { type: 'ManagementCodeWritten', ...ref, fileShare: 'share', path: 'p' },
      { type: 'NodeAssigned', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-1' },
    ]);
    expect(runStatusOf(snapshot)).toBe('Queued');
    expect(snapshot.can({ type: 'NodeAssigned', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-2' })).toBe(false);
  });

  it('ends when the management code reports the script, and gives the node back only once the container ran down', () => {
    const { snapshot, statuses, effects } = play('AmlCompute', [
      { type: 'RunTokenIssued', ...ref, tokenId: 't', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00Z', channel: 'ch_1' },
      { type: 'RunImagePrepared', ...ref, image: 'img', reused: true, dependencies: [] },
      { type: 'ManagementCodeWritten', ...ref, fileShare: 'share', path: 'p' },
      { type: 'NodeAssigned', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-1' },
      { type: 'ContainerStarted', ...ref, node: 'node-1', container: 'c1', image: 'img', driver: 'docker' },
      { type: 'RunScriptEnded', ...ref, exitCode: 0 },
      { type: 'RunCompleted', ...ref },
    ]);
    expect(statuses).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'Completed']);
    expect(snapshot.context.containerExited).toBe(false);
    const [afterExit, released] = advanceRun(snapshot, { type: 'ContainerExited', ...ref, node: 'node-1', exitCode: 0, oomKilled: false });
    expect(released).toEqual([{ type: 'releaseNode', params: { node: 'node-1' } }]);
    expect(afterExit.context.containerExited).toBe(true);
    expect(effects.filter((e) => e === 'releaseNode')).toHaveLength(1); // the entry one, with no node yet
  });
});
