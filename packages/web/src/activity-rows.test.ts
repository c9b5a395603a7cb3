import { activityLogProjection, foldWorld, type StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import { activityRows } from './activity-rows';

let position = 0;
const ev = (type: string, data: Record<string, unknown>, principal = 'alice'): StoredEvent => ({
  type,
  data,
  position: ++position,
  stream: 'x',
  version: 1,
  meta: { at: `2026-01-01T10:00:0${position % 10}.000Z`, principal, correlationId: 'c', causationId: 'c', session: 's' },
});

const session = (): StoredEvent[] => {
  position = 0;
  const ws = { workspaceId: 'ws_1', workspace: 'ws1' };
  return [
    ev('ResourceGroupCreated', { subscription: 'sub', resourceGroup: 'rg', scope: '/subscriptions/sub/resourceGroups/rg' }),
    ev('WorkspaceCreationRequested', { ...ws, scope: '/subscriptions/sub/resourceGroups/rg/ws1' }),
    ev('WorkspaceCreated', { ...ws, scope: '/subscriptions/sub/resourceGroups/rg/ws1' }),
    ev('RunSubmitted', { ...ws, runId: 'r1', experiment: 'exp' }),
    ev('ModelRegistered', { ...ws, model: 'm', version: 1 }),
    ev('CommandRejected', { command: 'X', code: 'AuthorizationFailed', action: 'a/write', scope: '/s' }, 'rita'),
  ];
};

describe('activityRows', () => {
  it('shows the activity log entries, each at the fact that made it', () => {
    const rows = activityRows(session());
    const entries = rows.filter((r) => r.kind === 'entry');
    // The same entries as the read model folded by the world.
    expect(entries.map((r) => r.kind === 'entry' && r.entry)).toEqual(foldWorld(session()).activityLog.entries);
    expect(entries.map((r) => r.position)).toEqual([1, 3, 6]);
  });

  it('marks where a run start and a model registration happened but are not logged (S7.2)', () => {
    const gaps = activityRows(session()).filter((r) => r.kind === 'gap');
    expect(gaps.map((g) => g.kind === 'gap' && [g.type, g.position, g.initiator])).toEqual([
      ['RunSubmitted', 4, 'alice'],
      ['ModelRegistered', 5, 'alice'],
    ]);
    // They are gaps because the read model indeed has no entry for them.
    expect('RunSubmitted' in activityLogProjection.on).toBe(false);
    expect('ModelRegistered' in activityLogProjection.on).toBe(false);
  });

  it('keeps log order and rebuilds at an earlier point', () => {
    expect(activityRows(session()).map((r) => r.kind)).toEqual(['entry', 'entry', 'gap', 'gap', 'entry']);
    expect(activityRows(session(), 4).map((r) => r.kind)).toEqual(['entry', 'entry', 'gap']);
  });
});
