import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { runAggregate } from '../run/run-fold';
import { workspaceAggregate } from '../workspace/fold';
import { imageAggregate } from '../image/image.machine';

const ref = { runId: 'r1', workspaceId: 'w1', workspace: 'ws1' };
const stored = (position: number, type: string, data: Record<string, unknown>): StoredEvent =>
  ({ position, stream: 'run-r1', version: position, type, data, meta: { at: '2025-01-01T09:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;

const submitted = { ...ref, experiment: 'e', computeId: 'c1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'sha256-x', script: 't.js', args: [], dependencies: [] };

describe('defineAggregate (packages/core/src/aggregate/define-aggregate.ts)', () => {
  it('names effects with ids <position>:<index>, as the fact that named them stands in the log', () => {
    const [, first] = runAggregate.start(submitted as never, 7);
    expect(first).toEqual([{ type: 'issueRunToken', params: undefined, id: '7:0' }]);
    const history = runAggregate.history([
      stored(7, 'RunSubmitted', submitted),
      stored(9, 'RunTokenIssued', { ...ref, tokenId: 't1', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00.000Z', channel: 'ch' }),
      stored(12, 'RunImagePrepared', { ...ref, image: 'img', reused: true, dependencies: [] }),
      stored(13, 'ManagementCodeWritten', { ...ref, fileShare: 'fs', path: 'p' }),
      stored(15, 'NodeAssigned', { ...ref, computeId: 'c1', compute: 'cpu', node: 'node-1' }),
    ])!;
    expect(history.effects.map((e) => `${e.id} ${e.type}`)).toEqual(['7:0 issueRunToken', '9:0 prepareImage', '12:0 writeManagementCode', '13:0 requestNode', '15:0 startContainer']);
    // Typed from the machine's own declaration: startContainer carries the node.
    expect(history.effects.at(-1)).toEqual({ type: 'startContainer', params: { node: 'node-1' }, id: '15:0' });
  });

  it('re-runs the decisions against a recorded history: the first fact the machine would not take, notes aside', () => {
    const lawful = [
      stored(1, 'RunSubmitted', submitted),
      stored(2, 'RunChannelOpened', { ...ref, channel: 'ch', kind: 'container', socket: '/x' }), // a note: no decision
      stored(3, 'RunTokenIssued', { ...ref, tokenId: 't1', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00.000Z', channel: 'ch' }),
    ];
    expect(runAggregate.divergence(lawful)).toBeUndefined();
    // A log a changed machine would decide differently on: the script cannot end before the run started.
    const changed = [...lawful, stored(4, 'RunScriptEnded', { ...ref, exitCode: 0 })];
    expect(runAggregate.divergence(changed)).toMatchObject({ event: { position: 4, type: 'RunScriptEnded' }, state: 'starting' });
    expect(runAggregate.divergence([stored(1, 'RunTokenIssued', ref)])).toMatchObject({ event: { position: 1 } });
  });

  it('folds only a stream that starts with its first fact; accepts asks the machine', () => {
    expect(runAggregate.fold([stored(1, 'RunTokenIssued', ref)])).toBeUndefined();
    const snapshot = runAggregate.fold([stored(1, 'RunSubmitted', submitted)])!;
    expect(runAggregate.accepts(snapshot, { type: 'RunTokenIssued', ...ref, tokenId: 't', fingerprint: 'f', expiresAt: 'x', channel: 'c' })).toBe(true);
    expect(runAggregate.accepts(snapshot, { type: 'RunScriptEnded', ...ref, exitCode: 0 })).toBe(false);
  });

  it('every lifecycle of the platform is one: workspace, run and image share the same runtime', () => {
    expect([workspaceAggregate.startsWith, runAggregate.startsWith, imageAggregate.startsWith]).toEqual(['WorkspaceCreationRequested', 'RunSubmitted', 'ImageCreationRequested']);
    for (const a of [workspaceAggregate, runAggregate, imageAggregate]) expect(Object.keys(a).sort()).toEqual(['accepts', 'advance', 'divergence', 'fold', 'history', 'machine', 'start', 'startsWith']);
  });
});
