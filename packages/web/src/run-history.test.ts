import type { StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import { runHistories } from './run-history';

const ref = { workspaceId: 'ws_1', workspace: 'ws1', runId: 'exp1_1' };
const T0 = Date.parse('2026-01-01T10:00:00.000Z');

/** A managed run as the platform records it (the fact order of train-managed-compute.yaml). */
const managedRun = (): StoredEvent[] => {
  const facts: Array<[string, Record<string, unknown>]> = [
    ['RunSubmitted', { experiment: 'exp1', computeId: 'cmp_1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'sha256-x', script: 'train.js', args: [], dependencies: [] }],
    ['RunChannelOpened', { channel: 'ch_1', kind: 'container', socket: '/tmp/s' }],
    ['RunTokenIssued', { tokenId: 'rtok_1', fingerprint: 'sha256:f', expiresAt: '2026-01-01T10:10:00.000Z', channel: 'ch_1' }],
    ['RunImagePrepared', { image: 'img', reused: true, dependencies: [] }],
    ['ManagementCodeWritten', { fileShare: 'fs', path: 'p' }],
    ['RunQueued', { compute: 'cpu', position: 1 }],
    ['NodeAssigned', { computeId: 'cmp_1', compute: 'cpu', node: 'node-1' }],
    ['ContainerStarted', { node: 'node-1', container: 'c1', image: 'img', driver: 'docker' }],
    ['RunStatusReported', { status: 'Preparing', step: 'Preparing' }],
    ['RunStatusReported', { status: 'Running', step: 'Running' }],
    [
      'MetricsWrittenBack',
      {
        batch: 1,
        count: 5,
        rows: [
          { kind: 'scalar', name: 'loss', value: 0.25, step: 1, at: 'a' },
          { kind: 'scalar', name: 'loss', value: 0.5, step: 0, at: 'a' },
          { kind: 'scalar', name: 'phase', value: 'warm', step: 0, at: 'a' },
          { kind: 'list', name: 'xs', values: [1, 2], at: 'a' },
          { kind: 'scalar', name: 'accuracy', value: 0.9, step: 0, at: 'a' },
        ],
      },
    ],
    ['RunStatusReported', { status: 'Finalizing', step: 'Finalizing' }],
    ['RunScriptEnded', { exitCode: 0 }],
    ['RunCompleted', {}],
    ['RunTokenRevoked', { tokenId: 'rtok_1' }],
  ];
  return facts.map(([type, data], i) => ({
    type,
    data: { ...ref, ...data },
    position: i + 1,
    stream: `run-${ref.runId}`,
    version: i + 1,
    meta: { at: new Date(T0 + i * 100).toISOString(), correlationId: 'c', causationId: 'c', session: 's', principal: 'alice' },
  }));
};

describe('runHistories', () => {
  it("folds each run's stream through the run statechart into its status history", () => {
    const [run] = runHistories(managedRun());
    expect(run!.runId).toBe('exp1_1');
    expect(run!.status).toBe('Completed');
    expect(run!.history.map((h) => h.status)).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'Finalizing', 'Completed']);
    expect(run!.history.at(-1)).toMatchObject({ type: 'RunCompleted', position: 14 });
  });

  it('charts numeric scalar metrics by step and lists the others', () => {
    const [run] = runHistories(managedRun());
    expect(run!.metrics).toEqual([
      { name: 'loss', steps: [0, 1], values: [0.5, 0.25] },
      { name: 'accuracy', steps: [0], values: [0.9] },
    ]);
    expect(run!.otherMetrics).toEqual([{ name: 'phase', last: 'warm', count: 1 }]);
  });

  it('rebuilds at an earlier point from the first events only', () => {
    const early = runHistories(managedRun(), 10);
    expect(early[0]!.status).toBe('Running');
    expect(early[0]!.metrics).toEqual([]);
    expect(runHistories(managedRun(), 0)).toEqual([]);
  });

  it('keeps the reason of a failed run', () => {
    const events = managedRun().slice(0, 10);
    events.push({ ...events[9]!, type: 'RunFailed', position: 11, version: 11, data: { ...ref, reason: 'token expired' } });
    const [run] = runHistories(events);
    expect(run!.status).toBe('Failed');
    expect(run!.reason).toBe('token expired');
  });
});
