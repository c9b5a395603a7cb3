import { describe, expect, it } from 'vitest';
import type { EventDataMap } from '../events/catalog';
import { advanceRun, foldRun, isTerminalStatus, runAccepts, runStatusOf, startRun, type RunSnapshot } from './run-fold';
import type { RunMachineEvent } from './run.machine';

/**
 * The run statechart on managed compute (S1.3, S8.3, S4.6): the order of its effects (token
 * before image, container only on an assigned node, token revoked and node released at the
 * end), and the reason a run fails, in the log's own words.
 */
const ref = { runId: 'exp_1_a', workspaceId: 'ws_1', workspace: 'ws1' };
const submitted: EventDataMap['RunSubmitted'] = {
  ...ref,
  experiment: 'exp',
  computeId: 'cmp_1',
  compute: 'cpu',
  computeType: 'AmlCompute',
  snapshotId: 'sha256-x',
  script: 'train.js',
  args: [],
  dependencies: [],
};
const ev = {
  tokenIssued: { type: 'RunTokenIssued', ...ref, tokenId: 'rtok_1', fingerprint: 'sha256:1', expiresAt: '2025-01-01T10:00:00Z', channel: 'ch_1' },
  imagePrepared: { type: 'RunImagePrepared', ...ref, image: 'amlsim/run:1', reused: false, dependencies: [] },
  codeWritten: { type: 'ManagementCodeWritten', ...ref, fileShare: 'share', path: 'azureml/exp_1_a' },
  queued: { type: 'RunQueued', ...ref, compute: 'cpu', position: 1 },
  nodeAssigned: { type: 'NodeAssigned', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-1' },
  otherNode: { type: 'NodeAssigned', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-2' },
  containerStarted: { type: 'ContainerStarted', ...ref, node: 'node-1', container: 'c1', image: 'amlsim/run:1', driver: 'docker' },
  running: { type: 'RunStatusReported', ...ref, status: 'Running', step: 'Running' },
  finalizing: { type: 'RunStatusReported', ...ref, status: 'Finalizing', step: 'Finalizing' },
  metrics: { type: 'MetricsWrittenBack', ...ref, batch: 1, count: 1, rows: [] },
  logs: { type: 'RunLogsUploaded', ...ref, stdoutBytes: 10, stderrBytes: 0, tail: 'epoch 1\nboom' },
  scriptOk: { type: 'RunScriptEnded', ...ref, exitCode: 0 },
  scriptFailed: { type: 'RunScriptEnded', ...ref, exitCode: 3 },
  scriptError: { type: 'RunScriptEnded', ...ref, exitCode: 1, error: 'ModuleNotFound: numpy' },
  refused: { type: 'RunCallRefused', ...ref, call: 'POST metrics', code: 'ExpiredAuthenticationToken', reason: 'The access token expired' },
  exited0: { type: 'ContainerExited', ...ref, node: 'node-1', exitCode: 0, oomKilled: false },
  exited1: { type: 'ContainerExited', ...ref, node: 'node-1', exitCode: 1, oomKilled: false },
  exited137: { type: 'ContainerExited', ...ref, node: 'node-1', exitCode: 137, oomKilled: false },
  oom: { type: 'ContainerExited', ...ref, node: 'node-1', exitCode: 137, oomKilled: true },
  completed: { type: 'RunCompleted', ...ref },
  canceled: { type: 'RunCanceled', ...ref },
  failed: { type: 'RunFailed', ...ref, reason: 'the image build failed' },
  cancel: { type: 'RunCancelRequested', ...ref, by: 'alice' },
  revoked: { type: 'RunTokenRevoked', ...ref, tokenId: 'rtok_1' },
  expired: { type: 'RunTokenExpired', ...ref, tokenId: 'rtok_1' },
  tokenReissued: { type: 'RunTokenIssued', ...ref, tokenId: 'rtok_2', fingerprint: 'sha256:2', expiresAt: '2025-01-01T11:00:00Z', channel: 'ch_1' },
  released: { type: 'NodeReleased', ...ref, computeId: 'cmp_1', compute: 'cpu', node: 'node-1' },
  heartbeatLost: { type: 'RunHeartbeatLost', ...ref, lastHeartbeatAt: '2025-01-01T09:00:00Z', silentForMs: 30000 },
  heartbeatResumed: { type: 'RunHeartbeatResumed', ...ref },
} satisfies Record<string, RunMachineEvent | Record<string, unknown>>;
type Name = keyof typeof ev;

/** Feed events by name; every one must be accepted. Returns the snapshot, statuses passed and effects named (with params). */
const play = (names: Name[]) => {
  let [snapshot, effects] = startRun(submitted);
  const statuses = [runStatusOf(snapshot)];
  const named = effects.map((e) => ({ type: e.type, params: e.params }));
  for (const name of names) {
    const event = ev[name] as RunMachineEvent;
    expect(runAccepts(snapshot, event), `${name} in ${JSON.stringify(snapshot.value)}`).toBe(true);
    let next: RunSnapshot;
    [next, effects] = advanceRun(snapshot, event);
    snapshot = next;
    named.push(...effects.map((e) => ({ type: e.type, params: e.params })));
    const status = runStatusOf(snapshot);
    if (status && statuses.at(-1) !== status) statuses.push(status);
  }
  return { snapshot, statuses, effects: named, types: named.map((e) => e.type) };
};

const TO_RUNNING: Name[] = ['tokenIssued', 'imagePrepared', 'codeWritten', 'queued', 'nodeAssigned', 'containerStarted', 'running'];

describe('run machine on managed compute', () => {
  it('walks NotStarted > Starting > Preparing > Queued > Running > Finalizing > Completed, effects in order, token revoked and node released at the end', () => {
    const run = play([...TO_RUNNING, 'metrics', 'metrics', 'finalizing', 'scriptOk', 'completed', 'revoked', 'exited0', 'released']);
    expect(run.statuses).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'Finalizing', 'Completed']);
    expect(run.effects).toEqual([
      { type: 'issueRunToken', params: undefined },
      { type: 'prepareImage', params: undefined },
      { type: 'writeManagementCode', params: undefined },
      { type: 'requestNode', params: undefined },
      { type: 'startContainer', params: { node: 'node-1' } },
      { type: 'finishRun', params: { outcome: 'Completed' } },
      { type: 'revokeRunToken', params: { tokenId: 'rtok_1' } },
      { type: 'releaseNode', params: {} }, // the container is still running down
      { type: 'releaseNode', params: { node: 'node-1' } }, // now it is gone
    ]);
    const c = run.snapshot.context;
    expect(c).toMatchObject({ tokenId: 'rtok_1', image: 'amlsim/run:1', node: 'node-1', container: 'c1', metricBatches: 2, outcome: 'Completed', tokenRevoked: true, containerExited: true, nodeReleased: true });
    expect(isTerminalStatus(runStatusOf(run.snapshot))).toBe(true);
  });

  it('a revoked token is marked (the control plane refuses it from then on); an expiry is marked in any state', () => {
    expect(play([...TO_RUNNING, 'scriptOk', 'completed']).snapshot.context.tokenRevoked).toBe(false);
    expect(play([...TO_RUNNING, 'scriptOk', 'completed', 'revoked']).snapshot.context.tokenRevoked).toBe(true);
    for (const upTo of [1, 2, 3, 7]) expect(play([...TO_RUNNING.slice(0, upTo), 'expired']).snapshot.context.tokenExpired).toBe(true);
    expect(play([...TO_RUNNING, 'scriptOk', 'completed', 'expired']).snapshot.context.tokenExpired).toBe(true);
    expect(play(TO_RUNNING).snapshot.context.tokenExpired).toBe(false);
  });

  it('nothing starts before the token is issued, and no container before a node is assigned', () => {
    const [start] = startRun(submitted);
    for (const name of ['imagePrepared', 'codeWritten', 'nodeAssigned', 'containerStarted', 'metrics', 'scriptOk'] as const) {
      expect(runAccepts(start, ev[name] as RunMachineEvent), name).toBe(false);
    }
    const queued = play(['tokenIssued', 'imagePrepared', 'codeWritten']).snapshot;
    expect(runStatusOf(queued)).toBe('Queued');
    expect(runAccepts(play(['tokenIssued']).snapshot, ev.containerStarted as RunMachineEvent)).toBe(false);
    expect(runAccepts(play(['tokenIssued', 'imagePrepared']).snapshot, ev.nodeAssigned as RunMachineEvent)).toBe(false);
  });

  it('one node per run: a second assignment is refused and starts nothing', () => {
    const run = play(['tokenIssued', 'imagePrepared', 'codeWritten', 'nodeAssigned']);
    expect(runAccepts(run.snapshot, ev.otherNode as RunMachineEvent)).toBe(false);
    const [after, effects] = advanceRun(run.snapshot, ev.otherNode as RunMachineEvent);
    expect(after.context.node).toBe('node-1');
    expect(effects).toEqual([]);
  });

  it('the script ending with exit code 0 completes the run; a non-zero exit fails it with the log tail', () => {
    expect(play([...TO_RUNNING, 'scriptOk']).effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Completed' } });
    const failed = play([...TO_RUNNING, 'logs', 'scriptFailed']);
    expect(failed.effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason: 'the script exited with code 3; log tail:\nepoch 1\nboom' } });
    expect(play([...TO_RUNNING, 'scriptFailed']).effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason: 'the script exited with code 3' } });
    expect(play([...TO_RUNNING, 'logs', 'scriptError']).effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason: 'ModuleNotFound: numpy' } });
    expect(play([...TO_RUNNING, 'finalizing', 'scriptFailed']).snapshot.context).toMatchObject({ outcome: 'Failed', scriptExitCode: 3 });
  });

  it.each([
    ['an OOM kill', ['oom'], 'OOMKilled: the container exceeded its memory limit (exit code 137)'],
    ['a refused call', ['refused', 'exited1'], 'the platform refused POST metrics: ExpiredAuthenticationToken: The access token expired'],
    ['a killed container', ['exited137'], 'the container exited with code 137 before the script ended (killed or lost)'],
    ['a script that failed before the container exited', ['logs', 'scriptFailed'], 'the script exited with code 3; log tail:\nepoch 1\nboom'],
  ] as const)('a container ending after %s fails the run saying why', (_, tail, reason) => {
    const run = play([...TO_RUNNING, ...(tail as readonly Name[])]);
    expect(run.effects.find((e) => e.type === 'finishRun')).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason } });
  });

  it('a container that exits before its script reported an end fails the run, whatever its exit code', () => {
    expect(play([...TO_RUNNING, 'exited0']).effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason: 'the container exited with code 0 before the script ended (killed or lost)' } });
    const run = play([...TO_RUNNING, 'exited1']);
    expect(run.effects.at(-1)).toEqual({ type: 'finishRun', params: { outcome: 'Failed', reason: 'the container exited with code 1 before the script ended (killed or lost)' } });
    expect(run.snapshot.context.containerExited).toBe(true);
  });

  it('a container that exits before it started fails the run from the queue', () => {
    const run = play(['tokenIssued', 'imagePrepared', 'codeWritten', 'nodeAssigned', 'exited137']);
    expect(run.snapshot.context).toMatchObject({ outcome: 'Failed', containerExited: true });
    expect(run.effects.at(-1)?.type).toBe('finishRun');
  });

  it('a run failed before its container goes straight to Failed, revoking the token; no node to release', () => {
    const run = play(['tokenIssued', 'failed']);
    expect(runStatusOf(run.snapshot)).toBe('Failed');
    expect(run.snapshot.context).toMatchObject({ outcome: 'Failed', reason: 'the image build failed' });
    expect(run.effects.slice(-2)).toEqual([
      { type: 'revokeRunToken', params: { tokenId: 'rtok_1' } },
      { type: 'releaseNode', params: {} },
    ]);
  });

  it('a run failed before it had a token revokes nothing by id', () => {
    const run = play(['failed']);
    expect(run.effects.find((e) => e.type === 'revokeRunToken')).toEqual({ type: 'revokeRunToken', params: {} });
  });

  it('cancel while running stops the container, ends Canceled once it exited, and releases the node', () => {
    const run = play([...TO_RUNNING, 'cancel', 'exited137', 'canceled']);
    expect(run.statuses.slice(-2)).toEqual(['CancelRequested', 'Canceled']);
    expect(run.effects).toContainEqual({ type: 'stopRun', params: { hasContainer: true } });
    expect(run.effects).toContainEqual({ type: 'finishRun', params: { outcome: 'Canceled' } });
    expect(run.effects.slice(-2)).toEqual([
      { type: 'revokeRunToken', params: { tokenId: 'rtok_1' } },
      { type: 'releaseNode', params: { node: 'node-1' } },
    ]);
  });

  it('cancel before any node has nothing to stop; a node and container that arrive late are remembered', () => {
    expect(play(['tokenIssued', 'cancel']).effects.at(-1)).toEqual({ type: 'stopRun', params: { hasContainer: false } });
    expect(play(['cancel']).effects.at(-1)).toEqual({ type: 'stopRun', params: { hasContainer: false } });
    const late = play(['tokenIssued', 'imagePrepared', 'codeWritten', 'cancel', 'nodeAssigned', 'containerStarted']);
    expect(late.snapshot.context).toMatchObject({ node: 'node-1', container: 'c1' });
    for (const upTo of [1, 2, 3]) expect(runStatusOf(play([...TO_RUNNING.slice(0, upTo), 'cancel']).snapshot)).toBe('CancelRequested');
  });

  it('a lost heartbeat says NotResponding, and the run goes on when it comes back or ends when the container exits', () => {
    expect(play([...TO_RUNNING, 'heartbeatLost', 'heartbeatResumed', 'scriptOk']).statuses).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'NotResponding', 'Running']);
    expect(play([...TO_RUNNING, 'heartbeatLost', 'exited137']).snapshot.context.outcome).toBe('Failed');
    expect(runStatusOf(play([...TO_RUNNING, 'heartbeatLost', 'finalizing']).snapshot)).toBe('Finalizing');
    expect(play([...TO_RUNNING, 'heartbeatLost', 'scriptOk']).snapshot.context.outcome).toBe('Completed');
  });

  it('after the end, late reports change nothing', () => {
    const done = play([...TO_RUNNING, 'metrics', 'scriptOk', 'completed']);
    for (const name of ['metrics', 'logs', 'scriptFailed', 'refused', 'running', 'failed', 'heartbeatLost'] as const) {
      const [after] = advanceRun(done.snapshot, ev[name] as RunMachineEvent);
      expect(runStatusOf(after), name).toBe('Completed');
      expect(after.context.metricBatches).toBe(1);
      expect(after.context.outcome).toBe('Completed');
    }
  });

  it('foldRun replays a stream to the same state and status history', () => {
    const names: Name[] = [...TO_RUNNING, 'metrics', 'finalizing', 'scriptOk', 'completed', 'revoked'];
    const stored = [{ type: 'RunSubmitted', ...submitted }, ...names.map((n) => ev[n])].map((e, i) => {
      const { type, ...data } = e as { type: string };
      return { position: i + 1, stream: 'run-exp_1_a', version: i + 1, type, data, meta: { at: 'x', correlationId: 'c', causationId: 'c', session: 's' } };
    });
    const folded = foldRun(stored as never)!;
    expect(folded.history).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'Finalizing', 'Completed']);
    expect(folded.snapshot.context).toEqual(play(names).snapshot.context);
    expect(foldRun([])).toBeUndefined();
    expect(foldRun(stored.slice(1) as never)).toBeUndefined();
  });
});

describe('run machine on an attached VM: how a run ends (S8.3 unmanaged)', () => {
  const vmSubmitted: EventDataMap['RunSubmitted'] = { ...submitted, compute: 'vm1', computeType: 'VirtualMachine' };
  const login = { vmId: 'vm_1', vm: 'dsvm', username: 'azureuser', fingerprint: 'SHA256:abc' };
  const vmEv = {
    tokenIssued: ev.tokenIssued,
    loggedIn: { type: 'VmLoginSucceeded', ...ref, ...login },
    loginRefused: { type: 'VmLoginRefused', ...ref, ...login, reason: 'permission denied (publickey)' },
    started: { type: 'ManagementCodeStarted', ...ref, vm: 'dsvm', pid: 4242, workDir: '/home/azureuser/azureml' },
    running: ev.running,
    scriptOk: ev.scriptOk,
    scriptFailed: ev.scriptFailed,
    refused: ev.refused,
    logs: ev.logs,
    exit: (exitCode: number) => ({ type: 'ManagementCodeExited', ...ref, vm: 'dsvm', pid: 4242, exitCode }),
    completed: ev.completed,
  };
  const vmPlay = (events: Array<Record<string, unknown>>) => {
    let [snapshot, effects] = startRun(vmSubmitted);
    const named = effects.map((e) => ({ type: e.type, params: e.params }));
    for (const event of events) {
      expect(runAccepts(snapshot, event as RunMachineEvent), `${String(event.type)} in ${JSON.stringify(snapshot.value)}`).toBe(true);
      [snapshot, effects] = advanceRun(snapshot, event as RunMachineEvent);
      named.push(...effects.map((e) => ({ type: e.type, params: e.params })));
    }
    return { snapshot, effects: named, finish: named.find((e) => e.type === 'finishRun') };
  };
  const upToPreparing = [vmEv.tokenIssued, vmEv.loggedIn, vmEv.started];

  it('starts on the VM (no image, no node) and remembers where the management code runs', () => {
    const run = vmPlay([...upToPreparing, vmEv.running]);
    expect(run.effects.map((e) => e.type)).toEqual(['issueRunToken', 'startOnVm']);
    expect(run.snapshot.context).toMatchObject({ vm: 'dsvm', pid: 4242 });
    expect(runStatusOf(run.snapshot)).toBe('Running');
    expect(runStatusOf(vmPlay(upToPreparing).snapshot)).toBe('Preparing');
    // Only a report of Running moves it on.
    expect(runStatusOf(vmPlay([...upToPreparing, { ...vmEv.running, status: 'Preparing' }]).snapshot)).toBe('Preparing');
  });

  it('a refused login fails the run, naming the VM, the user and why', () => {
    expect(vmPlay([vmEv.tokenIssued, vmEv.loginRefused]).finish).toEqual({
      type: 'finishRun',
      params: { outcome: 'Failed', reason: "the VM 'dsvm' refused the platform's login as 'azureuser': permission denied (publickey)" },
    });
  });

  it.each([
    ['exits 0 after the script ended 0', [vmEv.scriptOk, vmEv.exit(0)], { outcome: 'Completed' }],
    ['exits non-zero after the script ended 0', [vmEv.scriptOk, vmEv.exit(3)], { outcome: 'Failed', reason: 'the management code exited with code 3' }],
    ['exits 0 before the script ended', [vmEv.exit(0)], { outcome: 'Failed', reason: "the management code on VM 'dsvm' exited with code 0 before the script ended (killed or lost)" }],
    ['exits after the script failed', [vmEv.logs, vmEv.scriptFailed, vmEv.exit(0)], { outcome: 'Failed', reason: 'the script exited with code 3; log tail:\nepoch 1\nboom' }],
    ['exits after a refused call', [vmEv.refused, vmEv.exit(1)], { outcome: 'Failed', reason: 'the platform refused POST metrics: ExpiredAuthenticationToken: The access token expired' }],
  ])('while preparing, the management code %s', (_, tail, params) => {
    expect(vmPlay([...upToPreparing, ...tail]).finish).toEqual({ type: 'finishRun', params });
  });

  it('while running, the script ending ends the run; the management code exiting before that fails it', () => {
    expect(vmPlay([...upToPreparing, vmEv.running, vmEv.scriptOk]).finish).toEqual({ type: 'finishRun', params: { outcome: 'Completed' } });
    expect(vmPlay([...upToPreparing, vmEv.running, vmEv.exit(137)]).finish).toEqual({
      type: 'finishRun',
      params: { outcome: 'Failed', reason: "the management code on VM 'dsvm' exited with code 137 before the script ended (killed or lost)" },
    });
  });

  it('cancel on a VM stops the management code it knows of, and ends Canceled when it exits', () => {
    const run = vmPlay([...upToPreparing, ev.cancel, vmEv.exit(143), ev.canceled]);
    expect(run.effects).toContainEqual({ type: 'stopRun', params: { hasContainer: true } });
    expect(run.finish).toEqual({ type: 'finishRun', params: { outcome: 'Canceled' } });
    expect(runStatusOf(run.snapshot)).toBe('Canceled');
    const early = vmPlay([vmEv.tokenIssued, ev.cancel, vmEv.started]);
    expect(early.effects).toContainEqual({ type: 'stopRun', params: { hasContainer: false } });
    expect(early.snapshot.context).toMatchObject({ vm: 'dsvm', pid: 4242 });
  });
});

describe('run machine on managed compute: a token issued again before the target starts (a resumed session)', () => {
  it('given a run Starting, Preparing or Queued, when its token is issued again, then the new token is the run\'s and no step is named again', () => {
    for (const before of [['tokenIssued'], ['tokenIssued', 'imagePrepared'], ['tokenIssued', 'imagePrepared', 'codeWritten', 'queued', 'nodeAssigned']] as Name[][]) {
      const run = play([...before, 'expired', 'tokenReissued']);
      expect(run.snapshot.context.tokenId).toBe('rtok_2');
      expect(run.snapshot.context.tokenExpired).toBe(false);
      expect(run.types).toEqual(play(before).types);
    }
  });

  it('given the new token, when the run ends, then the token revoked is the new one', () => {
    const run = play(['tokenIssued', 'imagePrepared', 'codeWritten', 'queued', 'tokenReissued', 'nodeAssigned', 'containerStarted', 'running', 'scriptOk', 'completed']);
    expect(run.effects.find((e) => e.type === 'revokeRunToken')?.params).toEqual({ tokenId: 'rtok_2' });
  });

  it('given a run whose container started, when a token is issued again, then it is not taken (only a run without a target has its token replaced)', () => {
    const { snapshot } = play(TO_RUNNING);
    expect(runAccepts(snapshot, ev.tokenReissued as RunMachineEvent)).toBe(false);
  });
});
