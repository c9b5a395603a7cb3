import { describe, expect, it } from 'vitest';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
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

  it('reaches every node state, and deleted only by way of leaving or unusable, or from idle (recovery takes the node away)', () => {
    expect(new Set(paths.map((p) => p.state.value))).toEqual(new Set(['preparing', 'idle', 'running', 'leaving', 'unusable', 'deleted']));
    const simple = getSimplePaths(nodeMachine, { events: EVENTS }).filter((q) => q.state.value === 'deleted');
    expect(simple.length).toBeGreaterThan(0);
    for (const p of simple) {
      const before = p.steps.at(-1)!;
      // The state the last step left: a scale-down's leaving, an unusable node, or idle (taken away).
      const from = p.steps.at(-2)?.state.value ?? 'preparing';
      expect(before.event.type).toBe('NodeDeprovisioned');
      expect(['leaving', 'unusable', 'idle']).toContain(from);
    }
    expect(nextNodeState('running', { type: 'NodeDeprovisioned' })).toBeUndefined(); // a node under a run is released first
  });

  it('refuses what a node state does not allow', () => {
    expect(nextNodeState('running', { type: 'ClusterIdleTimeoutElapsed' })).toBeUndefined(); // no scale-down under a run
    expect(nextNodeState('leaving', { type: 'NodeAssigned' })).toBeUndefined();
    expect(nextNodeState('idle', { type: 'NodeReleased' })).toBeUndefined();
    expect(nextNodeState('idle', { type: 'NodeAssigned' })).toBe('running');
    expect(nextNodeState('preparing', { type: 'NodeProvisioningFailed' })).toBe('unusable');
  });
});
