import type { EventDataMap, EventType } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { foldImage, imageStatusOf } from '../image/image.machine';
import { foldRun, isTerminalStatus, runStatusOf } from '../run/run-fold';
import { STREAMS, streamKindOf } from '../streams/catalog';
import { nextWebserviceStatus, type WebserviceEvent, type WebserviceStatus } from '../webservice/webservice.machine';

/** A fact to append to one stream, at the version the stream had when it was decided. */
export type RecoveryFact = { [K in EventType]: { stream: string; expectedVersion: number; type: K; data: EventDataMap[K] } }[EventType];

/** What ending an abandoned session decides: the facts, and what they end. */
export type SessionRecovery = {
  session: string;
  facts: RecoveryFact[];
  runs: string[];
  nodes: string[];
  images: string[];
  services: string[];
};

const WEBSERVICE_FACTS = new Set(['ServiceKeysGenerated', 'WebserviceHealthy', 'WebserviceRestored', 'WebserviceFailed', 'WebserviceUnschedulable', 'WebserviceUnhealthy', 'ServiceKeyRegenerated', 'WebserviceDeleted']);

const RUN_ENDS = new Set(['RunCompleted', 'RunFailed', 'RunCanceled']);
/** The kinds of stream whose aggregates recovery may have to end: all it reads of a session. */
export const RECOVERED_KINDS: ReadonlySet<string> = new Set<string>(['run', 'compute', 'image', 'service']);
const IMAGE_ENDS = new Set(['ImageCreated', 'ImageCreationFailed', 'ImageCreationTimedOut']);

/**
 * A run with nothing left to end, told by its facts' types alone (no fold: most runs of a long
 * log are settled, and recovery must cost no more than a replay): it ended, its token died, its
 * node (if it had one) went back, its channel (if it had one) closed.
 */
const runSettled = (list: readonly StoredEvent[]): boolean => {
  const types = new Set(list.map((e) => e.type));
  const has = (t: string) => types.has(t);
  return (
    [...RUN_ENDS].some(has) &&
    (!has('RunTokenIssued') || has('RunTokenRevoked') || has('RunTokenExpired')) &&
    (!has('NodeAssigned') || has('NodeReleased')) &&
    (!has('RunChannelOpened') || has('RunChannelClosed'))
  );
};

/**
 * A session whose simulator is gone cannot finish what it started: its runs' containers, its
 * nodes' disks, its image builds and its replicas went with it (or are swept at the next
 * start). Left alone, the log would say "Running" forever. This decides, from the session's
 * events alone (pure; docs/security.md and README "Crash recovery"), the facts that end each
 * unfinished aggregate the way its statechart allows, with `reason`:
 *
 * - a run not yet ended: `RunFailed` (`RunCanceled` if a cancel had been asked for, and the end
 *   it had decided if it was finishing); its token revoked (the signing key died with the
 *   simulator, so it could not verify anyway), its node released, its channel closed;
 * - a node provisioned and never deprovisioned: `NodeDeprovisioned` (one mid-provisioning:
 *   `NodeProvisioningFailed` first);
 * - an image still building: `ImageCreationFailed`;
 * - a web service deploying: `WebserviceFailed`; one serving: `WebserviceUnhealthy` (its replicas
 *   are gone; a new deployment brings it back).
 *
 * Deciding twice on the log it produced decides nothing: recovery is idempotent.
 */
export function decideSessionRecovery(events: readonly StoredEvent[], session: string, reason: string): SessionRecovery {
  // Only the streams of aggregates that can be left unfinished, and the session's own stream.
  const kinds = new Map<string, boolean>();
  const wanted = (stream: string) => {
    let w = kinds.get(stream);
    if (w === undefined) kinds.set(stream, (w = RECOVERED_KINDS.has(streamKindOf(stream) ?? '') || stream === STREAMS.session(session)));
    return w;
  };
  const streams = new Map<string, StoredEvent[]>();
  for (const e of events) {
    if (e.meta.session !== session || !wanted(e.stream)) continue;
    const list = streams.get(e.stream);
    if (list) list.push(e);
    else streams.set(e.stream, [e]);
  }
  const out: SessionRecovery = { session, facts: [], runs: [], nodes: [], images: [], services: [] };
  const versionOf = (stream: string) => streams.get(stream)?.at(-1)?.version ?? 0;
  // Several facts on one stream: each after the previous.
  const next = new Map<string, number>();
  const push = <K extends EventType>(stream: string, type: K, data: EventDataMap[K]) => {
    const expectedVersion = next.get(stream) ?? versionOf(stream);
    next.set(stream, expectedVersion + 1);
    out.facts.push({ stream, expectedVersion, type, data } as RecoveryFact);
  };

  // Runs first: a run gives its node back (NodeReleased) before recovery takes the node away
  // (NodeDeprovisioned), the order the node statechart allows (core/src/compute/node.machine.ts).
  const ordered = [...streams].sort(([a], [b]) => Number(streamKindOf(b) === 'run') - Number(streamKindOf(a) === 'run'));
  for (const [stream, list] of ordered) {
    switch (streamKindOf(stream)) {
      case 'run': {
        if (runSettled(list)) break;
        const folded = foldRun(list);
        if (!folded) break;
        const run = folded.snapshot.context;
        const ref = { runId: run.runId, workspaceId: run.workspaceId, workspace: run.workspace };
        const before = out.facts.length;
        const status = runStatusOf(folded.snapshot);
        if (!isTerminalStatus(status)) {
          // What the run had already decided stands: a cancel asked for before the crash ends it
          // Canceled (the user asked; the crash only stopped it being carried out), and one whose
          // script had ended and been written back while its end was being recorded ends as
          // that (finishing, outcome decided). Anything else could not finish: Failed.
          const decided = status === 'CancelRequested' ? 'Canceled' : folded.snapshot.value === 'finishing' ? run.outcome : undefined;
          if (decided === 'Canceled') push(stream, 'RunCanceled', { ...ref, reason: run.reason ? `${run.reason}; ${reason}` : reason });
          else if (decided === 'Completed') push(stream, 'RunCompleted', ref);
          else push(stream, 'RunFailed', { ...ref, reason: decided === 'Failed' && run.reason ? run.reason : reason });
        }
        if (run.tokenId && !run.tokenRevoked && !run.tokenExpired) push(stream, 'RunTokenRevoked', { ...ref, tokenId: run.tokenId });
        if (run.node && !run.nodeReleased) push(stream, 'NodeReleased', { ...ref, computeId: run.computeId, compute: run.compute, node: run.node, runId: run.runId });
        const opened = list.findLast((e) => e.type === 'RunChannelOpened');
        const closed = list.some((e) => e.type === 'RunChannelClosed' && e.data.channel === opened?.data.channel);
        if (opened && !closed) push(stream, 'RunChannelClosed', { ...ref, channel: String(opened.data.channel), kind: opened.data.kind as EventDataMap['RunChannelClosed']['kind'] });
        if (out.facts.length > before) out.runs.push(run.runId);
        break;
      }
      case 'compute': {
        // A node's last fact says where it is: provisioning, provisioned (idle or busy), or gone.
        const nodes = new Map<string, StoredEvent>();
        for (const e of list) if (typeof e.data.node === 'string' && e.type.startsWith('Node') && e.type !== 'NodeAssigned' && e.type !== 'NodeReleased') nodes.set(e.data.node, e);
        for (const [node, last] of nodes) {
          const d = last.data as { workspaceId: string; workspace: string; computeId: string; compute: string };
          const ref = { workspaceId: d.workspaceId, workspace: d.workspace, computeId: d.computeId, compute: d.compute, node };
          if (last.type === 'NodeDeprovisioned') continue;
          if (last.type === 'NodeProvisioningStarted') push(stream, 'NodeProvisioningFailed', { ...ref, reason });
          push(stream, 'NodeDeprovisioned', { ...ref, osDiskDeleted: true, reason });
          out.nodes.push(`${d.compute}/${node}`);
        }
        break;
      }
      case 'image': {
        if (list.some((e) => IMAGE_ENDS.has(e.type))) break;
        const image = foldImage(list);
        if (!image || imageStatusOf(image) !== 'Running') break;
        const { workspaceId, workspace, imageId, image: name } = image.context;
        push(stream, 'ImageCreationFailed', { workspaceId, workspace, imageId, image: name, reason });
        out.images.push(name);
        break;
      }
      case 'service': {
        const requested = list.find((e) => e.type === 'WebserviceDeploymentRequested');
        if (!requested) break;
        let status: WebserviceStatus = 'Transitioning';
        for (const e of list) if (WEBSERVICE_FACTS.has(e.type)) status = nextWebserviceStatus(status, { type: e.type } as WebserviceEvent) ?? status;
        const d = requested.data as { workspaceId: string; workspace: string; serviceId: string; service: string };
        const ref = { workspaceId: d.workspaceId, workspace: d.workspace, serviceId: d.serviceId, service: d.service };
        if (status === 'Transitioning') push(stream, 'WebserviceFailed', { ...ref, reason });
        else if (status === 'Healthy') push(stream, 'WebserviceUnhealthy', { ...ref, replica: 'all', reason });
        else break;
        out.services.push(d.service);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** The fact that tells a session was ended by recovery, and what it ended (on the session's own stream). */
export const sessionRecoveredFact = (r: SessionRecovery, by: string, reason: string, expectedVersion: number): RecoveryFact => ({
  stream: STREAMS.session(r.session),
  expectedVersion,
  type: 'SessionRecovered',
  data: { session: r.session, by, reason, runs: r.runs, nodes: r.nodes, images: r.images, services: r.services },
});
