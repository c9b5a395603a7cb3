import type { ComputeType } from '../events/catalog';
import { nextNodeState, type NodeEvent, type NodeState } from '../compute/node.machine';
import { defineProjection } from './projection';

export type ComputeNode = {
  node: string;
  state: NodeState;
  osDisk?: string;
  tempDisk?: string;
  run?: string;
  /** When it last became idle (ISO), for scale-down (S4.6). */
  idleSince?: string;
};

export type ComputeRecord = {
  computeId: string;
  compute: string;
  workspaceId: string;
  workspace: string;
  type: ComputeType;
  vmSize: string;
  minNodes: number;
  maxNodes: number;
  idleSecondsBeforeScaledown: number;
  memoryBytes: number;
  nodes: Record<string, ComputeNode>;
  /** Runs waiting for a node, oldest first. */
  queue: string[];
  /** Nodes ever made (names are node-1, node-2, …). */
  nodeCount: number;
  /** Facts the node statechart refused (should stay empty). */
  anomalies: string[];
  /** AKS: agent nodes and region. */
  agentCount?: number;
  region?: string;
  /**
   * An attached VM (unmanaged compute, S8.3): the VM, the admin user the platform logs in as,
   * and where the platform keeps its private key (the platform vault, S6.2), by reference.
   */
  attached?: { vmId: string; vm: string; username: string; vault: string; secret: string; fingerprint: string };
  /** S3.1: the virtual network it is in (an attached VM: the VM's). */
  vnet?: string;
};

/**
 * S3.1: a virtual network of the session — one loopback-only network namespace, owned by the
 * container `holder` — with what joined it: compute (`<workspace>/<compute>`), VMs (`vm:<name>`),
 * and the loopback ports its replicas took.
 */
export type VnetRecord = {
  vnet: string;
  subscription: string;
  region: string;
  holder: string;
  driver: string;
  members: string[];
  ports: number[];
};

/** Compute targets by workspace id and name, with their nodes and queues (S8.3, S4.6). */
export type ComputesState = {
  byKey: Record<string, ComputeRecord>;
  /** runId -> compute key, so run events find their cluster. */
  computeOfRun: Record<string, string>;
  /** S3.1: virtual networks by name. */
  vnets: Record<string, VnetRecord>;
};

/** The first loopback port a VNet gives a replica; each further replica in the VNet takes the next (S3.1). */
export const VNET_FIRST_PORT = 5001;

/** The loopback port the next replica in a VNet listens on: one past the highest any took (ports are never reused). */
export const nextVnetPort = (v: VnetRecord): number => (v.ports.length === 0 ? VNET_FIRST_PORT : Math.max(...v.ports) + 1);

const joinVnet = (s: ComputesState, vnet: string | undefined, member: string): void => {
  const v = vnet !== undefined ? s.vnets[vnet] : undefined;
  if (v && !v.members.includes(member)) v.members.push(member);
};

export const computeKey = (workspaceId: string, compute: string): string => `${workspaceId}/${compute}`;

/** AmlCompute allocation state: Resizing while a node is being added or removed. */
export const allocationState = (c: ComputeRecord): 'Steady' | 'Resizing' =>
  Object.values(c.nodes).some((n) => n.state === 'preparing' || n.state === 'leaving') ? 'Resizing' : 'Steady';

/**
 * Move a node by a fact through the node statechart. A fact its state does not allow is
 * recorded on the cluster (it would be a platform bug) and leaves the node as it was.
 */
const moveNode = (c: ComputeRecord, node: ComputeNode, event: NodeEvent): boolean => {
  const next = nextNodeState(node.state, event);
  if (!next) {
    c.anomalies.push(`${event.type} on ${node.node} while ${node.state}`);
    return false;
  }
  node.state = next;
  return true;
};

const dequeue = (s: ComputesState, runId: string): void => {
  const c = s.byKey[s.computeOfRun[runId] ?? ''];
  if (c) c.queue = c.queue.filter((r) => r !== runId);
};

type ComputeIdentity = Pick<ComputeRecord, 'computeId' | 'compute' | 'workspaceId' | 'workspace' | 'type'>;
type ComputeSizing = Omit<ComputeRecord, keyof ComputeIdentity | 'nodes' | 'queue' | 'nodeCount' | 'anomalies'>;

const newCompute = (d: ComputeIdentity, sizing: ComputeSizing): ComputeRecord => ({
  computeId: d.computeId,
  compute: d.compute,
  workspaceId: d.workspaceId,
  workspace: d.workspace,
  type: d.type,
  ...sizing,
  nodes: {},
  queue: [],
  nodeCount: 0,
  anomalies: [],
});

export const computesProjection = defineProjection<ComputesState>({
  name: 'computes',
  initial: () => ({ byKey: {}, computeOfRun: {}, vnets: {} }),
  on: {
    VnetCreated: (s, { data: d }) => {
      s.vnets[d.vnet] = { vnet: d.vnet, subscription: d.subscription, region: d.region, holder: d.holder, driver: d.driver, members: [], ports: [] };
    },
    VmCreated: (s, { data: d }) => joinVnet(s, d.vnet, `vm:${d.vm}`),
    ReplicaStarted: (s, { data: d }) => {
      const v = d.vnet !== undefined ? s.vnets[d.vnet] : undefined;
      if (v && d.port !== undefined && !v.ports.includes(d.port)) v.ports.push(d.port);
    },
    ComputeCreated: (s, { data: d }) => {
      s.byKey[computeKey(d.workspaceId, d.compute)] = newCompute(d, {
        vmSize: d.vmSize,
        minNodes: d.minNodes,
        maxNodes: d.maxNodes,
        idleSecondsBeforeScaledown: d.idleSecondsBeforeScaledown,
        memoryBytes: d.memoryBytes,
        ...(d.agentCount !== undefined ? { agentCount: d.agentCount } : {}),
        ...(d.region !== undefined ? { region: d.region } : {}),
        ...(d.vnet !== undefined ? { vnet: d.vnet } : {}),
      });
      joinVnet(s, d.vnet, computeKey(d.workspaceId, d.compute));
    },
    ComputeAttached: (s, { data: d }) => {
      // An attached VM is one machine that is always there: no nodes to scale, no queue.
      s.byKey[computeKey(d.workspaceId, d.compute)] = newCompute(d, {
        vmSize: 'attached',
        minNodes: 1,
        maxNodes: 1,
        idleSecondsBeforeScaledown: 0,
        memoryBytes: 0,
        attached: { vmId: d.vmId, vm: d.vm, username: d.username, vault: d.vault, secret: d.secret, fingerprint: d.fingerprint },
        ...(d.vnet !== undefined ? { vnet: d.vnet } : {}),
      });
      joinVnet(s, d.vnet, computeKey(d.workspaceId, d.compute));
    },
    // A deleted compute leaves the list (its name is free again); late node facts of it change nothing.
    ComputeDeleted: (s, { data: d }) => {
      delete s.byKey[computeKey(d.workspaceId, d.compute)];
    },
    RunSubmitted: (s, e) => {
      s.computeOfRun[e.data.runId] = computeKey(e.data.workspaceId, e.data.compute);
    },
    RunQueued: (s, e) => {
      const c = s.byKey[s.computeOfRun[e.data.runId] ?? ''];
      if (c && !c.queue.includes(e.data.runId)) c.queue.push(e.data.runId);
    },
    NodeProvisioningStarted: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      if (!c) return;
      c.nodes[e.data.node] = { node: e.data.node, state: 'preparing' };
      c.nodeCount++;
    },
    NodeProvisioned: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      if (!c || !n || !moveNode(c, n, { type: 'NodeProvisioned' })) return;
      Object.assign(n, { osDisk: e.data.osDisk, tempDisk: e.data.tempDisk, idleSince: e.meta.at });
    },
    NodeProvisioningFailed: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      if (c && n) moveNode(c, n, { type: 'NodeProvisioningFailed' });
    },
    NodeAssigned: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      if (!c || !n || !moveNode(c, n, { type: 'NodeAssigned' })) return;
      n.run = e.data.runId;
      delete n.idleSince;
      c.queue = c.queue.filter((r) => r !== e.data.runId);
    },
    NodeReleased: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      if (!c || !n || !moveNode(c, n, { type: 'NodeReleased' })) return;
      delete n.run;
      n.idleSince = e.meta.at;
    },
    ClusterIdleTimeoutElapsed: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      if (c && n) moveNode(c, n, { type: 'ClusterIdleTimeoutElapsed' });
    },
    NodeDeprovisioned: (s, e) => {
      const c = s.byKey[computeKey(e.data.workspaceId, e.data.compute)];
      const n = c?.nodes[e.data.node];
      // A deleted node leaves the cluster's list; its disks are gone (S4.6).
      if (c && n && moveNode(c, n, { type: 'NodeDeprovisioned' })) delete c.nodes[e.data.node];
    },
    RunCanceled: (s, e) => dequeue(s, e.data.runId),
    RunFailed: (s, e) => dequeue(s, e.data.runId),
  },
});
