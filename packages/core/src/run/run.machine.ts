import { assign, setup } from 'xstate';
import type { EventDataMap, RunOutcome, MachineEvent } from '../events/catalog';

/**
 * The run aggregate's statechart (S1.3, S8.3, S8.4), with the platform's run statuses as
 * state tags: NotStarted, Starting, Preparing, Queued, Running, Finalizing, CancelRequested,
 * Completed, Failed, Canceled.
 *
 * Two ways to a running script (S8.3), chosen by the run's compute type:
 * - managed (AmlCompute): Starting = image prepared (step 1), Preparing = management code
 *   written to the file share (step 2), Queued = waiting for a node, Running from the
 *   container's start (step 3);
 * - unmanaged (an attached VirtualMachine): Starting = the platform logs in to the VM with
 *   its own key from the platform vault (S6.2) and starts the management code there;
 *   Preparing = the management code prepares the environment, downloads the code and sets
 *   the variables (steps 1–3, each a `ManagementStepCompleted`); Running = the user's script
 *   (step 4). There is no Queued: an attached VM has no node queue, the run starts at once.
 * Both then share Running, Finalizing (write-back, S8.4) and the end of the run.
 *
 * Pure, like every machine here: entry actions name effects (`issueRunToken`, `prepareImage`,
 * `writeManagementCode`, `requestNode`, `startContainer`, `startOnVm`, `stopRun`, `finishRun`,
 * `revokeRunToken`, `releaseNode`) that the platform's run manager carries out; their
 * outcomes come back as the next events. Timers (token expiry) are not XState delays: the
 * platform's scheduler appends `RunTokenExpired` at its due time.
 */
type Ev<K extends keyof EventDataMap> = MachineEvent<K>;

export type RunMachineEvent =
  | Ev<'RunTokenIssued'>
  | Ev<'RunImagePrepared'>
  | Ev<'ManagementCodeWritten'>
  | Ev<'RunQueued'>
  | Ev<'NodeAssigned'>
  | Ev<'ContainerStarted'>
  | Ev<'VmLoginSucceeded'>
  | Ev<'VmLoginRefused'>
  | Ev<'ManagementCodeStarted'>
  | Ev<'ManagementStepCompleted'>
  | Ev<'ManagementCodeExited'>
  | Ev<'RunStatusReported'>
  | Ev<'MetricsWrittenBack'>
  | Ev<'OutputUploaded'>
  | Ev<'RunLogsUploaded'>
  | Ev<'RunScriptEnded'>
  | Ev<'RunCallRefused'>
  | Ev<'RunCancelRequested'>
  | Ev<'RunHeartbeatLost'>
  | Ev<'RunHeartbeatResumed'>
  | Ev<'ContainerExited'>
  | Ev<'RunCompleted'>
  | Ev<'RunFailed'>
  | Ev<'RunCanceled'>
  | Ev<'RunTokenRevoked'>
  | Ev<'RunTokenExpired'>
  | Ev<'NodeReleased'>;

export type RunStatus =
  | 'NotStarted'
  | 'Starting'
  | 'Preparing'
  | 'Queued'
  | 'Running'
  | 'Finalizing'
  | 'CancelRequested'
  | 'NotResponding'
  | 'Completed'
  | 'Failed'
  | 'Canceled';

export type RunContext = EventDataMap['RunSubmitted'] & {
  tokenId?: string;
  tokenExpired: boolean;
  tokenRevoked: boolean;
  image?: string;
  node?: string;
  container?: string;
  /** Unmanaged: the VM and the pid of the management code on it. */
  vm?: string;
  pid?: number;
  scriptExitCode?: number;
  scriptError?: string;
  logTail?: string;
  refusal?: { call: string; code: string; reason: string };
  metricBatches: number;
  /** The run's container has exited (its node may be released). */
  containerExited: boolean;
  nodeReleased: boolean;
  outcome?: RunOutcome;
  reason?: string;
};

/** How the run's process ended: its container (managed) or the management code on a VM (unmanaged). */
type Exit = Ev<'ContainerExited'> | Ev<'ManagementCodeExited'>;

/** Why a run failed, from what its container and management code said (the log's own words). */
const failureReason = (context: RunContext, exit: Exit): string => {
  if (exit.type === 'ContainerExited' && exit.oomKilled) return `OOMKilled: the container exceeded its memory limit (exit code ${exit.exitCode})`;
  if (context.refusal) return `the platform refused ${context.refusal.call}: ${context.refusal.code}: ${context.refusal.reason}`;
  if (context.scriptExitCode !== undefined && context.scriptExitCode !== 0) {
    return `the script exited with code ${context.scriptExitCode}${context.logTail ? `; log tail:\n${context.logTail}` : ''}`;
  }
  if (context.scriptError) return context.scriptError;
  if (context.scriptExitCode === undefined) {
    const what = exit.type === 'ContainerExited' ? 'the container' : `the management code on VM '${exit.vm}'`;
    return `${what} exited with code ${exit.exitCode} before the script ended (killed or lost)`;
  }
  return `the management code exited with code ${exit.exitCode}`;
};

/**
 * A fact the state takes without changing: XState's `can()` says false for a transition with
 * neither target nor action, so such facts carry this no-op action to be accepted.
 */
const NOTE = { actions: 'note' } as const;

/** Entering a terminal status: the token dies and the node goes back to the cluster (S1.3, S4.6). */
const END_OF_RUN = [
  { type: 'revokeRunToken', params: ({ context }: { context: RunContext }) => ({ ...(context.tokenId ? { tokenId: context.tokenId } : {}) }) },
  // The node goes back only once its container is gone; if it still runs down, ContainerExited releases it.
  {
    type: 'releaseNode',
    params: ({ context }: { context: RunContext }) => ({ ...(context.node && (context.containerExited || !context.container) ? { node: context.node } : {}) }),
  },
] as const;

/** The reason a script that exited non-zero gives (its log's tail). */
const scriptFailure = (context: RunContext): string =>
  `the script exited with code ${context.scriptExitCode}${context.logTail ? `; log tail:\n${context.logTail}` : ''}`;

/**
 * Before its target starts, a run's token may be issued again: a resumed session
 * (packages/platform/src/training/run-manager.ts `driveOn`) replaces a token whose value died
 * with its simulator (values are never logged). The new one is the run's token from then on.
 */
const TOKEN_REISSUED = {
  RunTokenIssued: { actions: 'replaceToken' },
} as const;

const ACTIVE_COMMON = {
  ManagementStepCompleted: NOTE,
  RunLogsUploaded: { actions: 'rememberLogs' },
  RunScriptEnded: { actions: 'rememberScriptEnd' },
  RunCallRefused: { actions: 'rememberRefusal' },
  RunTokenExpired: { actions: 'markTokenExpired' },
  MetricsWrittenBack: { actions: 'countBatch' },
  OutputUploaded: NOTE,
} as const;

export const runMachine = setup({
  types: {
    context: {} as RunContext,
    events: {} as RunMachineEvent,
    input: {} as EventDataMap['RunSubmitted'],
  },
  actions: {
    // Effects, carried out by the platform.
    issueRunToken: () => {},
    prepareImage: () => {},
    writeManagementCode: () => {},
    requestNode: () => {},
    startContainer: (_: unknown, _params: { node: string }) => {},
    startOnVm: () => {},
    stopRun: (_: unknown, _params: { hasContainer: boolean }) => {},
    finishRun: (_: unknown, _params: { outcome: RunOutcome; reason?: string }) => {},
    revokeRunToken: (_: unknown, _params: { tokenId?: string }) => {},
    releaseNode: (_: unknown, _params: { node?: string }) => {},
    note: () => {},
    // Context updates.
    rememberLogs: assign({ logTail: ({ context, event }) => (event.type === 'RunLogsUploaded' ? event.tail : context.logTail) }),
    rememberScriptEnd: assign(({ context, event }) =>
      event.type === 'RunScriptEnded' ? { scriptExitCode: event.exitCode, ...(event.error ? { scriptError: event.error } : {}) } : context,
    ),
    rememberRefusal: assign({
      refusal: ({ context, event }) => (event.type === 'RunCallRefused' ? { call: event.call, code: event.code, reason: event.reason } : context.refusal),
    }),
    markTokenExpired: assign({ tokenExpired: () => true }),
    replaceToken: assign(({ context, event }) => (event.type === 'RunTokenIssued' ? { tokenId: event.tokenId, tokenExpired: false } : context)),
    markTokenRevoked: assign({ tokenRevoked: () => true }),
    countBatch: assign({ metricBatches: ({ context }) => context.metricBatches + 1 }),
    failFromExit: assign(({ context, event }) =>
      event.type === 'ContainerExited' || event.type === 'ManagementCodeExited' ? { outcome: 'Failed' as const, reason: failureReason(context, event) } : {},
    ),
    markCompleted: assign({ outcome: () => 'Completed' as const }),
    markContainerExited: assign({ containerExited: () => true }),
    markNodeReleased: assign({ nodeReleased: () => true }),
    // The management code reported the script's end after writing back (S8.3/S8.4): that is the
    // run's end, as the platform's control script reports it; the container then runs down.
    finishFromScript: assign(({ context, event }) => {
      if (event.type !== 'RunScriptEnded') return {};
      const ended = { ...context, scriptExitCode: event.exitCode, ...(event.error ? { scriptError: event.error } : {}) };
      if (event.exitCode === 0) return { scriptExitCode: 0, outcome: 'Completed' as const };
      return {
        scriptExitCode: event.exitCode,
        ...(event.error ? { scriptError: event.error } : {}),
        outcome: 'Failed' as const,
        reason: event.error ?? scriptFailure(ended),
      };
    }),
  },
  guards: {
    oomOrFailure: ({ context, event }) =>
      // A refused call fails the run only through the management code's own exit (it gives up
      // when write-back is refused); a script that merely tried something and was refused can succeed.
      (event.type === 'ContainerExited' && (event.oomKilled || event.exitCode !== 0 || context.scriptExitCode !== 0)) ||
      (event.type === 'ManagementCodeExited' && (event.exitCode !== 0 || context.scriptExitCode !== 0)),
    onVm: ({ context }) => context.computeType === 'VirtualMachine',
  },
}).createMachine({
  id: 'run',
  context: ({ input }) => ({ ...input, tokenExpired: false, tokenRevoked: false, metricBatches: 0, containerExited: false, nodeReleased: false }),
  initial: 'notStarted',
  on: {
    // Any pre-container step can fail (image build, identity access, no compute): straight to Failed.
    RunFailed: { target: '.failed', actions: assign({ outcome: () => 'Failed' as const, reason: ({ event }) => event.reason }) },
  },
  states: {
    notStarted: {
      tags: ['NotStarted'],
      entry: 'issueRunToken',
      on: {
        RunTokenIssued: [
          { guard: 'onVm', target: 'vmStarting', actions: assign({ tokenId: ({ event }) => event.tokenId }) },
          { target: 'starting', actions: assign({ tokenId: ({ event }) => event.tokenId }) },
        ],
        RunCancelRequested: 'cancelRequested',
      },
    },
    // ---- unmanaged compute (S8.3, S6.2) ----
    vmStarting: {
      tags: ['Starting'],
      entry: 'startOnVm',
      on: {
        // A resumed session driving the run on replaces the token whose value died with its simulator.
        ...TOKEN_REISSUED,
        VmLoginSucceeded: NOTE,
        VmLoginRefused: {
          target: 'finishing',
          actions: assign({ outcome: () => 'Failed' as const, reason: ({ event }) => `the VM '${event.vm}' refused the platform's login as '${event.username}': ${event.reason}` }),
        },
        ManagementCodeStarted: { target: 'vmPreparing', actions: assign({ vm: ({ event }) => event.vm, pid: ({ event }) => event.pid }) },
        RunCancelRequested: 'cancelRequested',
        RunTokenExpired: { actions: 'markTokenExpired' },
      },
    },
    vmPreparing: {
      tags: ['Preparing'],
      on: {
        ...ACTIVE_COMMON,
        RunStatusReported: [{ guard: ({ event }) => event.status === 'Running', target: 'running' }, NOTE],
        RunCancelRequested: 'cancelRequested',
        ManagementCodeExited: exited(),
      },
    },
    // ---- managed compute (S8.3, S4.6) ----
    starting: {
      tags: ['Starting'],
      entry: 'prepareImage',
      on: {
        ...TOKEN_REISSUED,
        RunImagePrepared: { target: 'preparing', actions: assign({ image: ({ event }) => event.image }) },
        RunCancelRequested: 'cancelRequested',
        RunTokenExpired: { actions: 'markTokenExpired' },
      },
    },
    preparing: {
      tags: ['Preparing'],
      entry: 'writeManagementCode',
      on: {
        ...TOKEN_REISSUED,
        ManagementCodeWritten: 'queued',
        RunCancelRequested: 'cancelRequested',
        RunTokenExpired: { actions: 'markTokenExpired' },
      },
    },
    queued: {
      tags: ['Queued'],
      entry: 'requestNode',
      on: {
        ...TOKEN_REISSUED,
        RunQueued: NOTE,
        // One node per run: a second assignment is refused (the cluster then gives that node elsewhere).
        NodeAssigned: {
          guard: ({ context }) => context.node === undefined,
          actions: [assign({ node: ({ event }) => event.node }), { type: 'startContainer', params: ({ event }) => ({ node: event.node }) }],
        },
        ContainerStarted: { target: 'running', actions: assign({ container: ({ event }) => event.container }) },
        RunCancelRequested: 'cancelRequested',
        RunTokenExpired: { actions: 'markTokenExpired' },
        // A container that never reported (killed before it could) still ends the run.
        ContainerExited: {
          target: 'finishing',
          actions: assign(({ context, event }) => ({ outcome: 'Failed' as const, reason: failureReason(context, event), containerExited: true })),
        },
      },
    },
    running: {
      tags: ['Running'],
      on: {
        ...ACTIVE_COMMON,
        RunScriptEnded: { target: 'finishing', actions: 'finishFromScript' },
        RunStatusReported: [{ guard: ({ event }) => event.status === 'Finalizing', target: 'finalizing' }, NOTE],
        RunCancelRequested: 'cancelRequested',
        RunHeartbeatLost: 'notResponding',
        // Exit 0 without finalizing: the script logged nothing and had no outputs, which is fine.
        ContainerExited: exited(),
        ManagementCodeExited: exited(),
      },
    },
    notResponding: {
      // The heartbeat stopped while the script ran (a hung or frozen target): the platform says
      // so, and the run goes on if heartbeats come back, or ends when the target exits.
      tags: ['NotResponding'],
      on: {
        ...ACTIVE_COMMON,
        RunScriptEnded: { target: 'finishing', actions: 'finishFromScript' },
        RunHeartbeatResumed: 'running',
        RunStatusReported: [{ guard: ({ event }) => event.status === 'Finalizing', target: 'finalizing' }, NOTE],
        RunCancelRequested: 'cancelRequested',
        ContainerExited: exited(),
        ManagementCodeExited: exited(),
      },
    },
    finalizing: {
      tags: ['Finalizing'],
      on: {
        ...ACTIVE_COMMON,
        RunScriptEnded: { target: 'finishing', actions: 'finishFromScript' },
        RunStatusReported: NOTE,
        RunCancelRequested: 'cancelRequested',
        ContainerExited: exited(),
        ManagementCodeExited: exited(),
      },
    },
    cancelRequested: {
      tags: ['CancelRequested'],
      entry: [
        // The platform's own cancel says why (e.g. the simulator was interrupted): the run ends with that reason.
        assign({ reason: ({ context, event }) => (event.type === 'RunCancelRequested' && event.reason ? event.reason : context.reason) }),
        {
          type: 'stopRun',
          params: ({ context }) => ({ hasContainer: context.container !== undefined || context.node !== undefined || context.pid !== undefined }),
        },
      ],
      on: {
        RunHeartbeatLost: NOTE,
        RunHeartbeatResumed: NOTE,
        ...ACTIVE_COMMON,
        RunStatusReported: NOTE,
        NodeAssigned: { actions: assign({ node: ({ event }) => event.node }) },
        ContainerStarted: { actions: assign({ container: ({ event }) => event.container }) },
        ContainerExited: { target: 'finishing', actions: assign({ outcome: () => 'Canceled' as const, containerExited: () => true }) },
        VmLoginSucceeded: NOTE,
        ManagementCodeStarted: { actions: assign({ vm: ({ event }) => event.vm, pid: ({ event }) => event.pid }) },
        ManagementCodeExited: { target: 'finishing', actions: assign({ outcome: () => 'Canceled' as const }) },
        RunCanceled: 'canceled',
      },
    },
    finishing: {
      entry: { type: 'finishRun', params: ({ context }) => ({ outcome: context.outcome ?? 'Failed', ...(context.reason ? { reason: context.reason } : {}) }) },
      on: {
        ...ACTIVE_COMMON,
        ContainerExited: { actions: 'markContainerExited' },
        ManagementCodeExited: NOTE,
        RunCompleted: 'completed',
        RunCanceled: 'canceled',
      },
    },
    completed: { tags: ['Completed'], entry: END_OF_RUN, on: terminalEvents() },
    failed: { tags: ['Failed'], entry: END_OF_RUN, on: terminalEvents() },
    canceled: { tags: ['Canceled'], entry: END_OF_RUN, on: terminalEvents() },
  },
});

function terminalEvents() {
  return {
    RunHeartbeatLost: NOTE,
    RunHeartbeatResumed: NOTE,
    RunFailed: NOTE,
    RunTokenRevoked: { actions: 'markTokenRevoked' as const },
    RunTokenExpired: { actions: 'markTokenExpired' as const },
    NodeReleased: { actions: 'markNodeReleased' as const },
    // The container ran down after the run ended: now its node can go back to the cluster.
    ContainerExited: {
      actions: [
        'markContainerExited' as const,
        { type: 'releaseNode' as const, params: ({ context }: { context: RunContext }) => ({ ...(context.node && !context.nodeReleased ? { node: context.node } : {}) }) },
      ],
    },
    // Late reports from a container being torn down change nothing.
    RunLogsUploaded: NOTE,
    RunScriptEnded: NOTE,
    RunCallRefused: NOTE,
    OutputUploaded: NOTE,
    MetricsWrittenBack: NOTE,
    RunStatusReported: NOTE,
    VmLoginSucceeded: NOTE,
    VmLoginRefused: NOTE,
    ManagementCodeStarted: NOTE,
    ManagementStepCompleted: NOTE,
    ManagementCodeExited: NOTE,
  };
}

/** The run's process ended (container or management code on a VM): Failed with the reason, or Completed. */
function exited() {
  return [
    { guard: 'oomOrFailure' as const, target: 'finishing' as const, actions: ['failFromExit', 'markContainerExited'] as const },
    { target: 'finishing' as const, actions: ['markCompleted', 'markContainerExited'] as const },
  ];
}
