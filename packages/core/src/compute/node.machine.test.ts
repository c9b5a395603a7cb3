import { describe, expect, it } from 'vitest';
import { getShortestPaths } from 'xstate/graph';
import { nextNodeState, nodeMachine, type NodeEvent } from './node.machine';

const EVENTS: NodeEvent[] = [
  { type: 'NodeProvisioned' },
  { type: 'NodeProvisioningFailed' },
  { type: 'NodeAssigned' },
  { type: 'NodeReleased' },
  { type: 'ClusterIdleTimeoutElapsed' },
  { type: 'NodeDeprovisioned' },
];

describe('node statechart (S4.6)', () => {
  const paths = getShortestPaths(nodeMachine, { events: EVENTS });

  it('reaches every node state, and deleted only by way of leaving or unusable', () => {
    expect(new Set(paths.map((p) => p.state.value))).toEqual(new Set(['preparing', 'idle', 'running', 'leaving', 'unusable', 'deleted']));
    for (const p of paths.filter((q) => q.state.value === 'deleted')) {
      expect(p.steps.some((s) => s.state.value === 'leaving' || s.state.value === 'unusable')).toBe(true);
    }
  });

  it('refuses what a node state does not allow', () => {
    expect(nextNodeState('running', { type: 'ClusterIdleTimeoutElapsed' })).toBeUndefined(); // no scale-down under a run
    expect(nextNodeState('leaving', { type: 'NodeAssigned' })).toBeUndefined();
    expect(nextNodeState('idle', { type: 'NodeReleased' })).toBeUndefined();
    expect(nextNodeState('idle', { type: 'NodeAssigned' })).toBe('running');
    expect(nextNodeState('preparing', { type: 'NodeProvisioningFailed' })).toBe('unusable');
  });
});
