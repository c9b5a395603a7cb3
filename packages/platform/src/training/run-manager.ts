import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  clusterFactOf,
  clusterOfFact,
  computeKey,
  errors,
  foldCluster,
  isTerminalStatus,
  runAggregate,
  runStatusOf,
  STREAMS,
  startRun,
  stepCluster,
  initialClusterState,
  runAccepts,
  type ClusterDecision,
  type ClusterInput,
  type ClusterSpec,
  type ClusterState,
  type ComputeRecord,
  type RunEffect,
  type EventDataMap,
  type RunMachineEvent,
  type RunSnapshot,
  type RunStatus,
  type StoredEvent,
} from '@amlsim/core';
import { agentFiles } from '@amlsim/agent';
import type { ComputeDriver, RunningCompute } from '../compute/compute-driver';
import type { ChannelInfo, ControlPlane, ControlPlaneCaller } from './control-plane';
import { grantTargetRead } from '../runtime/socket-doors';
import { CommandContext, type EventToAppend } from '../runtime/command-bus';
import { EffectRunner, type OutcomeHandlers } from '../runtime/effect-runner';
import type { Scheduler } from '../runtime/scheduler';
import type { PlatformRuntime, DataPlane } from '../platform-context';
import { setLongTimeout, type LongTimeout } from '../runtime/long-timeout';
import { endLostRuns } from '../runtime/recovery';
import type { RunTokenService } from '../identity/run-tokens';
import type { SnapshotStore } from './snapshots';
import type { VirtualMachineService } from './virtual-machines';
import { prepareRunImage } from './run-environment';
import { dataReferenceVariable, mountRunInputs, removeRunInputs, RUN_INPUTS_ROOT } from './datastores';

type RunEvent = Extract<EventToAppend, { type: RunMachineEvent['type'] }>;
/** The run stream's notes: facts no run machine takes (packages/core/src/run/run.machine.ts), appended on the run's chain all the same. */
type RunNote = Extract<EventToAppend, { type: 'RunChannelOpened' | 'RunChannelClosed' | 'RunReattached' | 'RunResumed' | 'RunInputMounted' }>;
const RUN_NOTES: ReadonlySet<string> = new Set<RunNote['type']>(['RunChannelOpened', 'RunChannelClosed', 'RunReattached', 'RunResumed', 'RunInputMounted']);

export const runStream = STREAMS.run;
export const computeStream = STREAMS.compute;

/** Everything a run needs that is not in its events (secrets and live handles stay in memory). */
type LiveRun = {
  ctx: CommandContext;
  token?: string;
  tokenExpiresAtMs?: number;
  cancelExpiry?: () => void;
  compute?: RunningCompute;
  done: Promise<void>;
  resolveDone: () => void;
  userEnv: Record<string, string>;
  region: string;
  /** Removals of exited containers still in flight (awaited at shutdown). */
  pendingRemovals: Promise<void>[];
  /** Platform time of the last heartbeat, and the watchdog waiting for the next one. */
  lastHeartbeatMs?: number;
  cancelWatchdog?: () => void;
  /** The run's control-plane channel (its own, or its VM's), from token issue to the run's end. */
  channel?: ChannelInfo;
  /** Its closing (unbound, then RunChannelClosed appended), once begun. */
  closing?: Promise<void>;
  /** Driven on by a resumed session from this status (`driveOn`): a step that then fails says PlatformRestarted. */
  resumedFrom?: RunStatus;
};

/** A cluster's workflow state, and the one chain its steps go through. */
type ClusterFlow = { state: ClusterState; chain: Promise<void> };

/** What the run's effect handlers are given besides the effect (runtime/effect-runner.ts). */
type RunExtra = { runId: string; live: LiveRun };

/** Heartbeats come every 500 ms (AMLSIM_HEARTBEAT_MS); five missed in a row is NotResponding. */
export const HEARTBEAT_INTERVAL_MS = 500;
export const HEARTBEAT_TIMEOUT_MS = 5 * HEARTBEAT_INTERVAL_MS;
/** Before its first heartbeat a target boots and downloads the code: it gets longer. */
export const FIRST_HEARTBEAT_GRACE_MS = 10_000;

export type RunManagerDeps = {
  driver: () => Promise<ComputeDriver>;
  tokens: RunTokenService;
  snapshots: SnapshotStore;
  scheduler: Scheduler;
  /** Opens and binds the runs' control-plane channels. */
  channels: Pick<ControlPlane, 'open' | 'reopen' | 'bind' | 'unbind'>;
  runTokenTtlMs: number;
  /** Attached VMs (S8.3 unmanaged): the login to them and the management code on them. */
  vms: VirtualMachineService;
  /**
   * Where a run's user environment is kept for a resumed session to start its target with (it
   * is not in the log: the values may be the user's secrets). Sealed with the session's
   * resumable state (identity/resumable-session.ts), which goes when the session closes.
   */
  userEnv: { keep(runId: string, env: Record<string, string>): void; of(runId: string): Record<string, string> | undefined };
};

/** The effect a run standing at a status before its target started carries out next (run.machine.ts entry actions). */
const NEXT_STEP: Partial<Record<RunStatus, RunEffect['type']>> = {
  NotStarted: 'issueRunToken',
  Starting: 'prepareImage',
  Preparing: 'writeManagementCode',
  Queued: 'requestNode',
};
/** The same on an attached VM (S8.3 unmanaged): no image, file share or queue; Starting logs in and starts the management code. */
const NEXT_STEP_ON_VM: Partial<Record<RunStatus, RunEffect['type']>> = {
  NotStarted: 'issueRunToken',
  Starting: 'startOnVm',
};

/** What the run manager uses of the platform's runtime and data plane (wired by createPlatform). */
export type RunManagerPlatform = Pick<PlatformRuntime, 'clock' | 'faults' | 'ids' | 'session' | 'store' | 'world'> & Pick<DataPlane, 'storage'>;

/**
 * The run process manager (S1.3, S8.3, S8.4, S4.6): feeds each run's facts to the run
 * statechart and carries out the effects it names, through the platform's effect runner
 * (runtime/effect-runner.ts), and carries out what each AmlCompute cluster's workflow decides —
 * queueing, node assignment, provisioning and scale-down (packages/core/src/compute/cluster.workflow.ts).
 * All of a run's facts go through the runner's one chain per run, so facts from effects and
 * from the control plane never interleave; all of a cluster's steps go through one chain of its own.
 */
export class RunManager {
  private readonly live = new Map<string, LiveRun>();
  /** Shut down: work a run's chain still had when the session closed (a killed container's exit) may find the log closed. */
  private stopped = false;
  /** Each run's state and status history, held and advanced by the runner; a fact the run would not take now (a late report) is dropped. */
  private readonly runner: EffectRunner<typeof runAggregate, RunExtra, RunEvent | RunNote, RunStatus[]>;
  /** Each AmlCompute cluster's workflow state, and the one chain its steps go through. */
  private readonly clusters = new Map<string, ClusterFlow>();
  /**
   * The clusters' decisions being carried out (a node's disks being made or deleted): shutdown
   * waits for them, so that what they make is there for the session's cleanup to remove.
   */
  private readonly clusterWork = new Set<Promise<void>>();
  /** Lets the resumed clusters' first steps go (foldClusters): a shutdown before resume got there lets them go too. */
  private releaseClusters?: () => void;
  private readonly unwatchClusters: () => void;

  constructor(
    private readonly p: RunManagerPlatform,
    private readonly deps: RunManagerDeps,
  ) {
    this.unwatchClusters = p.store.subscribe((events) => this.clusterFacts(events));
    this.runner = new EffectRunner<typeof runAggregate, RunExtra, RunEvent | RunNote, RunStatus[]>({
      store: p.store,
      aggregate: runAggregate,
      handlers: this.handlers(),
      // An effect failing unexpectedly fails the run rather than leaving it hanging.
      failed: (_effect, error, snapshot) => [this.platformError(snapshot, error)],
      takes: (snapshot, fact) => RUN_NOTES.has(fact.type) || runAccepts(snapshot, { type: fact.type, ...fact.data } as RunMachineEvent),
      // The status history (getRunStatusHistory): each status the stream's prefixes fold to, in order.
      derive: (history, snapshot) => {
        const status = runStatusOf(snapshot);
        const before = history ?? [];
        return status && before.at(-1) !== status ? [...before, status] : before;
      },
    });
  }

  // ---- the run aggregate -------------------------------------------------------------------

  /**
   * A run's state and status history. Held per run by the runner and advanced by the facts
   * appended since (whoever appended them): a call reads the stream's tail, never re-folds its whole history.
   */
  load(runId: string): { snapshot: RunSnapshot; history: RunStatus[] } {
    const held = this.runner.load(runStream(runId));
    if (!held) throw errors.notFound('run', runId);
    return { snapshot: held.snapshot, history: held.derived };
  }

  /** Start a run: RunSubmitted, then the machine takes over (S8.3). */
  start(ctx: CommandContext, submitted: EventDataMap['RunSubmitted'], userEnv: Record<string, string>, region: string): void {
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const liveCtx = new CommandContext(ctx.command, ctx.correlationId, this.p.store, this.p.clock, this.p.session);
    liveCtx.principal = ctx.principal;
    const live: LiveRun = { ctx: liveCtx, done, resolveDone, userEnv, region, pendingRemovals: [] };
    this.live.set(submitted.runId, live);
    if (Object.keys(userEnv).length > 0) this.deps.userEnv.keep(submitted.runId, userEnv);
    // Appended at once (the stream is new: nothing is on its chain); the runner carries out what it names.
    const [first] = ctx.emit(runStream(submitted.runId), 'no-stream', [{ type: 'RunSubmitted', data: submitted }]);
    const [, effects] = startRun(submitted, first!.position);
    void this.enqueue(submitted.runId, (extra) => this.runner.carryOut(liveCtx, runStream(submitted.runId), effects, extra));
  }

  /**
   * Append facts to a run (in order, after what is already queued) and carry out what they
   * cause. `caller`: the channel and token of the control-plane call that reported them.
   */
  record(runId: string, facts: RunEvent[], caller?: ControlPlaneCaller): Promise<void> {
    const stream = runStream(runId);
    return this.enqueue(runId, (extra) =>
      this.runner.execute(extra.live.ctx, stream, () => facts, extra, { append: (taken, v) => extra.live.ctx.emit(stream, v, taken, caller) }),
    );
  }

  /** Resolves when the run reaches Completed, Failed or Canceled. */
  async waitFor(runId: string, timeoutMs: number, until?: RunStatus): Promise<RunStatus> {
    const status = () => runStatusOf(this.load(runId).snapshot);
    if (until) return this.waitUntil(runId, timeoutMs, until);
    const live = this.live.get(runId);
    // A live run is waited for until its end has been carried out, even if its status already says so.
    if (!live) return status()!;
    // A chained timer: a timeout past 2^31-1 ms must not fire at once (runtime/long-timeout.ts).
    let timer: LongTimeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setLongTimeout(() => r('timeout'), timeoutMs)));
    const winner = await Promise.race([live.done.then(() => 'done' as const), timedOut]);
    timer?.cancel();
    if (winner === 'timeout') {
      throw errors.timeout(`run ${runId}`, timeoutMs, status() ?? 'finishing');
    }
    return status()!;
  }

  /** Wait until the run has been in `until` (or has ended: it will never get there then). */
  private async waitUntil(runId: string, timeoutMs: number, until: RunStatus): Promise<RunStatus> {
    const reached = (): RunStatus | undefined => {
      const { history, snapshot } = this.load(runId);
      const now = runStatusOf(snapshot);
      return history.includes(until) || isTerminalStatus(now) ? (now ?? until) : undefined;
    };
    const already = reached();
    if (already) return already;
    // Woken by the log, not by polling: each append to the run's stream is a chance it got there.
    const stream = runStream(runId);
    return new Promise<RunStatus>((resolve, reject) => {
      let timer: LongTimeout | undefined;
      const unsubscribe = this.p.store.subscribe((events) => {
        if (!events.some((e) => e.stream === stream)) return;
        const status = reached();
        if (!status) return;
        unsubscribe();
        timer?.cancel();
        resolve(status);
      });
      timer = setLongTimeout(() => {
        unsubscribe();
        reject(errors.timeout(`run ${runId} reaching ${until}`, timeoutMs, runStatusOf(this.load(runId).snapshot) ?? 'finishing'));
      }, timeoutMs);
    });
  }

  /**
   * A heartbeat from the management code (S8.3): it proves the target is alive. Silence for
   * HEARTBEAT_TIMEOUT_MS while the script runs makes the run NotResponding; the next heartbeat
   * makes it Running again.
   */
  async heartbeat(runId: string, caller: ControlPlaneCaller): Promise<void> {
    const live = this.live.get(runId);
    if (!live) return;
    const now = this.p.clock.now();
    const silentForMs = live.lastHeartbeatMs === undefined ? 0 : now - live.lastHeartbeatMs;
    live.lastHeartbeatMs = now;
    this.armWatchdog(runId, HEARTBEAT_TIMEOUT_MS);
    if (this.load(runId).snapshot.matches('notResponding')) {
      await this.record(runId, [{ type: 'RunHeartbeatResumed', data: { ...this.ref(runId), silentForMs } }], caller);
    }
  }

  /** (Re)start the watchdog: without a heartbeat within `ms`, the run is NotResponding. */
  private armWatchdog(runId: string, ms: number): void {
    const live = this.live.get(runId);
    if (!live) return;
    live.cancelWatchdog?.();
    live.lastHeartbeatMs ??= this.p.clock.now();
    live.cancelWatchdog = this.deps.scheduler.at(this.p.clock.now() + ms, () => this.heartbeatLost(runId));
  }

  private async heartbeatLost(runId: string): Promise<void> {
    const live = this.live.get(runId);
    if (!live?.lastHeartbeatMs || !this.load(runId).snapshot.matches('running')) return;
    // Engine liveness (managed compute): the script runs on the management code's own thread
    // there, so a long synchronous loop is silence, not a hang. The driver says whether the
    // target still works; only a frozen or vanished one is NotResponding.
    if (live.compute?.responsive && (await live.compute.responsive().catch(() => false))) {
      if (this.live.get(runId) === live) this.armWatchdog(runId, HEARTBEAT_TIMEOUT_MS);
      return;
    }
    const silentForMs = this.p.clock.now() - live.lastHeartbeatMs;
    await this.record(runId, [
      { type: 'RunHeartbeatLost', data: { ...this.ref(runId), lastHeartbeatAt: new Date(live.lastHeartbeatMs).toISOString(), silentForMs } },
    ]);
  }

  liveCompute(runId: string): RunningCompute | undefined {
    return this.live.get(runId)?.compute;
  }

  tokenOf(runId: string): { token?: string; expiresAtMs?: number } {
    const l = this.live.get(runId);
    return { ...(l?.token ? { token: l.token } : {}), ...(l?.tokenExpiresAtMs ? { expiresAtMs: l.tokenExpiresAtMs } : {}) };
  }

  /**
   * Go on with this session's runs after its simulator died (a resumed session, docs/architecture.md
   * "Crash recovery"), level-triggered from the log, in this order:
   * 1. each AmlCompute cluster's workflow is folded from the log (`foldCluster`); its first step,
   *    `Resumed`, waits until the runs are live, so nothing it decides finds a run not yet there;
   * 2. a run whose container ran on is taken back (`reattach`);
   * 3. a run whose target had not started yet is made live again (`driveOn`);
   * 4. the rest of its live runs have no target left: they end Failed PlatformRestarted
   *    (runtime/recovery.ts `endLostRuns`);
   * 5. each cluster takes `Resumed`: scale-downs that fell due meanwhile are carried out earliest
   *    first, the others timed again; the queue and the nodes are as the log says; a node's
   *    provisioning left under way is carried out again; the runs that wait for a node are served;
   * 6. each driven-on run's next step is carried out by the runner, as for a fresh run.
   */
  async resume(runIds: Iterable<string>): Promise<{ reattached: string[]; drivenOn: string[]; lost: string[] }> {
    const resumeClusters = this.foldClusters();
    const reattached: string[] = [];
    const drivenOn: Array<{ runId: string; next?: RunEffect }> = [];
    const lost: string[] = [];
    for (const runId of runIds) {
      if (await this.reattach(runId)) {
        reattached.push(runId);
        continue;
      }
      const driven = await this.driveOn(runId);
      if (driven) drivenOn.push({ runId, ...driven });
      else if (!isTerminalStatus(runStatusOf(this.load(runId).snapshot))) lost.push(runId);
    }
    const ended = endLostRuns(this.p.store, this.p.session, lost, {
      ids: this.p.ids,
      now: () => this.p.clock.now(),
      reason: `PlatformRestarted: the simulator of session ${this.p.session} stopped, and the run's target is gone`,
    });
    await resumeClusters();
    for (const { runId, next } of drivenOn) {
      if (next) void this.enqueue(runId, (extra) => this.carryOutAgain(runId, next, extra)).catch(() => {});
    }
    return { reattached, drivenOn: drivenOn.map((d) => d.runId), lost: ended };
  }

  /**
   * The workflow of each AmlCompute cluster of the session, folded from the log, with a
   * `Resumed` step first on its chain, held until the returned function is called (then
   * awaited with what it decided carried out). Facts that come meanwhile queue behind it.
   */
  private foldClusters(): () => Promise<void> {
    const events = [...this.p.store.readAll()].filter((e) => e.meta.session === this.p.session);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    this.releaseClusters = release;
    const steps: Promise<void>[] = [];
    for (const c of Object.values(this.p.world.computes.byKey)) {
      if (c.type !== 'AmlCompute') continue;
      const flow: ClusterFlow = { state: foldCluster(c, events), chain: held };
      this.clusters.set(computeKey(c.workspaceId, c.compute), flow);
      steps.push(this.stepClusterFlow(flow, () => ({ type: 'Resumed', atMs: this.p.clock.now(), waiting: this.waitingFor(c.workspaceId, c.compute) })));
    }
    return async () => {
      release();
      await Promise.all(steps);
    };
  }

  /** The live runs whose own streams say they wait for a node of this cluster (Queued, none assigned). */
  private waitingFor(workspaceId: string, compute: string): string[] {
    return [...this.live.keys()].filter((runId) => {
      const { snapshot } = this.load(runId);
      const run = snapshot.context;
      return run.workspaceId === workspaceId && run.compute === compute && runStatusOf(snapshot) === 'Queued' && run.node === undefined;
    });
  }

  /**
   * Make live again a run of this session whose simulator died before its target started
   * (Starting, Preparing or Queued on an AmlCompute cluster, or not started at all), and say what
   * it does next: the effect its last fact named, which the dead simulator never finished —
   * issue its token, prepare its image, write its management code, start its container on the
   * node it was given (none: it waits for a node, which its cluster's `Resumed` serves). The
   * effect keeps its id, so a start carried out again finds what the first made. A token it
   * was issued is of no use any more — its value lived only in the dead simulator (values are
   * never logged) — so its channel listens again in the same door and a new token bound to it
   * replaces the old (RunResumed, then RunTokenIssued). On an attached VM taken back
   * (VirtualMachineService.reattach) a run that had not started its management code is driven on
   * the same way: its token issued, or the login and start carried out again, bound to the VM's
   * reopened channel. Undefined — and nothing changed — for a run that cannot be driven on (ended,
   * on a VM that is gone, past its target's start, or cancelled).
   */
  private async driveOn(runId: string): Promise<{ next?: RunEffect } | undefined> {
    if (this.live.has(runId)) return undefined;
    const { snapshot } = this.load(runId);
    const run = snapshot.context;
    const from = runStatusOf(snapshot);
    const onVm = run.computeType === 'VirtualMachine';
    const step = from && (onVm ? NEXT_STEP_ON_VM : NEXT_STEP)[from];
    if (!step || run.container !== undefined || run.pid !== undefined) return undefined;
    // On a VM, only one this session took back (VirtualMachineService.reattach) can start it.
    const vm = onVm ? this.p.world.computes.byKey[computeKey(run.workspaceId, run.compute)] : undefined;
    if (onVm && !(vm?.attached && this.deps.vms.isLive(vm.attached.vmId))) return undefined;
    const events = this.p.store.readStream(runStream(runId));
    const effects = runAggregate.history(events)?.effects ?? [];
    const pending = run.node !== undefined ? effects.findLast((e) => e.type === 'startContainer') : effects.findLast((e) => e.type === step);
    if (!pending) return undefined;
    const ws = this.p.world.workspaces.byId[run.workspaceId];
    if (!ws) return undefined;
    const opened = events.findLast((e) => e.type === 'RunChannelOpened')?.data as EventDataMap['RunChannelOpened'] | undefined;
    // A run on a VM is bound to the VM's channel, reopened with the VM; a container's is its own.
    const channel = run.tokenId && opened ? (vm ? this.vmChannelOf(vm, opened.channel) : await this.deps.channels.reopen(opened.channel, opened.kind)) : undefined;
    if (run.tokenId && !channel) return undefined;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const ctx = new CommandContext('Resume', this.p.ids.next('cmd'), this.p.store, this.p.clock, this.p.session);
    const userEnv = this.deps.userEnv.of(runId) ?? {};
    const live: LiveRun = { ctx, done, resolveDone, userEnv, region: ws.region, pendingRemovals: [], resumedFrom: from, ...(channel ? { channel } : {}) };
    this.live.set(runId, live);
    if (channel) this.deps.channels.bind(channel.id, runId);
    const ref = this.ref(runId);
    const downForMs = Math.max(0, this.p.clock.now() - Date.parse(events.at(-1)!.meta.at));
    const stream = runStream(runId);
    await this.enqueue(runId, (extra) =>
      this.runner.execute(
        live.ctx,
        stream,
        () => [
          { type: 'RunResumed', data: { ...ref, from, next: pending.type, ...(run.tokenId ? { replacedToken: run.tokenId } : {}), downForMs } },
          ...(channel ? [this.issueToken(runId, live, channel)] : []),
        ],
        extra,
        { append: (facts, v) => live.ctx.emitAsPlatform(stream, v, facts) },
      ),
    );
    // A run that waits for a node asks its cluster in `Resumed`, not through its effect again.
    return pending.type === 'requestNode' ? {} : { next: pending };
  }

  /**
   * A driven-on run's next step, carried out by the runner with the id its fact gave it. A
   * container the dead simulator made for this start and never reported carries the token
   * that was replaced: it goes first, and the start made again holds the new one.
   */
  private async carryOutAgain(runId: string, effect: RunEffect, extra: RunExtra): Promise<unknown> {
    if (effect.type === 'startContainer') {
      const driver = await this.deps.driver();
      // No ContainerStarted in the log: any target of the run is one the dead simulator made and never reported.
      for (const unreported of await driver.findRunTargets({ session: this.p.session, runId })) {
        await unreported.kill().catch(() => {});
        await unreported.remove();
      }
    }
    if (effect.type === 'startOnVm') {
      // No ManagementCodeStarted in the log: management code the VM runs for this run is the dead simulator's.
      const run = this.load(runId).snapshot.context;
      await this.deps.vms.removeUnreportedManagement(this.cluster(run.workspaceId, run.compute), runId);
    }
    return this.runner.carryOut(extra.live.ctx, runStream(runId), [effect], extra);
  }

  /**
   * S1.3: a short-lived token for the run, scoped to its workspace and bound to `channel`; its
   * value stays in memory (handed to the target only), its expiry is timed. Returns the fact.
   */
  private issueToken(runId: string, live: LiveRun, channel: ChannelInfo): RunEvent {
    const ref = this.ref(runId);
    const issued = this.deps.tokens.issue({ ...ref, region: live.region }, this.deps.runTokenTtlMs, channel.id);
    live.token = issued.token;
    live.tokenExpiresAtMs = issued.expiresAtMs;
    live.cancelExpiry?.();
    live.cancelExpiry = this.deps.scheduler.at(issued.expiresAtMs, () => this.record(runId, [{ type: 'RunTokenExpired', data: { ...ref, tokenId: issued.tokenId } }]));
    return { type: 'RunTokenIssued', data: { ...ref, tokenId: issued.tokenId, fingerprint: issued.fingerprint, expiresAt: new Date(issued.expiresAtMs).toISOString(), channel: channel.id } };
  }

  /**
   * Take back a run of this session whose simulator died while its container ran on (a resumed
   * session, docs/architecture.md "Crash recovery"; level-triggered: what the log says against
   * what Docker has). The container still mounts its door, so the run's channel listens again
   * at the same socket; its token verifies with the session's saved key; its token expiry is
   * re-armed at its due time (past due: it fires now) and its heartbeat watchdog restarted; its
   * exit is waited for as at its start. A run on an attached VM is taken back by its management
   * code instead (`reattachOnVm`). Returns false — and changes nothing — for a run that has no
   * target left to take back (it is ended by recovery, packages/core/src/recovery/abandoned.ts).
   */
  async reattach(runId: string): Promise<boolean> {
    if (this.live.has(runId)) return false;
    const { snapshot } = this.load(runId);
    const run = snapshot.context;
    // A run that had ended, but whose container had not run down yet when its simulator died,
    // is taken back too: what its end named (its token revoked, its container's exit, its node
    // back to the cluster, its channel closed) is carried out as it would have been, and no
    // token or heartbeat is watched any more.
    const ended = isTerminalStatus(runStatusOf(snapshot));
    if (run.computeType === 'VirtualMachine') return ended ? false : this.reattachOnVm(runId);
    const events = this.p.store.readStream(runStream(runId));
    const last = <K extends keyof EventDataMap>(type: K) => events.findLast((e) => e.type === type)?.data as EventDataMap[K] | undefined;
    const started = last('ContainerStarted');
    const opened = last('RunChannelOpened');
    const issued = last('RunTokenIssued');
    if (!started || !opened || !issued || last('ContainerExited') || last('RunChannelClosed')) return false;
    if (!ended && last('RunTokenRevoked')) return false;
    const driver = await this.deps.driver();
    const compute = await driver.attachRun({ session: this.p.session, runId, container: started.container });
    if (!compute) return false;
    const channel = await this.deps.channels.reopen(opened.channel, opened.kind);
    await this.takeBack(runId, events, { target: compute, targetId: started.container, channel, issued, watchToken: !ended });
    this.watchContainer(runId, started.node, compute);
    return true;
  }

  /**
   * `reattach` for a run on an attached VM (S8.3 unmanaged): the VM was taken back with its
   * channel (VirtualMachineService.reattach), and the management code the dead simulator started
   * on it (ManagementCodeStarted: its pid) is the run's target — the login agent kept it running,
   * and keeps its exit, so one that ended while no simulator was there (it gives up on the control
   * plane after AMLSIM_CONTROL_PLANE_RETRY_MS) is taken as its end at once. Its token verifies
   * with the saved key, its expiry is re-armed, its watchdog restarted, what its last facts named
   * carried out. False — and nothing changed — when the VM is gone or the code was never started.
   */
  private async reattachOnVm(runId: string): Promise<boolean> {
    const run = this.load(runId).snapshot.context;
    const events = this.p.store.readStream(runStream(runId));
    const last = <K extends keyof EventDataMap>(type: K) => events.findLast((e) => e.type === type)?.data as EventDataMap[K] | undefined;
    const started = last('ManagementCodeStarted');
    const opened = last('RunChannelOpened');
    const issued = last('RunTokenIssued');
    if (!started || !opened || !issued || last('ManagementCodeExited') || last('RunChannelClosed') || last('RunTokenRevoked')) return false;
    const vm = this.p.world.computes.byKey[computeKey(run.workspaceId, run.compute)];
    const channel = vm ? this.vmChannelOf(vm, opened.channel) : undefined;
    const management = vm && channel ? this.deps.vms.attachManagement(vm, started.pid) : undefined;
    if (!channel || !management) return false;
    await this.takeBack(runId, events, { target: management, targetId: management.id, channel, issued, watchToken: true });
    this.watchManagement(runId, started.vm, started.pid, management);
    return true;
  }

  /**
   * What re-attaching a run's target (a container, or the management code on a VM) does once
   * the target is found and its channel listens again: the run is live in this session with
   * that target, `RunReattached` is recorded and the effects the dead simulator's last facts
   * named are carried out, next on the run's chain; then, for a run still running, its token
   * expiry is re-armed at its due time (past due: it expires now, before anything else it could
   * do) and its heartbeat watchdog restarted.
   */
  private async takeBack(
    runId: string,
    events: readonly StoredEvent[],
    taken: { target: RunningCompute; targetId: string; channel: ChannelInfo; issued: EventDataMap['RunTokenIssued']; watchToken: boolean },
  ): Promise<void> {
    const { target, targetId, channel, issued } = taken;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const ctx = new CommandContext('Reattach', this.p.ids.next('cmd'), this.p.store, this.p.clock, this.p.session);
    const expiresAtMs = Date.parse(issued.expiresAt);
    const live: LiveRun = { ctx, done, resolveDone, userEnv: {}, region: '', pendingRemovals: [], channel, compute: target, tokenExpiresAtMs: expiresAtMs };
    this.live.set(runId, live);
    this.deps.channels.bind(channel.id, runId);
    const ref = this.ref(runId);
    const downForMs = Math.max(0, this.p.clock.now() - Date.parse(events.at(-1)!.meta.at));
    const stream = runStream(runId);
    await this.enqueue(runId, async (extra) => {
      const reattached = this.runner.execute(
        live.ctx,
        stream,
        () => [{ type: 'RunReattached', data: { ...ref, container: targetId, channel: channel.id, socket: channel.socketPath, downForMs } }],
        extra,
        { append: (facts, v) => live.ctx.emitAsPlatform(stream, v, facts) },
      );
      const unfinished = this.runner.carryOut(live.ctx, stream, this.unfinishedEffects(events), extra);
      await Promise.all([reattached, unfinished]);
    });
    if (!taken.watchToken) return;
    live.cancelExpiry = this.deps.scheduler.at(expiresAtMs, () => this.record(runId, [{ type: 'RunTokenExpired', data: { ...ref, tokenId: issued.tokenId } }]));
    if (expiresAtMs <= this.p.clock.now()) await this.deps.scheduler.runDue();
    this.armWatchdog(runId, FIRST_HEARTBEAT_GRACE_MS);
  }

  /** The channel of a VM this session has (created or taken back), if it is the one `channelId` names. */
  private vmChannelOf(vm: ComputeRecord, channelId: string): ChannelInfo | undefined {
    if (!vm.attached || !this.deps.vms.isLive(vm.attached.vmId)) return undefined;
    const channel = this.deps.vms.channelOf(vm);
    return channel.id === channelId ? channel : undefined;
  }

  /**
   * The effects a run's facts since its target started (its container, or its management code
   * on a VM) named that have no outcome in the log: its simulator died between the fact and the
   * effect. Each is told done by its outcome fact, so carrying them out again does each at most once.
   */
  private unfinishedEffects(events: readonly StoredEvent[]): RunEffect[] {
    const since = events.findLast((e) => e.type === 'ContainerStarted' || e.type === 'ManagementCodeStarted')!.position;
    const has = (...types: string[]) => events.some((e) => types.includes(e.type));
    const done: Partial<Record<RunEffect['type'], boolean>> = {
      finishRun: has('RunCompleted', 'RunFailed', 'RunCanceled'),
      revokeRunToken: has('RunTokenRevoked', 'RunTokenExpired'),
      releaseNode: has('NodeReleased'),
    };
    const named = runAggregate.history(events)?.effects ?? [];
    return named.filter((e) => Number(e.id?.split(':')[0]) > since && e.type in done && !done[e.type]);
  }

  /**
   * Stop everything still running (session end). The clusters first: they decide nothing more,
   * and the steps on their chains and the decisions under way (a node's volumes being created,
   * a scale-down deleting them) are waited for, so that nothing they make comes after the
   * session's cleanup swept what it has.
   */
  async shutdown(): Promise<void> {
    this.stopped = true;
    this.unwatchClusters();
    this.releaseClusters?.();
    await Promise.all([...this.clusters.values()].map((flow) => flow.chain));
    while (this.clusterWork.size > 0) await Promise.all([...this.clusterWork]);
    for (const l of this.live.values()) {
      l.cancelExpiry?.();
      l.cancelWatchdog?.();
      await Promise.all(l.pendingRemovals);
      await l.compute?.kill().catch(() => {});
      await l.compute?.remove().catch(() => {});
    }
    for (const runId of this.live.keys()) removeRunInputs(this.p.session, runId);
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Put work on the run's chain (the runner's, runtime/effect-runner.ts). An error the handlers'
   * `failed` did not take (an append that failed) fails the run too. The promise resolves once
   * the run's end has been carried out when the work ended it.
   */
  private enqueue(runId: string, work: (extra: RunExtra) => Promise<unknown>): Promise<void> {
    const live = this.live.get(runId);
    if (!live) return Promise.reject(errors.notFound('run', runId));
    const extra: RunExtra = { runId, live };
    return work(extra)
      .then(
        () => {},
        (error: unknown) =>
          this.runner.execute(live.ctx, runStream(runId), (current) => (current ? [this.platformError(current.snapshot, error)] : []), extra).then(
            () => {},
            () => {},
          ),
      )
      .then(() => this.settle(runId, live))
      .catch((error: unknown) => {
        // After the session closed there is no log to write to: what was still in flight is no news.
        if (!this.stopped) throw error;
      });
  }

  /**
   * Waiters resume only once the end of the run has been carried out in full (token revoked,
   * node released, channel closed): what they do next (advance the clock, scale down) must see it.
   */
  private async settle(runId: string, live: LiveRun): Promise<void> {
    const { snapshot } = this.load(runId);
    if (!isTerminalStatus(runStatusOf(snapshot)) || (snapshot.context.node && !snapshot.context.nodeReleased)) return;
    // On a VM no node waits for the target's end: the run is done once its management code has
    // exited too, or a session closing behind it would kill the code on its way out.
    if (snapshot.context.computeType === 'VirtualMachine' && live.compute) return;
    // The channel closes once its target has gone too: its last calls are still carried.
    if (!live.compute) await this.closeChannel(runId, live).catch(() => {});
    // S4.2: a run that ended with no target left has no use for its decrypted inputs.
    if (!live.compute && snapshot.context.inputs?.length) removeRunInputs(this.p.session, runId);
    live.resolveDone();
  }

  private platformError(snapshot: RunSnapshot, error: unknown): RunEvent {
    const { runId, workspaceId, workspace, container } = snapshot.context;
    const reason = error instanceof Error ? error.message : String(error);
    // A run driven on after its simulator died that cannot start its target fails for the restart.
    const resumedFrom = this.live.get(runId)?.resumedFrom;
    if (resumedFrom && container === undefined) {
      return {
        type: 'RunFailed',
        data: { runId, workspaceId, workspace, reason: `PlatformRestarted: the simulator of session ${this.p.session} stopped while the run was ${resumedFrom}, and its start could not be carried out again: ${reason}` },
      };
    }
    return { type: 'RunFailed', data: { runId, workspaceId, workspace, reason: `platform error: ${reason}` } };
  }

  private ref(runId: string) {
    const submitted = this.load(runId).snapshot.context;
    return { runId, workspaceId: submitted.workspaceId, workspace: submitted.workspace };
  }

  /** The run ended: its channel stops carrying its calls (a container's socket goes). Once; a second caller waits for the first. */
  private closeChannel(runId: string, live: LiveRun): Promise<void> {
    const channel = live.channel;
    if (!channel) return Promise.resolve();
    live.closing ??= (async () => {
      await this.deps.channels.unbind(channel.id, runId);
      await this.runner.execute(live.ctx, runStream(runId), () => [{ type: 'RunChannelClosed', data: { ...this.ref(runId), channel: channel.id, kind: channel.kind } }], { runId, live });
    })();
    return live.closing;
  }

  /** One handler per effect of the run statechart, each returning the facts it came to (runtime/effect-runner.ts appends them). */
  private handlers(): OutcomeHandlers<typeof runAggregate, RunExtra, RunEvent | RunNote> {
    const refOf = (run: RunSnapshot['context']) => ({ runId: run.runId, workspaceId: run.workspaceId, workspace: run.workspace });
    return {
      issueRunToken: async (_effect, { snapshot, runId, live }) => {
        const run = snapshot.context;
        const ref = refOf(run);
        // S1.3: a short-lived token scoped to the workspace, for the compute target only, and
        // bound to the run's own control-plane channel (on a VM: the VM's), opened first.
        const channel = run.computeType === 'VirtualMachine' ? this.deps.vms.channelOf(this.cluster(run.workspaceId, run.compute)) : await this.deps.channels.open('container');
        live.channel = channel;
        this.deps.channels.bind(channel.id, runId);
        return [{ type: 'RunChannelOpened', data: { ...ref, channel: channel.id, kind: channel.kind, socket: channel.socketPath } }, this.issueToken(runId, live, channel)];
      },
      // S8.3 managed step 1: dependencies installed with npm into the image, the build log kept with the run (run-environment.ts).
      prepareImage: async (_effect, { snapshot }) => prepareRunImage(await this.deps.driver(), this.p, snapshot.context),
      writeManagementCode: (_effect, { snapshot, runId }) => {
        const run = snapshot.context;
        // S8.3 managed step 2: the management code goes to the user's Azure Files share.
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const share = this.p.storage.fileShareDir(identity, ws.storageAccount!, ws.fileShare!);
        const relative = join('azureml', runId, 'agent');
        for (const f of agentFiles()) {
          const target = join(share, relative, f.path.replace(/^\/amlsim\/agent\//, ''));
          mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
          copyFileSync(f.hostPath, target);
        }
        // The run's user reads it (it is mounted read-only); nobody else on the host reaches the share.
        grantTargetRead(join(share, relative));
        return [{ type: 'ManagementCodeWritten', data: { ...refOf(run), fileShare: ws.fileShare!, path: relative } }];
      },
      requestNode: (_effect, { runId }) => {
        this.requestNode(runId);
        return [];
      },
      startContainer: (effect, { runId, live, effectId }) => this.startContainer(runId, live, effect.params.node, effectId),
      startOnVm: (_effect, { runId, live }) => this.startOnVm(runId, live),
      stopRun: (effect, { snapshot, live }) => {
        const run = snapshot.context;
        if (!effect.params.hasContainer) return [{ type: 'RunCanceled', data: { ...refOf(run), ...(run.reason ? { reason: run.reason } : {}) } }];
        // The heartbeat now answers cancelRequested; a container that does not stop in time is killed.
        const compute = live.compute;
        if (compute) setTimeout(() => void compute.kill().catch(() => {}), 5_000).unref();
        return [];
      },
      finishRun: (effect, { snapshot }) => {
        const ref = refOf(snapshot.context);
        const { outcome, reason } = effect.params;
        if (outcome === 'Completed') return [{ type: 'RunCompleted', data: ref }];
        if (outcome === 'Canceled') return [{ type: 'RunCanceled', data: { ...ref, ...(reason ? { reason } : {}) } }];
        return [{ type: 'RunFailed', data: { ...ref, reason: reason ?? 'unknown' } }];
      },
      revokeRunToken: (effect, { snapshot, live }) => {
        const { tokenId } = effect.params;
        live.cancelExpiry?.();
        if (!tokenId || snapshot.context.tokenExpired) return [];
        return [{ type: 'RunTokenRevoked', data: { ...refOf(snapshot.context), tokenId } }];
      },
      releaseNode: (effect, { snapshot, runId }) => {
        const run = snapshot.context;
        const { node } = effect.params;
        if (!node) return [];
        // The cluster hears of it from the log and decides where the node goes next.
        return [{ type: 'NodeReleased', data: { ...refOf(run), computeId: run.computeId, compute: run.compute, node, runId } }];
      },
    };
  }

  // ---- the cluster side (AmlCompute, S8.3 managed, S4.6) ---------------------------------------

  private cluster(workspaceId: string, compute: string): ComputeRecord {
    const c = this.p.world.computes.byKey[computeKey(workspaceId, compute)];
    if (!c) throw errors.notFound('compute', compute);
    return c;
  }

  private computeCtx(runId?: string): CommandContext {
    return (runId && this.live.get(runId)?.ctx) || new CommandContext('Cluster', this.p.ids.next('cmd'), this.p.store, this.p.clock, this.p.session);
  }

  /** The workflow of an AmlCompute cluster, from its spec in the computes read model on first use. */
  private clusterFlow(workspaceId: string, compute: string): ClusterFlow {
    const key = computeKey(workspaceId, compute);
    let flow = this.clusters.get(key);
    if (!flow) {
      flow = { state: initialClusterState(this.cluster(workspaceId, compute)), chain: Promise.resolve() };
      this.clusters.set(key, flow);
    }
    return flow;
  }

  /**
   * This session's facts move the clusters they are about; a run's end (which names no
   * compute) goes to every cluster, and those it does not concern ignore it.
   */
  private clusterFacts(events: StoredEvent[]): void {
    for (const e of events) {
      if (e.meta.session !== this.p.session) continue;
      const fact = clusterFactOf(e);
      if (!fact) continue;
      const about = clusterOfFact(fact);
      if (!about) {
        for (const flow of this.clusters.values()) void this.stepClusterFlow(flow, fact).catch(() => {});
        continue;
      }
      if (this.p.world.computes.byKey[computeKey(about.workspaceId, about.compute)]?.type !== 'AmlCompute') continue;
      void this.stepClusterFlow(this.clusterFlow(about.workspaceId, about.compute), fact).catch(() => {});
    }
  }

  /**
   * One step of a cluster's workflow on its chain: fold the input, decide, fold the decisions
   * (a promised node is state from here on), then carry them out in order. The chain waits
   * only for the step, never for a run's chain or a driver; the promise returned also waits
   * for the decisions to be carried out, as a timer that fires must. No run's chain ever
   * waits for that promise (a run asking for a node does not), so it may wait on a run. An
   * input given as a function is made when its turn comes (a resumed cluster's first step,
   * foldClusters). Once the session is shutting down, a cluster decides nothing more; what it
   * decided before is carried out to its end and waited for (`clusterWork`, `shutdown`).
   */
  private stepClusterFlow(flow: ClusterFlow, input: ClusterInput | (() => ClusterInput)): Promise<void> {
    let effects: Promise<void> = Promise.resolve();
    const step = flow.chain.then(() => {
      if (this.stopped) return;
      const { state, decisions } = stepCluster(flow.state, typeof input === 'function' ? input() : input);
      flow.state = state;
      effects = decisions.reduce((done, d) => done.then(() => this.carryOut(flow, d)), Promise.resolve());
      const work = effects.catch(() => {});
      this.clusterWork.add(work);
      void work.then(() => this.clusterWork.delete(work));
    });
    flow.chain = step.catch(() => {});
    return step.then(() => effects).then(() => {});
  }

  /** Carry out one decision of a cluster's workflow. Facts about a run go through its own chain. */
  private carryOut(flow: ClusterFlow, d: ClusterDecision): Promise<void> {
    const c = flow.state.spec;
    const ids = { computeId: c.computeId, compute: c.compute };
    switch (d.type) {
      case 'QueueRun':
        // Awaited (RunQueued carries no effect): the run is queued in the log before a node is provisioned for it.
        return this.recordQuietly(d.runId, () => [{ type: 'RunQueued', data: { ...this.ref(d.runId), compute: c.compute, position: d.position } }]);
      case 'AssignNode': {
        // Not awaited: the run may be the one whose chain asked for a node. The promise holds
        // until the assignment is recorded; if the run did not take the node, it lapses.
        void this.recordQuietly(d.runId, () => [{ type: 'NodeAssigned', data: { ...this.ref(d.runId), ...ids, node: d.node, runId: d.runId } }])
          .then(() => this.stepClusterFlow(flow, { type: 'AssignmentSettled', node: d.node, runId: d.runId, atMs: this.p.clock.now() }))
          .catch(() => {});
        return Promise.resolve();
      }
      case 'FailRun':
        void this.recordQuietly(d.runId, () => [{ type: 'RunFailed', data: { ...this.ref(d.runId), reason: d.reason } }]);
        return Promise.resolve();
      case 'ProvisionNode':
        return this.provisionNode(c, d.node, d.forRun);
      case 'ResumeProvisioning':
        return this.provisionNode(c, d.node, d.forRun, { again: true });
      case 'ScheduleScaleDown':
        this.deps.scheduler.at(d.dueAtMs, () => this.stepClusterFlow(flow, { type: 'ScaleDownDue', node: d.node, atMs: this.p.clock.now() }));
        return Promise.resolve();
      case 'DeprovisionNode':
        return this.deprovisionNode(c, d);
      case 'ResumeDeprovisioning':
        return this.deprovisionNode(c, d);
      case 'RemoveUnusableNode':
        this.computeCtx().emitAsPlatform(computeStream(c.computeId), 'any', [
          { type: 'NodeDeprovisioned', data: { workspaceId: c.workspaceId, workspace: c.workspace, ...ids, node: d.node, osDiskDeleted: true, reason: d.reason } },
        ]);
        return Promise.resolve();
    }
  }

  /**
   * Record facts on a run's chain, not waiting for it: the cluster never waits on a run (the
   * run may be waiting on the cluster). A run that is gone takes nothing.
   */
  private recordQuietly(runId: string, facts: () => RunEvent[]): Promise<void> {
    if (!this.live.has(runId)) return Promise.resolve();
    return this.record(runId, facts()).catch(() => {});
  }

  private requestNode(runId: string): void {
    const run = this.load(runId).snapshot.context;
    const flow = this.clusterFlow(run.workspaceId, run.compute);
    // Not awaited: what the cluster decides for this run (RunQueued, NodeAssigned) goes through
    // this run's chain, which is busy with this very effect.
    void this.stepClusterFlow(flow, { type: 'RequestNode', runId, atMs: this.p.clock.now() }).catch(() => {});
  }

  /**
   * S4.6 scale-up: the node's disks are made; its outcome is a fact the cluster decides on.
   * `again`: its NodeProvisioningStarted is in the log already (a dead simulator's, carried on
   * by a resumed session); the disks are named after the node, so what it made is taken as made.
   */
  private async provisionNode(c: ClusterSpec, node: string, forRun: string, { again = false } = {}): Promise<void> {
    const ref = { workspaceId: c.workspaceId, workspace: c.workspace, computeId: c.computeId, compute: c.compute, node };
    const ctx = this.computeCtx(forRun);
    if (!again) ctx.emit(computeStream(c.computeId), 'any', [{ type: 'NodeProvisioningStarted', data: { ...ref, forRun } }]);
    let disks;
    try {
      const driver = await this.deps.driver();
      disks = await driver.provisionNode({ session: this.p.session, workspace: c.workspace, compute: c.compute, node });
    } catch (error) {
      // The node is unusable: the cluster removes it and fails the run it was for, if that one still waits.
      ctx.emit(computeStream(c.computeId), 'any', [{ type: 'NodeProvisioningFailed', data: { ...ref, reason: error instanceof Error ? error.message : String(error) } }]);
      return;
    }
    ctx.emit(computeStream(c.computeId), 'any', [
      { type: 'NodeProvisioned', data: { ...ref, osDisk: disks.osDisk, tempDisk: disks.tempDisk, osDiskEncrypted: true, tempDiskEncrypted: false } },
    ]);
  }

  /**
   * S4.6: after idleSecondsBeforeScaledown with nothing queued, the node goes and its OS disk is
   * deleted. A scale-down a dead simulator began (`ResumeDeprovisioning`: its
   * ClusterIdleTimeoutElapsed is in the log already) is finished; a disk already gone is no error.
   */
  private async deprovisionNode(c: ClusterSpec, d: Extract<ClusterDecision, { type: 'DeprovisionNode' | 'ResumeDeprovisioning' }>): Promise<void> {
    const ref = { workspaceId: c.workspaceId, workspace: c.workspace, computeId: c.computeId, compute: c.compute, node: d.node };
    const ctx = this.computeCtx();
    if (d.type === 'DeprovisionNode') {
      ctx.emitAsPlatform(computeStream(c.computeId), 'any', [{ type: 'ClusterIdleTimeoutElapsed', data: { ...ref, idleSince: new Date(d.idleSinceMs).toISOString() } }]);
    }
    const driver = await this.deps.driver();
    await driver.deprovisionNode({ osDisk: d.osDisk, tempDisk: d.tempDisk });
    ctx.emitAsPlatform(computeStream(c.computeId), 'any', [{ type: 'NodeDeprovisioned', data: { ...ref, osDiskDeleted: true, reason: d.reason } }]);
  }

  /** The management code's environment (docs/control-plane.md), less where it runs: the driver or VM adds the endpoint and work dir. */
  private managementEnv(runId: string): Record<string, string> {
    const live = this.live.get(runId)!;
    const run = this.load(runId).snapshot.context;
    const ws = this.p.world.workspaces.byId[run.workspaceId]!;
    return {
      AZUREML_RUN_TOKEN: live.token!,
      AZUREML_RUN_TOKEN_EXPIRY: String(Math.floor(live.tokenExpiresAtMs! / 1000)),
      AZUREML_RUN_ID: runId,
      AZUREML_ARM_SUBSCRIPTION: ws.subscription,
      AZUREML_ARM_RESOURCEGROUP: ws.resourceGroup,
      AZUREML_ARM_WORKSPACE_NAME: ws.workspace,
      AZUREML_ARM_PROJECT_NAME: run.experiment,
      AMLSIM_SCRIPT: run.script,
      AMLSIM_ARGS: JSON.stringify(run.args),
      AMLSIM_USER_ENV: JSON.stringify(live.userEnv),
      AMLSIM_HEARTBEAT_MS: String(HEARTBEAT_INTERVAL_MS),
    };
  }

  private async startContainer(runId: string, live: LiveRun, node: string, effectId: string): Promise<Array<RunEvent | RunNote>> {
    const run = this.load(runId).snapshot.context;
    const c = this.cluster(run.workspaceId, run.compute);
    const n = c.nodes[node]!;
    const ws = this.p.world.workspaces.byId[run.workspaceId]!;
    const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
    // S4.2: the run's inputs, read with the workspace identity and decrypted, before anything of
    // its target is made; a refusal (a revoked storage grant) fails the run saying which datastore
    // and why, and no target sees any data.
    let inputs: ReturnType<typeof mountRunInputs> = [];
    try {
      inputs = mountRunInputs(this.p.storage, identity, ws, this.p.session, runId, run.inputs ?? []);
    } catch (error) {
      return [{ type: 'RunFailed', data: { ...this.ref(runId), reason: error instanceof Error ? error.message : String(error) } }];
    }
    const share = this.p.storage.fileShareDir(identity, ws.storageAccount!, ws.fileShare!);
    const driver = await this.deps.driver();
    // Managed compute: the platform watches the target itself (engine liveness, `heartbeatLost`),
    // so the script runs on the management code's own thread, a Node environment cheaper than
    // a thread of its own (packages/agent/management/management.cjs "runOnMainThread").
    const env: Record<string, string> = { ...this.managementEnv(runId), AMLSIM_SCRIPT_HOST: 'main' };
    const mounts = inputs.map((i) => ({ hostPath: i.hostPath, targetPath: driver.kind === 'process' ? i.hostPath : `${RUN_INPUTS_ROOT}/${i.spec.name}`, readOnly: i.readOnly }));
    mounts.forEach((m, k) => (env[dataReferenceVariable(inputs[k]!.spec.name)] = m.targetPath));
    const compute = await driver.startRun({
      session: this.p.session,
      runId,
      effectId,
      workspace: ws.workspace,
      image: this.load(runId).snapshot.context.image ?? '',
      node: { name: node, disks: { osDisk: n.osDisk!, tempDisk: n.tempDisk! } },
      agentDir: join(share, 'azureml', runId, 'agent'),
      controlDir: live.channel!.dir,
      socketName: live.channel!.socketName,
      env,
      memoryBytes: c.memoryBytes,
      nanoCpus: 1_000_000_000,
      ...(mounts.length ? { mounts } : {}),
      // S3.1: a cluster in a VNet: its node joins the VNet's loopback-only namespace.
      ...(c.vnet !== undefined && this.p.world.computes.vnets[c.vnet] ? { vnetHolder: this.p.world.computes.vnets[c.vnet]!.holder } : {}),
    });
    live.compute = compute;
    // The runner appends ContainerStarted as this returns, before anything of the container (its
    // exit, a heartbeat missed, a fault's effect) can be recorded: those go through the run's
    // chain, behind this effect.
    this.armWatchdog(runId, FIRST_HEARTBEAT_GRACE_MS);
    if (this.p.faults.take('killContainer', runId)) void compute.kill().catch(() => {});
    if (this.p.faults.take('freezeContainer', runId)) void compute.freeze().catch(() => {});
    this.watchContainer(runId, node, compute);
    return [
      ...inputs.map((i, k): RunNote => ({
        type: 'RunInputMounted',
        data: {
          ...this.ref(runId),
          input: i.spec.name,
          datastore: i.spec.datastore,
          container: i.spec.container,
          path: i.spec.path,
          mode: i.spec.mode,
          mountPath: mounts[k]!.targetPath,
          files: i.files,
          bytes: i.bytes,
          fingerprint: i.fingerprint,
        },
      })),
      { type: 'ContainerStarted', data: { ...this.ref(runId), node, container: compute.id, image: run.image ?? '', driver: driver.kind } },
    ];
  }

  /** The container's exit is the run's next fact (however long it runs, and whichever session started it). */
  private watchContainer(runId: string, node: string, compute: RunningCompute): void {
    const live = this.live.get(runId)!;
    void compute.wait().then(async ({ exitCode, oomKilled }) => {
      live.compute = undefined;
      // S4.2: the decrypted inputs go with the container that saw them.
      if (this.load(runId).snapshot.context.inputs?.length) removeRunInputs(this.p.session, runId);
      // The exit is the fact; removing the stopped container is housekeeping that need not delay
      // the run's outcome (session cleanup and the leftovers invariant make sure it happens).
      const removed = compute.remove().catch(() => {});
      live.pendingRemovals.push(removed);
      await this.record(runId, [{ type: 'ContainerExited', data: { ...this.ref(runId), node, exitCode, oomKilled } }]);
    }, () => {
      // Its container was removed before it could be inspected (session shutdown): nothing left to record.
    });
  }

  // ---- the unmanaged side (an attached VM, S8.3, S6.2) -------------------------------------------

  /**
   * The platform takes its key from the platform vault, logs in to the VM (the VM verifies the
   * signature against its authorized keys) and starts the management code there with the run
   * token. No image build, file share or node queue: the VM is the user's and always there.
   * The four steps the management code then takes are recorded from its control-plane calls.
   */
  private async startOnVm(runId: string, live: LiveRun): Promise<RunEvent[]> {
    const run = this.load(runId).snapshot.context;
    const started = await this.deps.vms.startManagement(this.cluster(run.workspaceId, run.compute), runId, this.managementEnv(runId));
    const ref = this.ref(runId);
    const who = { vmId: started.vmId, vm: started.vm, username: started.username, fingerprint: started.fingerprint };
    if (!started.ok) return [{ type: 'VmLoginRefused', data: { ...ref, ...who, reason: started.reason } }];
    const { pid, process: management } = started;
    live.compute = management;
    // As for a container: the runner appends these as this returns, before the code's exit can be recorded.
    if (this.p.faults.take('killContainer', runId)) void management.kill().catch(() => {});
    this.watchManagement(runId, started.vm, pid, management);
    return [
      { type: 'VmLoginSucceeded', data: { ...ref, ...who } },
      { type: 'ManagementCodeStarted', data: { ...ref, vm: started.vm, pid, workDir: started.workDir } },
    ];
  }

  /** The management code's exit is the run's next fact (however long it runs, and whichever session started it). */
  private watchManagement(runId: string, vm: string, pid: number, management: RunningCompute): void {
    const live = this.live.get(runId)!;
    void management.wait().then(async ({ exitCode }) => {
      live.compute = undefined;
      await this.record(runId, [{ type: 'ManagementCodeExited', data: { ...this.ref(runId), vm, pid, exitCode } }]);
    }, () => {
      // The VM went away before the code ended (session shutdown): nothing left to record, and
      // nothing more to wait for.
      live.compute = undefined;
      void this.settle(runId, live).catch(() => {});
    });
  }
}
