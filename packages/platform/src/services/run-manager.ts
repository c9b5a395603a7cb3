import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  advanceRun,
  computeKey,
  errors,
  foldRun,
  isTerminalStatus,
  runStatusOf,
  STREAMS,
  startRun,
  type ComputeRecord,
  type Effect,
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
import type { Scheduler } from '../runtime/scheduler';
import type { PlatformContext } from '../runtime/platform-context';
import { setLongTimeout, type LongTimeout } from '../runtime/long-timeout';
import type { RunTokenService } from './run-tokens';
import type { SnapshotStore } from './snapshots';
import type { VirtualMachineService } from './virtual-machines';

type RunEvent = Extract<EventToAppend, { type: RunMachineEvent['type'] }>;

export const runStream = STREAMS.run;
export const computeStream = STREAMS.compute;

/** Everything a run needs that is not in its events (secrets and live handles stay in memory). */
type LiveRun = {
  ctx: CommandContext;
  token?: string;
  tokenExpiresAtMs?: number;
  cancelExpiry?: () => void;
  compute?: RunningCompute;
  /** Serializes the run's appends and effects: one fact at a time per run. */
  chain: Promise<void>;
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
  channelClosed?: boolean;
};

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
  channels: Pick<ControlPlane, 'open' | 'bind' | 'unbind'>;
  runTokenTtlMs: number;
  /** Attached VMs (S8.3 unmanaged): the login to them and the management code on them. */
  vms: VirtualMachineService;
};

/**
 * The run process manager (S1.3, S8.3, S8.4, S4.6): feeds each run's facts to the run
 * statechart and carries out the effects it names, and runs the cluster side — queueing,
 * node provisioning and scale-down — from the computes read model. All of a run's facts go
 * through one chain, so facts from effects and from the control plane never interleave.
 */
export class RunManager {
  private readonly live = new Map<string, LiveRun>();
  /** Queued runs a node has been given to, and those nodes, until the assignment is recorded. */
  private readonly assigning = new Set<string>();
  private readonly reservedNodes = new Set<string>();

  constructor(
    private readonly p: PlatformContext,
    private readonly deps: RunManagerDeps,
  ) {}

  // ---- the run aggregate -------------------------------------------------------------------

  load(runId: string): { snapshot: RunSnapshot; history: RunStatus[]; events: StoredEvent[] } {
    const events = this.p.store.readStream(runStream(runId));
    const folded = foldRun(events);
    if (!folded) throw errors.notFound('run', runId);
    return { ...folded, events };
  }

  /** Start a run: RunSubmitted, then the machine takes over (S8.3). */
  start(ctx: CommandContext, submitted: EventDataMap['RunSubmitted'], userEnv: Record<string, string>, region: string): void {
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const liveCtx = new CommandContext(ctx.command, ctx.correlationId, this.p.store, this.p.clock, this.p.session);
    liveCtx.principal = ctx.principal;
    const live: LiveRun = { ctx: liveCtx, chain: Promise.resolve(), done, resolveDone, userEnv, region, pendingRemovals: [] };
    this.live.set(submitted.runId, live);
    ctx.emit(runStream(submitted.runId), 'no-stream', [{ type: 'RunSubmitted', data: submitted }]);
    const [, effects] = startRun(submitted);
    this.enqueue(submitted.runId, () => this.perform(submitted.runId, effects));
  }

  /**
   * Append facts to a run (in order, after what is already queued) and carry out what they
   * cause. `caller`: the channel and token of the control-plane call that reported them.
   */
  record(runId: string, facts: RunEvent[], caller?: ControlPlaneCaller): Promise<void> {
    return this.enqueue(runId, () => this.applyNow(runId, facts, caller));
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

  /** Stop everything still running (session end). */
  async shutdown(): Promise<void> {
    for (const l of this.live.values()) {
      l.cancelExpiry?.();
      l.cancelWatchdog?.();
      await Promise.all(l.pendingRemovals);
      await l.compute?.kill().catch(() => {});
      await l.compute?.remove().catch(() => {});
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  private enqueue(runId: string, work: () => Promise<void>): Promise<void> {
    const live = this.live.get(runId);
    if (!live) return Promise.reject(errors.notFound('run', runId));
    const next = live.chain
      .then(work)
      .catch((error: unknown) => {
        // An effect failing unexpectedly fails the run rather than leaving it hanging.
        const reason = error instanceof Error ? error.message : String(error);
        return this.applyNow(runId, [{ type: 'RunFailed', data: { ...this.ref(runId), reason: `platform error: ${reason}` } }]).catch(() => {});
      })
      .then(async () => {
        // Waiters resume only once the end of the run has been carried out in full (token
        // revoked, node released, channel closed): what they do next (advance the clock, scale
        // down) must see it.
        const { snapshot } = this.load(runId);
        if (!isTerminalStatus(runStatusOf(snapshot)) || (snapshot.context.node && !snapshot.context.nodeReleased)) return;
        // The channel closes once its target has gone too: its last calls are still carried.
        if (!live.compute) await this.closeChannel(runId).catch(() => {});
        live.resolveDone();
      });
    live.chain = next;
    return next;
  }

  private ref(runId: string) {
    const submitted = this.load(runId).snapshot.context;
    return { runId, workspaceId: submitted.workspaceId, workspace: submitted.workspace };
  }

  /** The run ended: its channel stops carrying its calls (a container's socket goes). */
  private async closeChannel(runId: string): Promise<void> {
    const live = this.live.get(runId)!;
    const channel = live.channel;
    if (!channel || live.channelClosed) return;
    live.channelClosed = true;
    await this.deps.channels.unbind(channel.id, runId);
    live.ctx.emit(runStream(runId), 'any', [{ type: 'RunChannelClosed', data: { ...this.ref(runId), channel: channel.id, kind: channel.kind } }]);
  }

  /** Append facts the machine accepts now, and run the effects they name. */
  private async applyNow(runId: string, facts: RunEvent[], caller?: ControlPlaneCaller): Promise<void> {
    const live = this.live.get(runId)!;
    const { snapshot } = this.load(runId);
    let current = snapshot;
    const effects: Effect[] = [];
    const accepted: RunEvent[] = [];
    for (const fact of facts) {
      const machineEvent = { type: fact.type, ...fact.data } as RunMachineEvent;
      if (!current.can(machineEvent)) continue; // e.g. a late report after the run ended
      const [next, named] = advanceRun(current, machineEvent);
      current = next;
      accepted.push(fact);
      effects.push(...named);
    }
    if (accepted.length === 0) return;
    live.ctx.emit(runStream(runId), this.p.store.streamVersion(runStream(runId)), accepted, caller);
    await this.perform(runId, effects);
  }

  private async perform(runId: string, effects: Effect[]): Promise<void> {
    for (const effect of effects) await this.effect(runId, effect);
  }

  private async effect(runId: string, effect: Effect): Promise<void> {
    const live = this.live.get(runId)!;
    const run = this.load(runId).snapshot.context;
    const ref = { runId, workspaceId: run.workspaceId, workspace: run.workspace };
    switch (effect.type) {
      case 'issueRunToken': {
        // S1.3: a short-lived token scoped to the workspace, for the compute target only, and
        // bound to the run's own control-plane channel (on a VM: the VM's), opened first.
        const channel = run.computeType === 'VirtualMachine' ? this.deps.vms.channelOf(this.cluster(run.workspaceId, run.compute)) : await this.deps.channels.open('container');
        live.channel = channel;
        this.deps.channels.bind(channel.id, runId);
        live.ctx.emit(runStream(runId), 'any', [{ type: 'RunChannelOpened', data: { ...ref, channel: channel.id, kind: channel.kind, socket: channel.socketPath } }]);
        const issued = this.deps.tokens.issue({ ...ref, region: live.region }, this.deps.runTokenTtlMs, channel.id);
        live.token = issued.token;
        live.tokenExpiresAtMs = issued.expiresAtMs;
        live.cancelExpiry = this.deps.scheduler.at(issued.expiresAtMs, () =>
          this.record(runId, [{ type: 'RunTokenExpired', data: { ...ref, tokenId: issued.tokenId } }]),
        );
        return this.applyNow(runId, [
          { type: 'RunTokenIssued', data: { ...ref, tokenId: issued.tokenId, fingerprint: issued.fingerprint, expiresAt: new Date(issued.expiresAtMs).toISOString(), channel: channel.id } },
        ]);
      }
      case 'prepareImage': {
        const driver = await this.deps.driver();
        const image = await driver.prepareImage({ session: this.p.session, dependencies: run.dependencies });
        return this.applyNow(runId, [{ type: 'RunImagePrepared', data: { ...ref, image: image.image, reused: image.reused, dependencies: run.dependencies } }]);
      }
      case 'writeManagementCode': {
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
        return this.applyNow(runId, [{ type: 'ManagementCodeWritten', data: { ...ref, fileShare: ws.fileShare!, path: relative } }]);
      }
      case 'requestNode':
        return this.requestNode(runId);
      case 'startContainer': {
        const { node } = effect.params as { node: string };
        return this.startContainer(runId, node);
      }
      case 'startOnVm':
        return this.startOnVm(runId);
      case 'stopRun': {
        const { hasContainer } = effect.params as { hasContainer: boolean };
        if (!hasContainer) return this.applyNow(runId, [{ type: 'RunCanceled', data: { ...ref, ...(run.reason ? { reason: run.reason } : {}) } }]);
        // The heartbeat now answers cancelRequested; a container that does not stop in time is killed.
        const compute = live.compute;
        if (compute) setTimeout(() => void compute.kill().catch(() => {}), 5_000).unref();
        return;
      }
      case 'finishRun': {
        const { outcome, reason } = effect.params as { outcome: 'Completed' | 'Failed' | 'Canceled'; reason?: string };
        if (outcome === 'Completed') return this.applyNow(runId, [{ type: 'RunCompleted', data: ref }]);
        if (outcome === 'Canceled') return this.applyNow(runId, [{ type: 'RunCanceled', data: { ...ref, ...(reason ? { reason } : {}) } }]);
        return this.applyNow(runId, [{ type: 'RunFailed', data: { ...ref, reason: reason ?? 'unknown' } }]);
      }
      case 'revokeRunToken': {
        const { tokenId } = effect.params as { tokenId?: string };
        live.cancelExpiry?.();
        if (!tokenId || this.load(runId).snapshot.context.tokenExpired) return;
        return this.applyNow(runId, [{ type: 'RunTokenRevoked', data: { ...ref, tokenId } }]);
      }
      case 'releaseNode': {
        const { node } = effect.params as { node?: string };
        if (!node) return;
        await this.applyNow(runId, [{ type: 'NodeReleased', data: { ...ref, computeId: run.computeId, compute: run.compute, node, runId } }]);
        return this.nodeFreed(run.workspaceId, run.compute, node);
      }
    }
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

  private async requestNode(runId: string): Promise<void> {
    const run = this.load(runId).snapshot.context;
    const c = this.cluster(run.workspaceId, run.compute);
    // A node already promised to a queued run is not idle, whatever the log says yet.
    const idle = Object.values(c.nodes).find((n) => n.state === 'idle' && !this.reservedNodes.has(`${c.computeId}/${n.node}`));
    if (idle && c.queue.length === 0) return this.assign(runId, idle.node);
    await this.applyNow(runId, [{ type: 'RunQueued', data: { runId, workspaceId: run.workspaceId, workspace: run.workspace, compute: run.compute, position: c.queue.length + 1 } }]);
    if (idle) return this.assignNext(run.workspaceId, run.compute, idle.node);
    if (Object.keys(c.nodes).length < c.maxNodes) await this.provisionNode(runId, c);
  }

  private async provisionNode(runId: string, c: ComputeRecord): Promise<void> {
    const node = `node-${c.nodeCount + 1}`;
    const ref = { workspaceId: c.workspaceId, workspace: c.workspace, computeId: c.computeId, compute: c.compute, node };
    const ctx = this.computeCtx(runId);
    ctx.emit(computeStream(c.computeId), 'any', [{ type: 'NodeProvisioningStarted', data: { ...ref, forRun: runId } }]);
    const driver = await this.deps.driver();
    let disks;
    try {
      disks = await driver.provisionNode({ session: this.p.session, workspace: c.workspace, compute: c.compute, node });
    } catch (error) {
      // The node is unusable and goes; the run that asked for it fails with the reason.
      const reason = error instanceof Error ? error.message : String(error);
      ctx.emit(computeStream(c.computeId), 'any', [
        { type: 'NodeProvisioningFailed', data: { ...ref, reason } },
        { type: 'NodeDeprovisioned', data: { ...ref, osDiskDeleted: true, reason: 'provisioning failed' } },
      ]);
      await this.applyNow(runId, [{ type: 'RunFailed', data: { runId, workspaceId: c.workspaceId, workspace: c.workspace, reason: `node provisioning failed: ${reason}` } }]);
      return;
    }
    ctx.emit(computeStream(c.computeId), 'any', [
      { type: 'NodeProvisioned', data: { ...ref, osDisk: disks.osDisk, tempDisk: disks.tempDisk, osDiskEncrypted: true, tempDiskEncrypted: false } },
    ]);
    await this.assignNext(c.workspaceId, c.compute, node);
  }

  /** Give an idle node to the oldest queued run, or let it idle towards scale-down. */
  private async assignNext(workspaceId: string, compute: string, node: string): Promise<void> {
    const c = this.cluster(workspaceId, compute);
    // The oldest queued run that no other node is already on its way to: two nodes freed at
    // once must not both go to the head of the queue (one would never come back).
    const next = c.queue.find((runId) => !this.assigning.has(runId));
    const reservation = `${c.computeId}/${node}`;
    if (this.reservedNodes.has(reservation)) return; // already promised to a run
    if (next) {
      this.assigning.add(next);
      this.reservedNodes.add(reservation);
      // The run's own chain records the assignment, in order with its other facts. Not awaited:
      // this may be running on that very chain (the run that asked for the node).
      void this.record(next, [{ type: 'NodeAssigned', data: { ...this.ref(next), computeId: c.computeId, compute, node, runId: next } }]).finally(() => {
        this.assigning.delete(next);
        this.reservedNodes.delete(reservation);
        // The run may have left the queue meanwhile (canceled): then the node is still free.
        const now = this.cluster(workspaceId, compute);
        if (now.nodes[node]?.state === 'idle' && !now.queue.includes(next)) void this.assignNext(workspaceId, compute, node).catch(() => {});
      });
      return;
    }
    this.scheduleScaleDown(c, node);
  }

  private assign(runId: string, node: string): Promise<void> {
    const run = this.load(runId).snapshot.context;
    return this.applyNow(runId, [{ type: 'NodeAssigned', data: { runId, workspaceId: run.workspaceId, workspace: run.workspace, computeId: run.computeId, compute: run.compute, node } }]);
  }

  private async nodeFreed(workspaceId: string, compute: string, node: string): Promise<void> {
    // Not on the finished run's chain: the next run's facts go through its own.
    void this.assignNext(workspaceId, compute, node).catch(() => {});
  }

  /** S4.6: after idleSecondsBeforeScaledown with nothing queued, the node goes and its OS disk is deleted. */
  private scheduleScaleDown(c: ComputeRecord, node: string): void {
    const idleSince = this.p.clock.now();
    this.deps.scheduler.at(idleSince + c.idleSecondsBeforeScaledown * 1000, async () => {
      const now = this.cluster(c.workspaceId, c.compute);
      const n = now.nodes[node];
      const idleNodes = Object.values(now.nodes).length;
      if (!n || n.state !== 'idle' || now.queue.length > 0 || idleNodes <= now.minNodes) return;
      if (n.idleSince && Date.parse(n.idleSince) > idleSince) return; // it worked since; a newer timer owns it
      const ref = { workspaceId: c.workspaceId, workspace: c.workspace, computeId: c.computeId, compute: c.compute, node };
      const ctx = this.computeCtx();
      ctx.emitAsPlatform(computeStream(c.computeId), 'any', [{ type: 'ClusterIdleTimeoutElapsed', data: { ...ref, idleSince: new Date(idleSince).toISOString() } }]);
      const driver = await this.deps.driver();
      await driver.deprovisionNode({ osDisk: n.osDisk!, tempDisk: n.tempDisk! });
      ctx.emitAsPlatform(computeStream(c.computeId), 'any', [
        { type: 'NodeDeprovisioned', data: { ...ref, osDiskDeleted: true, reason: `idle for ${c.idleSecondsBeforeScaledown}s with no run queued (S4.6)` } },
      ]);
    });
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

  private async startContainer(runId: string, node: string): Promise<void> {
    const live = this.live.get(runId)!;
    const run = this.load(runId).snapshot.context;
    const c = this.cluster(run.workspaceId, run.compute);
    const n = c.nodes[node]!;
    const ws = this.p.world.workspaces.byId[run.workspaceId]!;
    const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
    const share = this.p.storage.fileShareDir(identity, ws.storageAccount!, ws.fileShare!);
    const driver = await this.deps.driver();
    const env = this.managementEnv(runId);
    const compute = await driver.startRun({
      session: this.p.session,
      runId,
      workspace: ws.workspace,
      image: this.load(runId).snapshot.context.image ?? '',
      node: { name: node, disks: { osDisk: n.osDisk!, tempDisk: n.tempDisk! } },
      agentDir: join(share, 'azureml', runId, 'agent'),
      controlDir: live.channel!.dir,
      socketName: live.channel!.socketName,
      env,
      memoryBytes: c.memoryBytes,
      nanoCpus: 1_000_000_000,
    });
    live.compute = compute;
    await this.applyNow(runId, [{ type: 'ContainerStarted', data: { ...this.ref(runId), node, container: compute.id, image: run.image ?? '', driver: driver.kind } }]);
    this.armWatchdog(runId, FIRST_HEARTBEAT_GRACE_MS);
    if (this.p.faults.take('killContainer', runId)) void compute.kill().catch(() => {});
    if (this.p.faults.take('freezeContainer', runId)) void compute.freeze().catch(() => {});
    void compute.wait().then(async ({ exitCode, oomKilled }) => {
      live.compute = undefined;
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
  private async startOnVm(runId: string): Promise<void> {
    const live = this.live.get(runId)!;
    const run = this.load(runId).snapshot.context;
    const started = await this.deps.vms.startManagement(this.cluster(run.workspaceId, run.compute), runId, this.managementEnv(runId));
    const ref = this.ref(runId);
    const who = { vmId: started.vmId, vm: started.vm, username: started.username, fingerprint: started.fingerprint };
    if (!started.ok) return this.applyNow(runId, [{ type: 'VmLoginRefused', data: { ...ref, ...who, reason: started.reason } }]);
    const { pid, process: management } = started;
    live.compute = management;
    await this.applyNow(runId, [
      { type: 'VmLoginSucceeded', data: { ...ref, ...who } },
      { type: 'ManagementCodeStarted', data: { ...ref, vm: started.vm, pid, workDir: started.workDir } },
    ]);
    if (this.p.faults.take('killContainer', runId)) void management.kill().catch(() => {});
    void management.wait().then(async ({ exitCode }) => {
      live.compute = undefined;
      await this.record(runId, [{ type: 'ManagementCodeExited', data: { ...this.ref(runId), vm: started.vm, pid, exitCode } }]);
    }, () => {
      // The VM went away before the code ended (session shutdown): nothing left to record.
    });
  }
}
