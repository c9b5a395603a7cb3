import { nextWebserviceStatus, streamKindOf, type StoredEvent, type WebserviceEvent, type WebserviceStatus } from '@amlsim/core';
import type { SecretRegistry } from '@amlsim/platform';

export type InvariantViolation = { invariant: string; message: string; events: StoredEvent[] };

/** The facts that move a web service through its statechart (after WebserviceDeploymentRequested). */
const WEBSERVICE_FACTS = new Set<string>(['ServiceKeysGenerated', 'WebserviceHealthy', 'WebserviceRestored', 'WebserviceFailed', 'WebserviceUnschedulable', 'WebserviceUnhealthy', 'ServiceKeyRegenerated', 'WebserviceDeleted']);

/**
 * Global invariants, checked after every scenario (docs/architecture.md "Tests"). Each returns
 * the violations it found; none means it held.
 */
export type InvariantContext = {
  secrets: SecretRegistry;
  leftovers?: string[];
  /** Every password the scenario used (createVm, attachCompute — the wrong ones too). */
  passwords?: string[];
  /** The latest value of every secret in every key vault, the platform's own included (S6.2). */
  vaultSecrets?: () => Array<{ vault: string; secret: string; value: string }>;
  /** Node facts the node statechart refused, from the computes read model. */
  nodeAnomalies?: string[];
  /** How many scoring requests the gateway answered (each must have one App Insights record). */
  scoringRequests?: number;
  /**
   * The log position the gateway's count starts after: a continued session's gateway came up
   * there (its dead simulator's gateway answered the requests recorded before it, and took its
   * count with it). 0, or absent, when the gateway saw the whole session.
   */
  scoringRequestsAfter?: number;
};

export const INVARIANTS: ReadonlyArray<{
  name: string;
  check: (events: readonly StoredEvent[], ctx: InvariantContext) => InvariantViolation[];
}> = [
  {
    // No secret value (token, key, connection string, password) is ever written to an event:
    // neither one the platform registered nor anything shaped like a token or key (one it forgot).
    name: 'no-secret-in-log',
    check: (events, { secrets }) =>
      events.flatMap((e) => {
        const text = JSON.stringify(e);
        const kinds = [...new Set([...secrets.findIn(text), ...secretShapesIn(text).map((s) => s.kind)])];
        return kinds.length
          ? [{ invariant: 'no-secret-in-log', message: `event #${e.position} ${e.type} contains a ${kinds.join(', ')} value`, events: [e] }]
          : [];
      }),
  },
  {
    // S6.2: AML stores no password a user supplied — not in the workspace vault, not in its own.
    name: 'no-password-in-vault',
    check: (_events, { passwords, vaultSecrets }) => {
      const used = (passwords ?? []).filter((p) => p.length > 0);
      if (used.length === 0 || !vaultSecrets) return [];
      return vaultSecrets().flatMap(({ vault, secret, value }) =>
        used.some((p) => value.includes(p))
          ? [{ invariant: 'no-password-in-vault', message: `key vault '${vault}' secret '${secret}' holds a password the scenario used`, events: [] }]
          : [],
      );
    },
  },
  {
    // A refused command appends its CommandRejected and nothing else.
    name: 'rejection-changes-nothing',
    check: (events) => {
      const byCorrelation = new Map<string, StoredEvent[]>();
      for (const e of events) {
        const list = byCorrelation.get(e.meta.correlationId) ?? [];
        list.push(e);
        byCorrelation.set(e.meta.correlationId, list);
      }
      const out: InvariantViolation[] = [];
      for (const group of byCorrelation.values()) {
        const rejection = group.find((e) => e.type === 'CommandRejected');
        if (rejection && group.length > 1) {
          out.push({
            invariant: 'rejection-changes-nothing',
            message: `command ${String(rejection.data.command)} was rejected but also appended ${group
              .filter((e) => e !== rejection)
              .map((e) => e.type)
              .join(', ')}`,
            events: group,
          });
        }
      }
      return out;
    },
  },
  {
    // S1.3: per run, RunTokenIssued < ContainerStarted (managed) or ManagementCodeStarted (on a VM)
    // < MetricsWrittenBack < RunCompleted < RunTokenRevoked.
    name: 'run-lifecycle-order',
    check: (events) => {
      const ORDER = ['RunTokenIssued', 'ContainerStarted|ManagementCodeStarted', 'MetricsWrittenBack', 'RunCompleted', 'RunTokenRevoked'];
      const out: InvariantViolation[] = [];
      for (const [runId, runEvents] of byRun(events)) {
        const is = (type: string) => (e: StoredEvent) => type.split('|').includes(e.type);
        const firsts = ORDER.map((type) => runEvents.find(is(type)));
        const lasts = ORDER.map((type) => runEvents.findLast(is(type)));
        for (let i = 0; i < ORDER.length; i++) {
          for (let j = i + 1; j < ORDER.length; j++) {
            const earlier = lasts[i];
            const later = firsts[j];
            // MetricsWrittenBack may repeat: all batches come after the container started and before completion.
            if (earlier && later && earlier.position > later.position) {
              out.push({ invariant: 'run-lifecycle-order', message: `run ${runId}: ${ORDER[j]} (#${later.position}) came before ${ORDER[i]} (#${earlier.position})`, events: [earlier, later] });
            }
          }
        }
      }
      return out;
    },
  },
  {
    // S1.3: no control-plane call was accepted with a token outside its lifetime. A run may be
    // issued a second token (a resumed session replaces one whose value died with its simulator):
    // each call is checked against the token it was made with (meta.tokenId), else the token
    // current at its position; a token's lifetime ends at its expiry, its revocation or expiry
    // fact, or the RunTokenIssued that replaced it.
    name: 'no-call-outside-token-lifetime',
    check: (events) => {
      const CALLS = new Set(['RunStatusReported', 'MetricsWrittenBack', 'OutputUploaded', 'RunLogsUploaded', 'RunScriptEnded', 'ManagementStepCompleted']);
      const out: InvariantViolation[] = [];
      for (const [runId, runEvents] of byRun(events)) {
        const tokens = runEvents.filter((e) => e.type === 'RunTokenIssued');
        const currentAt = (position: number) => tokens.findLast((t) => t.position < position);
        // A revocation or expiry ends the token it names; one that names none, the token current then.
        const ends = runEvents
          .filter((e) => e.type === 'RunTokenRevoked' || e.type === 'RunTokenExpired')
          .map((e) => ({ at: e.position, token: typeof e.data.tokenId === 'string' ? tokens.find((t) => t.data.tokenId === e.data.tokenId) : currentAt(e.position) }));
        for (const call of runEvents.filter((e) => CALLS.has(e.type))) {
          const current = currentAt(call.position);
          const used = call.meta.tokenId !== undefined ? tokens.findLast((t) => t.data.tokenId === call.meta.tokenId && t.position < call.position) : current;
          const tooEarly = !used;
          const tooLate =
            used !== undefined &&
            (used !== current ||
              ends.some((end) => end.token === used && end.at < call.position) ||
              Date.parse(call.meta.at) > Date.parse(String(used.data.expiresAt)));
          if (tooEarly || tooLate) {
            out.push({ invariant: 'no-call-outside-token-lifetime', message: `run ${runId}: ${call.type} (#${call.position}) was accepted outside the run token's lifetime`, events: [call] });
          }
        }
      }
      return out;
    },
  },
  {
    // S4.6: every node fact fits the node's lifecycle (no scale-down under a run, no run on a leaving node).
    name: 'node-lifecycle',
    check: (_events, { nodeAnomalies }) =>
      (nodeAnomalies ?? []).map((a) => ({ invariant: 'node-lifecycle', message: `the node statechart refused: ${a}`, events: [] })),
  },
  {
    // S8.5: every fact of a web service fits its state in the web service statechart (no
    // replica going down on a service that never came up, no key change after it failed).
    name: 'webservice-lifecycle',
    check: (events) => {
      const status = new Map<string, WebserviceStatus>();
      const out: InvariantViolation[] = [];
      for (const e of events) {
        const serviceId = String(e.data.serviceId);
        if (e.type === 'WebserviceDeploymentRequested') status.set(serviceId, 'Transitioning');
        else if (WEBSERVICE_FACTS.has(e.type) && status.has(serviceId)) {
          const next = nextWebserviceStatus(status.get(serviceId)!, { type: e.type } as WebserviceEvent);
          if (next) status.set(serviceId, next);
          else out.push({ invariant: 'webservice-lifecycle', message: `the web service statechart refused ${e.type} on ${String(e.data.service)} while ${status.get(serviceId)}`, events: [e] });
        }
      }
      return out;
    },
  },
  {
    // S8.5: an image is in the registry before any deployment uses it; no replica starts before its image exists.
    name: 'image-before-deployment',
    check: (events) => {
      const pushed = new Map<string, number>();
      const deploymentImage = new Map<string, string>();
      const out: InvariantViolation[] = [];
      for (const e of events) {
        if (e.type === 'ImagePushed') pushed.set(String(e.data.imageId), e.position);
        if (e.type === 'WebserviceDeploymentRequested') {
          deploymentImage.set(String(e.data.serviceId), String(e.data.imageId));
          if (!pushed.has(String(e.data.imageId))) {
            out.push({ invariant: 'image-before-deployment', message: `service ${String(e.data.service)} was deployed from image ${String(e.data.imageId)} before it was pushed`, events: [e] });
          }
        }
        if (e.type === 'ReplicaStarted' && !pushed.has(deploymentImage.get(String(e.data.serviceId)) ?? '')) {
          out.push({ invariant: 'image-before-deployment', message: `a replica of ${String(e.data.service)} started before its image existed in the registry`, events: [e] });
        }
      }
      return out;
    },
  },
  {
    // S7.3: every scoring request the gateway answered has exactly one App Insights record.
    name: 'one-app-insights-record-per-request',
    check: (events, { scoringRequests, scoringRequestsAfter = 0 }) => {
      if (scoringRequests === undefined) return [];
      const records = events.filter((e) => e.type === 'ScoringRequestRecorded' && e.position > scoringRequestsAfter);
      const ids = new Set(records.map((e) => String(e.data.RequestId)));
      return records.length === scoringRequests && ids.size === records.length
        ? []
        : [{ invariant: 'one-app-insights-record-per-request', message: `the gateway answered ${scoringRequests} scoring requests${scoringRequestsAfter ? ` after position ${scoringRequestsAfter}` : ''}; App Insights holds ${records.length} records (${ids.size} distinct request ids)`, events: [] }];
    },
  },
  {
    // S1.3, one channel per run (docs/security.md): a fact a control-plane call reported came
    // in on the channel its run was bound to, while bound, with that run's own token — never
    // on another run's channel or with another run's token. Each run's token names its channel.
    name: 'run-channel',
    check: (events) => {
      const out: InvariantViolation[] = [];
      const bound = new Map<string, { channel: string; open: boolean }>();
      const tokenOf = new Map<string, { tokenId: string; channel: string }>();
      const fail = (message: string, e: StoredEvent) => out.push({ invariant: 'run-channel', message, events: [e] });
      for (const e of events) {
        const runId = typeof e.data.runId === 'string' ? e.data.runId : undefined;
        if (e.type === 'RunChannelOpened' && runId) bound.set(runId, { channel: String(e.data.channel), open: true });
        if (e.type === 'RunChannelClosed' && runId) {
          const b = bound.get(runId);
          if (b) b.open = false;
        }
        if (e.type === 'RunTokenIssued' && runId) {
          tokenOf.set(runId, { tokenId: String(e.data.tokenId), channel: String(e.data.channel) });
          const b = bound.get(runId);
          if (!b || b.channel !== e.data.channel) fail(`run ${runId}: its token was bound to channel ${String(e.data.channel)}, not the run's channel ${b?.channel ?? '(none opened)'}`, e);
        }
        const channel = e.meta.channel;
        if (channel === undefined) continue;
        const b = runId ? bound.get(runId) : undefined;
        const token = runId ? tokenOf.get(runId) : undefined;
        if (!runId || !b) fail(`${e.type} (#${e.position}) came in on channel ${channel}, which carries no run of its own`, e);
        else if (b.channel !== channel) fail(`run ${runId}: ${e.type} (#${e.position}) was accepted on channel ${channel}, another run's, not its own ${b.channel}`, e);
        else if (!b.open) fail(`run ${runId}: ${e.type} (#${e.position}) was accepted on channel ${channel} after it closed`, e);
        else if (!token || e.meta.tokenId !== token.tokenId) fail(`run ${runId}: ${e.type} (#${e.position}) was accepted with token ${String(e.meta.tokenId)}, not the run's own ${token?.tokenId ?? '(none issued)'}`, e);
      }
      return out;
    },
  },
  {
    // Docker hygiene: nothing of the session (containers, volumes, processes) outlives it.
    name: 'no-leftovers',
    check: (_events, { leftovers }) =>
      (leftovers ?? []).length ? [{ invariant: 'no-leftovers', message: `still there after the scenario: ${leftovers!.join(', ')}`, events: [] }] : [],
  },
];

const byRun = (events: readonly StoredEvent[]): Map<string, StoredEvent[]> => {
  const runs = new Map<string, StoredEvent[]>();
  for (const e of events) {
    if (streamKindOf(e.stream) !== 'run' || typeof e.data.runId !== 'string') continue;
    const list = runs.get(e.data.runId) ?? [];
    list.push(e);
    runs.set(e.data.runId, list);
  }
  return runs;
};

/** A JWT: three base64url segments, the first a JSON header (`{"` encodes as `eyJ`). */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g;
/**
 * Key material: a run of 64+ base64 or base64url characters (an Azure storage key is 88;
 * shorter keys are for the registry to catch). Runs that are hex only (digests, container
 * ids; fingerprints are `sha256:<hex>`), that lack a mix of upper case, lower case and digits
 * (words joined by dashes), or that are full of slashes (paths) are not key-shaped.
 */
const KEY_SHAPE = /[A-Za-z0-9+/_-]{64,}={0,2}/g;
const count = (run: string, chars: RegExp): number => run.match(chars)?.length ?? 0;
const looksRandom = (run: string): boolean =>
  !/^[0-9a-fA-F]+$/.test(run) &&
  // Random bytes give about 40% upper case, 40% lower case, 15% digits; a path or a name is mostly lower case.
  count(run, /[A-Z]/g) >= Math.max(3, run.length / 6) &&
  count(run, /[a-z]/g) >= 3 &&
  count(run, /[0-9]/g) >= 2 &&
  // ... and a symbol about once in 32 characters; a path has a slash every few.
  count(run, /[+/_-]/g) <= run.length / 8 + 2;

/**
 * Strings shaped like a secret in `text`, whether or not anyone registered them: what catches
 * a token or key that reached the log through a path the secret registry never saw.
 */
export const secretShapesIn = (text: string): Array<{ kind: 'JWT-shaped' | 'key-shaped'; value: string }> => {
  const jwts = [...text.matchAll(JWT_SHAPE)].map((m) => m[0]);
  const rest = jwts.reduce((t, jwt) => t.split(jwt).join(' '), text);
  // A key-shaped run is a base64 or a base64url run; each alphabet is split on the other's symbols.
  const keys = [...rest.matchAll(KEY_SHAPE)].flatMap((m) => {
    const runs = [...m[0].split(/[-_]+/), ...m[0].split(/[+/=]+/)].filter((run) => run.replace(/=+$/, '').length >= 64 && looksRandom(run));
    return runs.length ? [runs.reduce((a, b) => (b.length > a.length ? b : a))] : [];
  });
  return [...jwts.map((value) => ({ kind: 'JWT-shaped' as const, value })), ...[...new Set(keys)].map((value) => ({ kind: 'key-shaped' as const, value }))];
};

export const checkInvariants = (events: readonly StoredEvent[], ctx: InvariantContext): InvariantViolation[] =>
  INVARIANTS.flatMap((inv) => inv.check(events, ctx));
