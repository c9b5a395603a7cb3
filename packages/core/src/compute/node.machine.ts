import { setup } from 'xstate';
import { statusTransitions } from '../aggregate/status-machine';

/**
 * The lifecycle of one AmlCompute node (S8.3, S4.6), as the platform's node states:
 * preparing -> idle <-> running; idle -> leaving (scale-down) -> deleted, or idle -> deleted when
 * recovery takes the node of a dead simulator away; a node whose
 * provisioning failed is unusable until it is removed. The cluster's allocation state is
 * derived from its nodes: Resizing while one is preparing or leaving, else Steady.
 *
 * Pure: the computes read model folds node facts through it, and a fact the node's state does
 * not allow (assigning a leaving node, releasing an idle one) is a bug the fold reports.
 */
export type NodeEvent =
  | { type: 'NodeProvisioned' }
  | { type: 'NodeProvisioningFailed' }
  | { type: 'NodeAssigned' }
  | { type: 'NodeReleased' }
  | { type: 'ClusterIdleTimeoutElapsed' }
  | { type: 'NodeDeprovisioned' };

export const nodeMachine = setup({ types: { events: {} as NodeEvent } }).createMachine({
  id: 'node',
  initial: 'preparing',
  states: {
    preparing: { on: { NodeProvisioned: 'idle', NodeProvisioningFailed: 'unusable' } },
    // Deprovisioned straight from idle only when the platform takes the node away without a
    // scale-down: a session whose simulator died is recovered (core/src/recovery/abandoned.ts),
    // its node released by the run first. A scale-down (S4.6) always goes by way of leaving.
    idle: { on: { NodeAssigned: 'running', ClusterIdleTimeoutElapsed: 'leaving', NodeDeprovisioned: 'deleted' } },
    running: { on: { NodeReleased: 'idle' } },
    leaving: { on: { NodeDeprovisioned: 'deleted' } },
    unusable: { on: { NodeDeprovisioned: 'deleted' } },
    deleted: { type: 'final' },
  },
});

export type NodeState = 'preparing' | 'idle' | 'running' | 'leaving' | 'unusable' | 'deleted';

/** The node's next state for a fact, or undefined when its state does not allow the fact. */
export const nextNodeState: (state: NodeState, event: NodeEvent) => NodeState | undefined = statusTransitions<NodeState, NodeEvent>(nodeMachine);
