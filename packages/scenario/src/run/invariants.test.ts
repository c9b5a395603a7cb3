import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants, INVARIANTS, secretShapesIn, type InvariantContext } from './invariants';

/**
 * Every clause of every global invariant gets one event list that breaks it and one lawful
 * list next to it: a checker that never fires, or that compares against the wrong event,
 * fails here. A new invariant without rows fails the first test below.
 */

let nextPosition = 0;
type EventOptions = { stream?: string; at?: string; correlationId?: string; principal?: string };
const ev = (type: string, data: Record<string, unknown> = {}, options: EventOptions = {}): StoredEvent => {
  const position = ++nextPosition;
  return {
    position,
    stream: options.stream ?? 's',
    version: position,
    type,
    data,
    meta: {
      at: options.at ?? '2025-01-01T09:00:00.000Z',
      correlationId: options.correlationId ?? `c${position}`,
      causationId: 'c',
      session: 's',
      ...(options.principal ? { principal: options.principal } : {}),
    },
  } as StoredEvent;
};
/** Positions follow list order, whatever order the builders were called in. */
const inOrder = (events: StoredEvent[]): StoredEvent[] => events.map((e, i) => ({ ...e, position: i + 1, version: i + 1 }));
/** An event of run `runId`'s stream. */
const run = (type: string, data: Record<string, unknown> = {}, options: EventOptions & { runId?: string } = {}): StoredEvent => {
  const runId = options.runId ?? 'r1';
  return ev(type, { runId, workspace: 'ws1', ...data }, { stream: `run-${runId}`, ...options });
};
const issued = (runId = 'r1', expiresAt = '2025-01-01T10:00:00.000Z') => run('RunTokenIssued', { tokenId: 'rtok_1', fingerprint: 'sha256:0123456789abcdef', expiresAt }, { runId });
/** Runs r1 and r2, each with its channel opened and its token bound to it. */
const bindings = (): StoredEvent[] =>
  ['r1', 'r2'].flatMap((runId) => [
    run('RunChannelOpened', { channel: `ch_${runId}`, kind: 'container' }, { runId }),
    run('RunTokenIssued', { tokenId: `rtok_${runId}`, channel: `ch_${runId}`, fingerprint: 'sha256:0123456789abcdef', expiresAt: '2025-01-01T10:00:00.000Z' }, { runId }),
  ]);
/** A fact a control-plane call reported: it came in on `channel` with token `tokenId`. */
const via = (e: StoredEvent, channel: string, tokenId: string): StoredEvent => ({ ...e, meta: { ...e.meta, channel, tokenId } });
const svc = (type: string, data: Record<string, unknown> = {}) => ev(type, { serviceId: 'svc_1', service: 'svc', ...data }, { stream: 'service-svc_1' });

const registryWith = (value: string, kind: string): SecretRegistry => {
  const secrets = new SecretRegistry();
  secrets.add(value, kind);
  return secrets;
};

/** JWT-shaped, base64url like ours; never registered anywhere. */
const UNREGISTERED_JWT = [
  Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'k1' })).toString('base64url'),
  Buffer.from(JSON.stringify({ aud: 'https://ml.azure.com/', run: 'r1', exp: 1735725600 })).toString('base64url'),
  randomBytes(64).toString('base64url'),
].join('.');
/** An Azure storage account key: 64 random bytes in base64, 88 characters. */
const STORAGE_KEY = 'q3Zx1m9Ab0Yf5KpL2sWc8Rt4Nv7Hd6Ju+Ge3Bo1Xi9Ma0Qy5Zk2Cl8Pw4Sn7Ef6Tr/Dh3Vu1Lb9Og0Iy5Jx2Wa8Km4Fc7Yp6Rs3Nt1Gq9Hz0ME==';
const BASE64URL_KEY = 'p9Kq2Lm4Nz8Xw1Vb3Cd5Ef7Gh0Jk6Rt9Ys2Ua4Ob1Ic3Pd5Qe7Sf0Tg8Vh6Wj9Xk2Yl4Zm1An3Bo5Cp7Dq0Er8Fs6Gt9Hu-Iv_Jw';
/** What the log legitimately holds that is long, random-looking or dotted. */
const LAWFUL_LOOKALIKES = {
  fingerprint: 'sha256:0123456789abcdef',
  digest: `sha256:${'0123456789abcdef'.repeat(4)}`,
  containerId: 'f3a9c1d2e4b5a6978877665544332211ffeeddccbbaa99887766554433221100',
  path: '/tmp/amlsim-s_Vx3kLm9Q/workspaces/Ws1Store2025/blobs/ExperimentRun/dcid/Run7Outputs/Model42/Final',
  label: 'dev.amlsim.session.s_abcdefgh1234.workspace.ws1',
  words: 'workspace-storage-connection-string-for-the-default-datastore-of-ws1',
  sshPublicKeyFingerprint: 'SHA256:Jq3b5T9mC2xW8zK1vN4rL6pA0sD7fG',
};

type Expectation = { events?: StoredEvent[]; ctx?: Partial<InvariantContext> };
type Row = { clause: string; breaking: Expectation & { message: string | RegExp }; lawful: Expectation };

const ORDER = ['RunTokenIssued', 'ContainerStarted', 'MetricsWrittenBack', 'RunCompleted', 'RunTokenRevoked'];
/** Every pair of the run lifecycle order, once with the container of managed compute and once with the VM's management code. */
const lifecycleOrderRows = (): Row[] =>
  ['ContainerStarted', 'ManagementCodeStarted'].flatMap((started) => {
    const order = ORDER.map((t) => (t === 'ContainerStarted' ? started : t));
    const name = (t: string) => (t === started ? 'ContainerStarted|ManagementCodeStarted' : t);
    const life = (types: string[]) => inOrder(types.map((t) => run(t, t === 'RunTokenIssued' ? { expiresAt: '2025-01-01T10:00:00.000Z' } : {})));
    return order.flatMap((earlier, i) =>
      order.slice(i + 1).map((later) => {
        const swapped = order.map((t) => (t === earlier ? later : t === later ? earlier : t));
        return {
          clause: `${name(earlier)} before ${name(later)} (with ${started})`,
          breaking: { events: life(swapped), message: `run r1: ${name(later)} (#${swapped.indexOf(later) + 1}) came before ${name(earlier)} (#${swapped.indexOf(earlier) + 1})` },
          lawful: { events: life(order) },
        };
      }),
    );
  });

const CALLS = ['RunStatusReported', 'MetricsWrittenBack', 'OutputUploaded', 'RunLogsUploaded', 'RunScriptEnded', 'ManagementStepCompleted'];

const TABLE: Record<string, Row[]> = {
  'no-secret-in-log': [
    {
      clause: 'a registered secret in an event',
      breaking: { events: [run('RunTokenIssued', { token: 'eyJsecret-run-token-value' })], ctx: { secrets: registryWith('eyJsecret-run-token-value', 'run token') }, message: 'RunTokenIssued contains a run token value' },
      lawful: { events: [run('RunTokenIssued', { fingerprint: 'sha256:0123456789abcdef' })], ctx: { secrets: registryWith('eyJsecret-run-token-value', 'run token') } },
    },
    {
      clause: 'a registered secret in the envelope, not only the data',
      breaking: { events: [ev('SignedIn', {}, { principal: 'p@ss-Word-1234' })], ctx: { secrets: registryWith('p@ss-Word-1234', 'password') }, message: 'SignedIn contains a password value' },
      lawful: { events: [ev('SignedIn', {}, { principal: 'alice' })], ctx: { secrets: registryWith('p@ss-Word-1234', 'password') } },
    },
    {
      clause: 'every kind found is named (a registered token that is also JWT-shaped)',
      breaking: { events: [run('RunLogsUploaded', { tail: UNREGISTERED_JWT })], ctx: { secrets: registryWith(UNREGISTERED_JWT, 'run token') }, message: 'RunLogsUploaded contains a run token, JWT-shaped value' },
      lawful: { events: [run('RunLogsUploaded', { tail: '[redacted run token]' })], ctx: { secrets: registryWith(UNREGISTERED_JWT, 'run token') } },
    },
    {
      clause: 'an unregistered JWT-shaped string',
      breaking: { events: [run('RunLogsUploaded', { tail: `token=${UNREGISTERED_JWT}` })], message: 'RunLogsUploaded contains a JWT-shaped value' },
      lawful: { events: [run('RunLogsUploaded', { tail: `${LAWFUL_LOOKALIKES.label} ${LAWFUL_LOOKALIKES.fingerprint}` })] },
    },
    {
      clause: 'an unregistered key-shaped base64 string (a raw storage key)',
      breaking: { events: [ev('StorageKeyRegenerated', { account: 'ws1store', key: 'key1', value: STORAGE_KEY })], message: 'StorageKeyRegenerated contains a key-shaped value' },
      lawful: { events: [ev('StorageKeyRegenerated', { account: 'ws1store', key: 'key1', fingerprint: LAWFUL_LOOKALIKES.fingerprint })] },
    },
    {
      clause: 'an unregistered key-shaped base64url string',
      breaking: { events: [ev('ServiceKeysGenerated', { primary: BASE64URL_KEY })], message: 'ServiceKeysGenerated contains a key-shaped value' },
      lawful: { events: [ev('ImagePushed', { digest: LAWFUL_LOOKALIKES.digest, container: LAWFUL_LOOKALIKES.containerId, path: LAWFUL_LOOKALIKES.path, note: LAWFUL_LOOKALIKES.words, ssh: LAWFUL_LOOKALIKES.sshPublicKeyFingerprint })] },
    },
  ],
  'no-password-in-vault': [
    {
      clause: 'a password the scenario used, anywhere in a vault secret',
      breaking: {
        ctx: { passwords: ['wrong-one', 'Correct-Horse-42'], vaultSecrets: () => [{ vault: 'amlplatformabc', secret: 'ws1-vm1-ssh-private-key', value: 'user=azureuser;password=Correct-Horse-42' }] },
        message: "key vault 'amlplatformabc' secret 'ws1-vm1-ssh-private-key' holds a password the scenario used",
      },
      lawful: { ctx: { passwords: ['Correct-Horse-42'], vaultSecrets: () => [{ vault: 'amlplatformabc', secret: 'ws1-vm1-ssh-private-key', value: '-----BEGIN PRIVATE KEY-----' }] } },
    },
    {
      clause: 'without a view of the vaults there is nothing to check',
      breaking: { ctx: { passwords: ['Correct-Horse-42'], vaultSecrets: () => [{ vault: 'v', secret: 's', value: 'Correct-Horse-42' }] }, message: "key vault 'v' secret 's'" },
      lawful: { ctx: { passwords: ['Correct-Horse-42'] } },
    },
    {
      clause: 'an empty password matches nothing',
      breaking: { ctx: { passwords: ['', 'x'], vaultSecrets: () => [{ vault: 'v', secret: 's', value: 'abc x' }] }, message: "key vault 'v' secret 's'" },
      lawful: { ctx: { passwords: [''], vaultSecrets: () => [{ vault: 'v', secret: 's', value: 'anything' }] } },
    },
  ],
  'rejection-changes-nothing': [
    {
      clause: 'a rejected command appends nothing besides its CommandRejected',
      breaking: {
        events: [
          ev('CommandRejected', { command: 'CreateWorkspace', code: 'Conflict' }, { correlationId: 'k1' }),
          ev('WorkspaceCreated', {}, { correlationId: 'k1' }),
          ev('WorkspaceProvisioned', {}, { correlationId: 'k1' }),
        ],
        message: 'command CreateWorkspace was rejected but also appended WorkspaceCreated, WorkspaceProvisioned',
      },
      lawful: {
        events: [
          ev('CommandRejected', { command: 'CreateWorkspace', code: 'Conflict' }, { correlationId: 'k1' }),
          ev('WorkspaceCreated', {}, { correlationId: 'k2' }),
          ev('WorkspaceProvisioned', {}, { correlationId: 'k2' }),
        ],
      },
    },
  ],
  'run-lifecycle-order': [
    ...lifecycleOrderRows(),
    {
      clause: 'every metrics batch before the run completed (the last batch, not only the first)',
      breaking: {
        events: inOrder([issued(), run('ContainerStarted'), run('MetricsWrittenBack'), run('RunCompleted'), run('MetricsWrittenBack'), run('RunTokenRevoked')]),
        message: 'run r1: RunCompleted (#4) came before MetricsWrittenBack (#5)',
      },
      lawful: { events: inOrder([issued(), run('ContainerStarted'), run('MetricsWrittenBack'), run('MetricsWrittenBack'), run('RunCompleted'), run('RunTokenRevoked')]) },
    },
    {
      clause: 'every metrics batch after the container started (the first batch, not only the last)',
      breaking: {
        events: inOrder([issued(), run('MetricsWrittenBack'), run('ContainerStarted'), run('MetricsWrittenBack'), run('RunCompleted'), run('RunTokenRevoked')]),
        message: 'run r1: MetricsWrittenBack (#2) came before ContainerStarted|ManagementCodeStarted (#3)',
      },
      lawful: { events: inOrder([issued(), run('ContainerStarted'), run('MetricsWrittenBack'), run('RunCompleted'), run('MetricsWrittenBack', {}, { runId: 'r2' }), run('RunTokenRevoked')]) },
    },
    {
      clause: "per run: another run's events do not order this one's (only run streams count)",
      breaking: {
        events: inOrder([run('ContainerStarted', {}, { runId: 'r2' }), issued('r2'), issued('r1'), run('ContainerStarted')]),
        message: 'run r2: ContainerStarted|ManagementCodeStarted (#1) came before RunTokenIssued (#2)',
      },
      lawful: { events: inOrder([ev('ContainerStarted', { runId: 'r1' }, { stream: 'compute-cpu' }), issued('r2'), run('ContainerStarted', {}, { runId: 'r2' }), issued('r1'), run('ContainerStarted')]) },
    },
  ],
  'no-call-outside-token-lifetime': [
    ...CALLS.map((call) => ({
      clause: `${call} after the token was revoked`,
      breaking: { events: inOrder([issued(), run('RunTokenRevoked'), run(call)]), message: `run r1: ${call} (#3) was accepted outside the run token's lifetime` },
      lawful: { events: inOrder([issued(), run(call), run('RunTokenRevoked')]) },
    })),
    {
      clause: 'a call before the token was issued',
      breaking: { events: inOrder([run('RunStatusReported'), issued()]), message: 'run r1: RunStatusReported (#1) was accepted outside' },
      lawful: { events: inOrder([issued(), run('RunStatusReported')]) },
    },
    {
      clause: 'a call of a run that never had a token',
      breaking: { events: inOrder([run('MetricsWrittenBack')]), message: 'run r1: MetricsWrittenBack (#1) was accepted outside' },
      lawful: { events: inOrder([run('RunSubmitted'), run('RunFailed')]) },
    },
    {
      clause: 'a call after the token expired (RunTokenExpired)',
      breaking: { events: inOrder([issued(), run('RunTokenExpired'), run('MetricsWrittenBack')]), message: 'run r1: MetricsWrittenBack (#3) was accepted outside' },
      lawful: { events: inOrder([issued(), run('MetricsWrittenBack'), run('RunTokenExpired'), run('RunCallRefused')]) },
    },
    {
      clause: 'a call later than the expiry the token carried, even before RunTokenExpired is recorded',
      breaking: { events: inOrder([issued('r1', '2025-01-01T10:00:00.000Z'), run('MetricsWrittenBack', {}, { at: '2025-01-01T10:00:00.001Z' })]), message: 'run r1: MetricsWrittenBack (#2) was accepted outside' },
      lawful: { events: inOrder([issued('r1', '2025-01-01T10:00:00.000Z'), run('MetricsWrittenBack', {}, { at: '2025-01-01T10:00:00.000Z' })]) },
    },
    {
      clause: "per run: another run's token does not cover this run's calls",
      breaking: { events: inOrder([issued('r2'), run('MetricsWrittenBack')]), message: 'run r1: MetricsWrittenBack (#2) was accepted outside' },
      lawful: { events: inOrder([issued('r2'), issued('r1'), run('RunTokenRevoked', {}, { runId: 'r2' }), run('MetricsWrittenBack')]) },
    },
    {
      clause: 'a run issued a second token (driven on after a restart): a call is checked against the expiry of the token it was made with, not the first',
      breaking: {
        events: inOrder([
          issued('r1', '2025-01-01T12:00:00.000Z'),
          run('RunResumed', { replacedToken: 'rtok_1' }),
          run('RunTokenIssued', { tokenId: 'rtok_2', fingerprint: 'sha256:0123456789abcdef', expiresAt: '2025-01-01T10:00:00.000Z' }),
          via(run('MetricsWrittenBack', {}, { at: '2025-01-01T11:00:00.000Z' }), 'ch_r1', 'rtok_2'),
        ]),
        message: 'run r1: MetricsWrittenBack (#4) was accepted outside',
      },
      lawful: {
        events: inOrder([
          issued('r1', '2025-01-01T10:00:00.000Z'),
          run('RunResumed', { replacedToken: 'rtok_1' }),
          run('RunTokenIssued', { tokenId: 'rtok_2', fingerprint: 'sha256:0123456789abcdef', expiresAt: '2025-01-01T12:00:00.000Z' }),
          via(run('MetricsWrittenBack', {}, { at: '2025-01-01T11:00:00.000Z' }), 'ch_r1', 'rtok_2'),
          run('MetricsWrittenBack', { batch: 2 }, { at: '2025-01-01T11:30:00.000Z' }),
        ]),
      },
    },
    {
      clause: 'a call made with a token a later RunTokenIssued replaced',
      breaking: {
        events: inOrder([issued(), run('RunTokenIssued', { tokenId: 'rtok_2', fingerprint: 'sha256:0123456789abcdef', expiresAt: '2025-01-01T10:00:00.000Z' }), via(run('MetricsWrittenBack'), 'ch_r1', 'rtok_1')]),
        message: 'run r1: MetricsWrittenBack (#3) was accepted outside',
      },
      lawful: {
        events: inOrder([issued(), via(run('MetricsWrittenBack'), 'ch_r1', 'rtok_1'), run('RunTokenIssued', { tokenId: 'rtok_2', fingerprint: 'sha256:0123456789abcdef', expiresAt: '2025-01-01T10:00:00.000Z' }), via(run('MetricsWrittenBack'), 'ch_r1', 'rtok_2')]),
      },
    },
  ],
  'node-lifecycle': [
    {
      clause: 'a node fact the node statechart refused',
      breaking: { ctx: { nodeAnomalies: ['cpu: NodeAssigned on node-1 while leaving'] }, message: 'the node statechart refused: cpu: NodeAssigned on node-1 while leaving' },
      lawful: { ctx: { nodeAnomalies: [] } },
    },
  ],
  'webservice-lifecycle': [
    {
      clause: 'a service fact its state does not allow',
      breaking: { events: [svc('WebserviceDeploymentRequested'), svc('WebserviceUnhealthy')], message: 'the web service statechart refused WebserviceUnhealthy on svc while Transitioning' },
      lawful: { events: [svc('WebserviceDeploymentRequested'), svc('WebserviceHealthy'), svc('WebserviceUnhealthy'), svc('WebserviceDeleted')] },
    },
    {
      clause: 'the state follows every fact (no key change after the service failed)',
      breaking: { events: [svc('WebserviceDeploymentRequested'), svc('WebserviceFailed'), svc('ServiceKeyRegenerated')], message: 'the web service statechart refused ServiceKeyRegenerated on svc while Failed' },
      lawful: { events: [svc('WebserviceDeploymentRequested'), svc('ServiceKeysGenerated'), svc('WebserviceHealthy'), svc('ServiceKeyRegenerated'), svc('WebserviceDeleted')] },
    },
    {
      clause: 'a deployment starts the service over (only facts after a WebserviceDeploymentRequested count)',
      breaking: { events: [svc('WebserviceDeploymentRequested'), svc('WebserviceHealthy'), svc('WebserviceDeleted'), svc('WebserviceHealthy')], message: 'refused WebserviceHealthy on svc while' },
      lawful: { events: [svc('WebserviceHealthy'), svc('WebserviceDeploymentRequested'), svc('WebserviceHealthy'), svc('WebserviceDeleted'), svc('WebserviceDeploymentRequested'), svc('WebserviceHealthy')] },
    },
  ],
  'image-before-deployment': [
    {
      clause: 'a deployment from an image that was never pushed',
      breaking: { events: [ev('ImagePushed', { imageId: 'img2' }), svc('WebserviceDeploymentRequested', { imageId: 'img1' })], message: 'service svc was deployed from image img1 before it was pushed' },
      lawful: { events: [ev('ImagePushed', { imageId: 'img1' }), svc('WebserviceDeploymentRequested', { imageId: 'img1' })] },
    },
    {
      clause: 'a replica whose image is not in the registry',
      breaking: { events: [ev('ImagePushed', { imageId: 'img1' }), svc('ReplicaStarted')], message: 'a replica of svc started before its image existed in the registry' },
      lawful: { events: [ev('ImagePushed', { imageId: 'img1' }), svc('WebserviceDeploymentRequested', { imageId: 'img1' }), svc('ReplicaStarted')] },
    },
  ],
  'one-app-insights-record-per-request': [
    {
      clause: 'fewer records than answered requests',
      breaking: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' })], ctx: { scoringRequests: 2 }, message: 'the gateway answered 2 scoring requests; App Insights holds 1 records (1 distinct request ids)' },
      lawful: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' }), ev('ScoringRequestRecorded', { RequestId: 'b' })], ctx: { scoringRequests: 2 } },
    },
    {
      clause: 'more records than answered requests',
      breaking: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' }), ev('ScoringRequestRecorded', { RequestId: 'b' })], ctx: { scoringRequests: 1 }, message: 'App Insights holds 2 records' },
      lawful: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' })], ctx: { scoringRequests: 1 } },
    },
    {
      clause: 'one record per request: request ids are distinct',
      breaking: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' }), ev('ScoringRequestRecorded', { RequestId: 'a' })], ctx: { scoringRequests: 2 }, message: 'holds 2 records (1 distinct request ids)' },
      lawful: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' }), ev('ScoringRequestRecorded', { RequestId: 'b' }), ev('ScoringRequestReceived', { RequestId: 'a' })], ctx: { scoringRequests: 2 } },
    },
    {
      // A continued session (packages/scenario/src/run/run-scenario.ts continueScenario): its
      // gateway counts from where it came up; the dead simulator's gateway answered the rest.
      clause: "a continued session's gateway is held to the records after it came up",
      breaking: (() => {
        const before = ev('ScoringRequestRecorded', { RequestId: 'a' });
        return { events: [before, ev('ScoringRequestRecorded', { RequestId: 'b' })], ctx: { scoringRequests: 2, scoringRequestsAfter: before.position }, message: `answered 2 scoring requests after position ${before.position}; App Insights holds 1 records` };
      })(),
      lawful: (() => {
        const before = ev('ScoringRequestRecorded', { RequestId: 'a' });
        return { events: [before, ev('ScoringRequestRecorded', { RequestId: 'b' })], ctx: { scoringRequests: 1, scoringRequestsAfter: before.position } };
      })(),
    },
    {
      clause: 'no records and no requests when the gateway never started',
      breaking: { events: [], ctx: { scoringRequests: 1 }, message: 'the gateway answered 1 scoring requests' },
      lawful: { events: [ev('ScoringRequestRecorded', { RequestId: 'a' })], ctx: {} },
    },
  ],
  'run-channel': [
    {
      clause: "a call's fact accepted on another run's channel",
      breaking: { events: inOrder([...bindings(), via(run('MetricsWrittenBack', {}, { runId: 'r1' }), 'ch_r2', 'rtok_r1')]), message: "run r1: MetricsWrittenBack (#5) was accepted on channel ch_r2, another run's, not its own ch_r1" },
      lawful: { events: inOrder([...bindings(), via(run('MetricsWrittenBack', {}, { runId: 'r1' }), 'ch_r1', 'rtok_r1')]) },
    },
    {
      clause: "a call's fact accepted with another run's token",
      breaking: { events: inOrder([...bindings(), via(run('RunStatusReported', {}, { runId: 'r2' }), 'ch_r2', 'rtok_r1')]), message: 'was accepted with token rtok_r1, not the run\'s own rtok_r2' },
      lawful: { events: inOrder([...bindings(), via(run('RunStatusReported', {}, { runId: 'r2' }), 'ch_r2', 'rtok_r2')]) },
    },
    {
      clause: "a call's fact accepted after the run's channel closed",
      breaking: { events: inOrder([...bindings(), run('RunChannelClosed', { channel: 'ch_r1' }), via(run('RunLogsUploaded'), 'ch_r1', 'rtok_r1')]), message: 'was accepted on channel ch_r1 after it closed' },
      lawful: { events: inOrder([...bindings(), via(run('RunLogsUploaded'), 'ch_r1', 'rtok_r1'), run('RunChannelClosed', { channel: 'ch_r1' })]) },
    },
    {
      clause: 'a fact on a channel for a run that has none',
      breaking: { events: inOrder([via(run('RunScriptEnded', {}, { runId: 'r9' }), 'ch_r1', 'rtok_r1')]), message: 'came in on channel ch_r1, which carries no run of its own' },
      lawful: { events: inOrder([run('RunScriptEnded', {}, { runId: 'r9' })]) },
    },
    {
      clause: "a token bound to a channel that is not its run's",
      breaking: { events: inOrder([run('RunChannelOpened', { channel: 'ch_r1', kind: 'container' }), run('RunTokenIssued', { tokenId: 'rtok_r1', channel: 'ch_other' })]), message: 'its token was bound to channel ch_other, not the run\'s channel ch_r1' },
      lawful: { events: inOrder(bindings().slice(0, 2)) },
    },
  ],
  'no-leftovers': [
    {
      clause: 'anything of the session still there',
      breaking: { ctx: { leftovers: ['container abc', 'process 123'] }, message: 'still there after the scenario: container abc, process 123' },
      lawful: { ctx: { leftovers: [] } },
    },
  ],
};

/** Invariants over the context alone (vault contents, node anomalies, counts, leftovers): their violations name no event. */
const CONTEXT_ONLY = new Set(['no-password-in-vault', 'node-lifecycle', 'one-app-insights-record-per-request', 'no-leftovers']);

const contextOf = (ctx: Partial<InvariantContext> = {}): InvariantContext => ({ secrets: new SecretRegistry(), ...ctx });
const checkOne = (name: string, { events = [], ctx }: Expectation) => INVARIANTS.find((i) => i.name === name)!.check(events, contextOf(ctx));

describe('global invariants: every clause fires on a breaking list and holds on a lawful one', () => {
  it('every invariant has rows, and every row names an invariant', () => {
    expect(INVARIANTS.map((i) => [i.name, (TABLE[i.name] ?? []).length > 0])).toEqual(INVARIANTS.map((i) => [i.name, true]));
    expect(Object.keys(TABLE).filter((name) => !INVARIANTS.some((i) => i.name === name))).toEqual([]);
  });

  const rows = Object.entries(TABLE).flatMap(([name, list]) => list.map((row) => [name, row.clause, row] as const));

  it.each(rows)('%s — %s: fires on the breaking list', (name, _clause, row) => {
    const found = checkOne(name, row.breaking);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((v) => v.invariant === name)).toBe(true);
    const matching = found.filter((v) => (typeof row.breaking.message === 'string' ? v.message.includes(row.breaking.message) : row.breaking.message.test(v.message)));
    expect(matching, found.map((v) => v.message).join('\n')).not.toEqual([]);
    // An event-based violation points at the events that broke the rule, all from the list.
    if (!CONTEXT_ONLY.has(name)) {
      for (const v of matching) {
        expect(v.events.length).toBeGreaterThan(0);
        for (const e of v.events) expect(row.breaking.events).toContain(e);
      }
    }
    // And the runner's entry point reports it too.
    expect(checkInvariants(row.breaking.events ?? [], contextOf(row.breaking.ctx)).map((v) => v.invariant)).toContain(name);
  });

  it.each(rows)('%s — %s: holds on the lawful list', (name, _clause, row) => {
    expect(checkOne(name, row.lawful).map((v) => v.message)).toEqual([]);
  });

  it('an empty log with an empty context breaks nothing', () => {
    expect(checkInvariants([], contextOf())).toEqual([]);
  });

  it('a violation carries the events that broke the rule', () => {
    const events = inOrder([issued(), run('RunTokenRevoked'), run('MetricsWrittenBack')]);
    expect(checkOne('no-call-outside-token-lifetime', { events })[0]?.events).toEqual([events[2]]);
    const order = inOrder([run('ContainerStarted'), issued()]);
    expect(checkOne('run-lifecycle-order', { events: order })[0]?.events).toEqual([order[1], order[0]]);
  });
});

describe('secretShapesIn', () => {
  it('finds JWTs and keys that nobody registered, and nothing in what the log lawfully holds', () => {
    expect(secretShapesIn(`a ${UNREGISTERED_JWT} b`)).toEqual([{ kind: 'JWT-shaped', value: UNREGISTERED_JWT }]);
    expect(secretShapesIn(`"AccountKey=${STORAGE_KEY};"`)).toEqual([{ kind: 'key-shaped', value: STORAGE_KEY }]);
    expect(secretShapesIn(`k=${BASE64URL_KEY}`)).toEqual([{ kind: 'key-shaped', value: BASE64URL_KEY }]);
    for (let i = 0; i < 50; i++) {
      const key = randomBytes(64).toString('base64');
      expect(secretShapesIn(JSON.stringify({ key })).map((s) => s.value)).toEqual([key]);
    }
    expect(secretShapesIn(JSON.stringify(LAWFUL_LOOKALIKES))).toEqual([]);
  });

  // The edges of the heuristic, at 64 characters: a sixth upper case (at least 3), 3 lower case,
  // 2 digits, at most one symbol in 8 (+2); hex-only runs never.
  const mk = (upper: number, lower: number, digits: number, symbols = 0) => 'Z'.repeat(upper) + 'z'.repeat(lower) + '9'.repeat(digits) + '/'.repeat(symbols);
  it.each([
    ['64 characters at every edge', mk(11, 51, 2), true],
    ['63 characters', mk(11, 50, 2), false],
    ['63 characters and padding', `${mk(11, 50, 2)}==`, false],
    ['10 upper case in 64', mk(10, 52, 2), false],
    ['1 digit', mk(11, 52, 1), false],
    ['3 lower case', mk(59, 3, 2), true],
    ['2 lower case', mk(60, 2, 2), false],
    ['10 symbols in 64', mk(11, 41, 2, 10), true],
    ['11 symbols in 64', mk(11, 40, 2, 11), false],
    ['only hex, mixed case', 'ABCDEFabcdef0123456789'.repeat(3), false],
    ['a path', '/Users/Alice/Projects/Ws1Models2025/ExperimentRuns/Run42Outputs/Final', false],
  ])('a run of %s is key-shaped: %s', (_, text, shaped) => {
    expect(secretShapesIn(` ${text} `).length > 0).toBe(shaped);
  });
});
