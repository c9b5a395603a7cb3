import { describe, expect, it } from 'vitest';
import { STREAMS } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { replay } from './replay';

const ref = { runId: 'r1', workspaceId: 'w1', workspace: 'ws1' };
const meta = { at: '2025-01-01T09:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's1' };
const submitted = { ...ref, experiment: 'e', computeId: 'c1', compute: 'cpu', computeType: 'AmlCompute', snapshotId: 'sha256-x', script: 't.js', args: [], dependencies: [] };

describe('amlsim replay re-runs the decisions', () => {
  it('reports the first fact a statechart would not take where the log has it', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.run('r1'), 'no-stream', [
      { type: 'RunSubmitted', data: submitted, meta },
      { type: 'RunChannelOpened', data: { ...ref, channel: 'ch', kind: 'container', socket: '/x' }, meta },
      { type: 'RunTokenIssued', data: { ...ref, tokenId: 't', fingerprint: 'f', expiresAt: '2025-01-01T10:00:00.000Z', channel: 'ch' }, meta },
      // What no run statechart takes in Starting: a log the machine of today would decide differently on.
      { type: 'RunCompleted', data: ref, meta },
    ]);
    const report = replay(store);
    expect(report.ok).toBe(false);
    expect(report.sessions[0]!.divergences).toContain(
      'run-r1: the run statechart would not take RunCompleted (#4) in state "starting": it decides differently on this log than the one that wrote it',
    );
  });

  it('says nothing of a history every statechart takes', () => {
    const store = createMemoryEventStore();
    store.append(STREAMS.run('r1'), 'no-stream', [
      { type: 'RunSubmitted', data: submitted, meta },
      { type: 'RunFailed', data: { ...ref, reason: 'no compute' }, meta },
    ]);
    expect(replay(store).sessions[0]!.divergences.filter((d) => d.includes('statechart'))).toEqual([]);
  });
});
