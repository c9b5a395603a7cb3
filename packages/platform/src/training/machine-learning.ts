import type { ComputeRecord } from '@amlsim/core';
import { customAlphabet } from 'nanoid';
import {
  actions,
  computeKey,
  errors,
  isTerminalStatus,
  runStatusOf,
  type RunStatus,
  type WorkspaceRecord,
  STREAMS,
  workspaceAccepts,
} from '@amlsim/core';
import type { ComputeDriver } from '../compute/compute-driver';
import type { VnetService } from '../compute/vnets';
import { declareCommand, type CommandContext, type EventToAppend } from '../runtime/command-bus';
import type { DataPlane, PlatformRuntime } from '../platform-context';
import type { ArmService } from '../arm/arm';
import { computeStream, type RunManager } from './run-manager';
import { packDirectory, type SnapshotStore } from './snapshots';
import { blobsUnder, datastorePath, resolveRunInputs, uploadDatastoreFiles } from './datastores';
import { checkDependencies } from '../compute/environments';

/**
 * Simulated VM sizes (S8.3, S4.6). Memory is scaled down 1:14 so a laptop can hold a cluster;
 * the ratio between sizes is Azure's.
 */
export const VM_SIZES: Readonly<Record<string, { azureMemoryGiB: number; memoryBytes: number }>> = {
  STANDARD_DS1_V2: { azureMemoryGiB: 3.5, memoryBytes: 256 * 2 ** 20 },
  STANDARD_DS2_V2: { azureMemoryGiB: 7, memoryBytes: 512 * 2 ** 20 },
  STANDARD_DS3_V2: { azureMemoryGiB: 14, memoryBytes: 1024 * 2 ** 20 },
  STANDARD_D2_V3: { azureMemoryGiB: 8, memoryBytes: 585 * 2 ** 20 },
  STANDARD_NC6: { azureMemoryGiB: 56, memoryBytes: 4096 * 2 ** 20 },
};
export const DEFAULT_VM_SIZE = 'STANDARD_DS2_V2';

const runSuffix = customAlphabet('0123456789abcdef', 8);

export type SubmitRunArgs = {
  workspace: string;
  /** The run's id, where the client names it (an ARM job's name is its run id); default `<experiment>_<epoch s>_<hex>`. */
  runId?: string;
  experiment: string;
  compute: string;
  source?: string;
  snapshotId?: string;
  script: string;
  args?: string[];
  env?: Record<string, string>;
  dependencies?: string[];
  /**
   * S4.2: data of the workspace's datastores the run's target sees, by input name: the files
   * under `path` (default: the whole datastore) of an attached `datastore`, `mode` mount (the
   * default: read-only) or download (a writable copy). The script finds each at the path
   * AZUREML_DATAREFERENCE_<name> gives (/mnt/azureml/inputs/<name> in a container).
   */
  inputs?: Record<string, { datastore: string; path?: string; mode?: 'mount' | 'download' }>;
};

/** What the machine-learning service uses of the platform (wired by createPlatform). */
export type MachineLearningDeps = Pick<PlatformRuntime, 'bus' | 'clock' | 'ids' | 'store' | 'world'> & Pick<DataPlane, 'storage'>;

/**
 * The AML service's training API (S8.2–S8.4): compute targets, snapshots and runs, behind the
 * same authentication and RBAC as every ARM call (S2.2 rows: create compute, run experiment,
 * view runs/metrics).
 */
export class MachineLearningService {
  constructor(
    private readonly p: MachineLearningDeps,
    private readonly arm: ArmService,
    private readonly runs: RunManager,
    private readonly snapshots: SnapshotStore,
    private readonly driver: () => Promise<ComputeDriver>,
    /** S3.1: the virtual networks compute joins. */
    private readonly vnets?: VnetService,
  ) {}

  /** A run's commands act in the run's workspace (an unknown run is refused: ResourceNotFound). */
  private inRunWorkspace = (args: { runId: string }) => this.arm.inWorkspace(this.runWorkspace(args.runId));
  private inWorkspace = (args: { workspace: string }) => this.arm.inWorkspace(args.workspace);

  /**
   * Each command once: name, RBAC action, scope (runtime/command-bus.ts). S2.5: the platform
   * reaches storage and compute as the workspace identity, so a revoked grant refuses what needs it.
   */
  private readonly commands = {
    createCompute: declareCommand({ name: 'CreateCompute', verb: 'createCompute', action: actions.createCompute, target: this.inWorkspace }),
    getCompute: declareCommand({ name: 'GetCompute', verb: 'getCompute', action: actions.readCompute, target: this.inWorkspace }),
    deleteCompute: declareCommand({ name: 'DeleteCompute', verb: 'deleteCompute', action: actions.deleteCompute, target: this.inWorkspace }),
    deleteWorkspace: declareCommand({ name: 'DeleteWorkspace', verb: 'deleteWorkspace', action: actions.deleteWorkspace, target: this.inWorkspace }),
    snapshot: declareCommand({ name: 'Snapshot', verb: 'snapshot', action: actions.runExperiment, target: this.inWorkspace, identity: ['storage'] }),
    submitRun: declareCommand({ name: 'SubmitRun', verb: 'submitRun', action: actions.runExperiment, target: this.inWorkspace, identity: ['storage', 'workspace'] }),
    cancelRun: declareCommand({ name: 'CancelRun', verb: 'cancelRun', action: actions.runExperiment, target: this.inRunWorkspace }),
    waitForRun: declareCommand({ name: 'WaitForRun', verb: 'waitForRun', action: actions.viewRuns, target: this.inRunWorkspace }),
    getRunStatusHistory: declareCommand({ name: 'GetRunStatusHistory', verb: 'getRunStatusHistory', action: actions.viewRuns, target: this.inRunWorkspace }),
    getMetrics: declareCommand({ name: 'GetMetrics', verb: 'getMetrics', action: actions.viewMetrics, target: this.inRunWorkspace }),
    // S4.2: writing a datastore's data needs the datastores' write action (Owner, Contributor), and the identity's storage grant.
    uploadToDatastore: declareCommand({ name: 'UploadToDatastore', verb: 'uploadToDatastore', action: actions.attachDatastore, target: this.inWorkspace, identity: ['storage'] }),
  };

  /** A compute target as a client reads it (ARM GET of a compute): needs read access in its workspace. */
  async getCompute(token: string | undefined, args: { workspace: string; compute: string }): Promise<ComputeRecord> {
    return this.p.bus.execute(this.commands.getCompute, token, args, (_ctx, { ws }) => {
      const compute = this.p.world.computes.byKey[computeKey(ws.workspaceId, args.compute)];
      if (!compute) throw errors.notFound('compute', args.compute, `workspace '${ws.workspace}'`);
      return compute;
    });
  }

  /** What still runs on a compute target: its live runs (queued or on a node). Deleting it waits for them. */
  private liveRunsOn(c: ComputeRecord): string[] {
    const key = computeKey(c.workspaceId, c.compute);
    return Object.entries(this.p.world.computes.computeOfRun)
      .filter(([runId, k]) => k === key && this.p.store.streamVersion(STREAMS.run(runId)) > 0 && !isTerminalStatus(runStatusOf(this.runs.load(runId).snapshot)))
      .map(([runId]) => runId);
  }

  private computeDeleted(c: ComputeRecord, by: string): EventToAppend {
    const idleNodes = Object.values(c.nodes).length;
    return { type: 'ComputeDeleted', data: { workspaceId: c.workspaceId, workspace: c.workspace, computeId: c.computeId, compute: c.compute, by, idleNodes } };
  }

  /**
   * ARM DELETE of a compute target. One that runs something is refused (Conflict, naming the
   * runs): cancel them or wait. Its idle nodes go at their scale-down time, as recorded.
   */
  async deleteCompute(token: string | undefined, args: { workspace: string; compute: string }): Promise<void> {
    await this.p.bus.execute(this.commands.deleteCompute, token, args, (ctx, { ws }) => {
      const c = this.p.world.computes.byKey[computeKey(ws.workspaceId, args.compute)];
      if (!c) throw errors.notFound('compute', args.compute, `workspace '${ws.workspace}'`);
      const live = this.liveRunsOn(c);
      if (live.length > 0) throw errors.conflict(`Compute '${c.compute}' has runs that are not finished (${live.join(', ')}); cancel them or wait, then delete it.`, { compute: c.compute });
      ctx.emit(computeStream(c.computeId), 'any', [this.computeDeleted(c, ctx.principal ?? '')]);
    });
  }

  /**
   * ARM DELETE of a workspace (S8.1): it and its compute targets go; the Key Vault, storage
   * account, registry and App Insights it used stay, as Azure keeps them. Refused (Conflict)
   * while a run of it is not finished or a web service of it is deployed.
   */
  async deleteWorkspace(token: string | undefined, args: { workspace: string }): Promise<void> {
    await this.p.bus.execute(this.commands.deleteWorkspace, token, args, (ctx, { ws }) => {
      const computes = Object.values(this.p.world.computes.byKey).filter((c) => c.workspaceId === ws.workspaceId);
      const live = computes.flatMap((c) => this.liveRunsOn(c));
      if (live.length > 0) throw errors.conflict(`Workspace '${ws.workspace}' has runs that are not finished (${live.join(', ')}); cancel them or wait, then delete it.`, { workspace: ws.workspace });
      const services = Object.values(this.p.world.webservices).filter((w) => w.workspaceId === ws.workspaceId && w.status !== 'Deleted' && w.status !== 'Failed');
      if (services.length > 0) throw errors.conflict(`Workspace '${ws.workspace}' has deployed web services (${services.map((w) => w.service).join(', ')}); delete them first.`, { workspace: ws.workspace });
      const by = ctx.principal ?? '';
      const deleted = { type: 'WorkspaceDeleted' as const, data: { workspaceId: ws.workspaceId, workspace: ws.workspace, by, kept: [ws.keyVault, ws.storageAccount, ws.registry, ws.appInsights].filter((r): r is string => !!r), computes: computes.map((c) => c.compute) } };
      const current = this.arm.rp.load(ws.workspaceId);
      if (!workspaceAccepts(current.snapshot, { type: deleted.type, ...deleted.data })) throw errors.conflict(`Workspace '${ws.workspace}' cannot be deleted in its state.`, { workspace: ws.workspace });
      ctx.emitMany([
        ...computes.map((c) => ({ stream: computeStream(c.computeId), expectedVersion: 'any' as const, events: [this.computeDeleted(c, by)] })),
        { stream: STREAMS.workspace(ws.workspaceId), expectedVersion: current.version, events: [deleted] },
      ]);
    });
  }

  /** S2.2 "create compute target": an AmlCompute cluster (S8.3 managed, S4.6). */
  async createCompute(
    token: string | undefined,
    args: {
      workspace: string;
      name: string;
      type: string;
      vmSize?: string;
      minNodes?: number;
      maxNodes?: number;
      idleSecondsBeforeScaledown?: number;
      agentCount?: number;
      region?: string;
      /** S3.1: the virtual network its nodes (AKS: its replicas) join. */
      vnet?: string;
    },
  ): Promise<{ computeId: string }> {
    return this.p.bus.execute(this.commands.createCompute, token, args, async (ctx, { ws }) => {
      if (args.type === 'VirtualMachine') {
        throw errors.badRequest(`A VirtualMachine is not created by AML but attached: create it with createVm, then attachCompute (S8.3, S6.2).`, { type: args.type });
      }
      if (args.type !== 'AmlCompute' && args.type !== 'AKS') {
        throw errors.badRequest(`Compute type '${args.type}' cannot be created; use AmlCompute or AKS (a VM is attached with attachCompute).`, { type: args.type });
      }
      const vmSize = (args.vmSize ?? DEFAULT_VM_SIZE).toUpperCase();
      const size = VM_SIZES[vmSize];
      if (!size) throw errors.badRequest(`vmSize '${args.vmSize}' is not one this simulator knows; use one of ${Object.keys(VM_SIZES).join(', ')}.`, { vmSize: args.vmSize });
      const minNodes = args.minNodes ?? 0;
      const maxNodes = args.maxNodes ?? 1;
      if (minNodes < 0 || maxNodes < 1 || minNodes > maxNodes) {
        throw errors.badRequest(`minNodes ${minNodes} and maxNodes ${maxNodes} are invalid: need 0 <= minNodes <= maxNodes and maxNodes >= 1.`);
      }
      if (this.p.world.computes.byKey[computeKey(ws.workspaceId, args.name)]) {
        throw errors.conflict(`Compute '${args.name}' already exists in workspace '${ws.workspace}'.`, { compute: args.name });
      }
      const aks = args.type === 'AKS';
      // An AmlCompute cluster runs on the chosen driver: without it nothing half-made is recorded.
      // An AKS cluster (S3.1/S8.5, for inference) hosts web-service replicas, which need no run driver.
      if (!aks) await this.driver();
      // S3.1: in the workspace's subscription, and the cluster's region (AKS: its own).
      const region = aks ? (args.region ?? ws.region) : ws.region;
      const joined =
        args.vnet === undefined
          ? undefined
          : await this.vnets!.join({ vnet: args.vnet, subscription: ws.subscription, region, member: `compute '${args.name}' of workspace '${ws.workspace}'`, workspace: ws });
      const computeId = this.p.ids.next('cmp');
      const agentCount = args.agentCount ?? 3;
      this.vnets?.record(ctx, joined);
      ctx.emit(computeStream(computeId), 'no-stream', [
        {
          type: 'ComputeCreated',
          data: {
            workspaceId: ws.workspaceId,
            workspace: ws.workspace,
            computeId,
            compute: args.name,
            type: aks ? 'AKS' : 'AmlCompute',
            vmSize,
            minNodes: aks ? agentCount : minNodes,
            maxNodes: aks ? agentCount : maxNodes,
            idleSecondsBeforeScaledown: aks ? 0 : (args.idleSecondsBeforeScaledown ?? 120),
            memoryBytes: size.memoryBytes,
            // AKS: its agents, and its region, which may differ from the workspace's (S1.6).
            ...(aks ? { agentCount, region } : {}),
            ...(joined ? { vnet: joined.vnet } : {}),
          },
        },
      ]);
      return { computeId };
    });
  }

  /** S8.2: pack a directory, content-hash it, and keep it encrypted in the workspace's blob storage. */
  async snapshot(token: string | undefined, args: { workspace: string; experiment: string; source: string; asset?: { name: string; version: string } }) {
    return this.p.bus.execute(this.commands.snapshot, token, args, (ctx, { ws }) => this.takeSnapshot(ctx, ws, args));
  }

  private async takeSnapshot(ctx: CommandContext, ws: WorkspaceRecord, args: { experiment: string; source: string; asset?: { name: string; version: string } }) {
    const packed = await packDirectory(args.source);
    const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
    const saved = this.snapshots.save(identity, ws.storageAccount!, ws.blobContainer!, packed);
    ctx.emit(STREAMS.snapshots(ws.workspaceId), 'any', [
      {
        type: 'SnapshotCreated',
        data: {
          workspaceId: ws.workspaceId,
          workspace: ws.workspace,
          snapshotId: saved.snapshotId,
          experiment: args.experiment,
          fileCount: saved.fileCount,
          totalBytes: saved.totalBytes,
          reused: saved.reused,
          ignoreFile: packed.ignoreFile,
          ...(args.asset ? { asset: args.asset } : {}),
        },
      },
    ]);
    return { snapshotId: saved.snapshotId, fileCount: saved.fileCount, files: packed.files.map((f) => f.path) };
  }

  /** S8.3: AML is called with the snapshot id; it creates the run and its token, and the compute target takes over. */
  async submitRun(token: string | undefined, args: SubmitRunArgs): Promise<{ runId: string }> {
    return this.p.bus.execute(this.commands.submitRun, token, args, async (ctx, { ws }) => {
      const compute = this.p.world.computes.byKey[computeKey(ws.workspaceId, args.compute)];
      if (!compute) throw errors.notFound('compute', args.compute, `workspace '${ws.workspace}'`);
      // S8.5: an AKS cluster is an inference target; runs train on AmlCompute or an attached VM.
      if (compute.type === 'AKS') {
        throw errors.badRequest(`Compute '${compute.compute}' is an AKS cluster, an inference target: submit runs to an AmlCompute cluster or an attached VirtualMachine.`, { compute: compute.compute, type: compute.type });
      }
      // S8.3 step 1: the environment's dependencies are npm specs (a pip requirement is refused, naming the npm spelling).
      checkDependencies(args.dependencies ?? []);
      // S4.2: each input names an attached datastore and a known mode, and has data at its path.
      const inputs = resolveRunInputs(ws, args.inputs);
      if (inputs.length > 0 && compute.type !== 'AmlCompute') {
        throw errors.badRequest(`Compute '${compute.compute}' is a ${compute.type}: run inputs are mounted on AmlCompute clusters only.`, { compute: compute.compute, type: compute.type });
      }
      const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
      for (const input of inputs) {
        if (blobsUnder(this.p.storage, identity, ws.storageAccount!, input.container, input.path).length === 0) {
          throw errors.notFound('data', input.path || '/', `datastore '${input.datastore}' (container ${input.container}) for input '${input.name}'; put files there with uploadToDatastore`);
        }
      }
      // No engine, no run: refuse before a single fact of a half-started run is written.
      await this.driver();
      let snapshotId = args.snapshotId;
      let files: string[] | undefined;
      if (!snapshotId) {
        const snap = await this.takeSnapshot(ctx, ws, { experiment: args.experiment, source: args.source! });
        snapshotId = snap.snapshotId;
        files = snap.files;
      } else {
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        files = this.snapshots.load(identity, ws.storageAccount!, ws.blobContainer!, snapshotId).files.map((f) => f.path);
      }
      if (!files.includes(args.script)) {
        throw errors.badRequest(`The script '${args.script}' is not in snapshot ${snapshotId} (it holds: ${files.slice(0, 10).join(', ')}${files.length > 10 ? ', …' : ''}).`);
      }
      // Run ids look like the platform's: <experiment>_<epoch seconds>_<hex>, unless the client named it.
      const runId = args.runId ?? `${args.experiment}_${Math.floor(this.p.clock.now() / 1000)}_${runSuffix()}`;
      if (args.runId !== undefined) {
        if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/.test(args.runId)) throw errors.badRequest(`Run id '${args.runId}' is invalid: 1-255 letters, digits, '_' or '-', starting with a letter or digit.`);
        if (this.p.store.streamVersion(STREAMS.run(args.runId)) > 0) throw errors.conflict(`A run named '${args.runId}' already exists; a job's name is its run id and cannot be reused.`, { runId: args.runId });
      }
      this.runs.start(
        ctx,
        {
          runId,
          workspaceId: ws.workspaceId,
          workspace: ws.workspace,
          experiment: args.experiment,
          computeId: compute.computeId,
          compute: compute.compute,
          computeType: compute.type,
          snapshotId,
          script: args.script,
          args: args.args ?? [],
          dependencies: args.dependencies ?? [],
          ...(inputs.length > 0 ? { inputs } : {}),
        },
        args.env ?? {},
        ws.region,
      );
      return { runId };
    });
  }

  /**
   * S4.2: put a file or a directory's files in an attached datastore, under `path` (default: its
   * root), written by the workspace identity and sealed at rest. The event names the files'
   * count, size and fingerprint; the datastore's connection string stays in the key vault.
   */
  async uploadToDatastore(
    token: string | undefined,
    args: { workspace: string; datastore: string; source: string; path?: string },
  ): Promise<{ files: number; bytes: number; fingerprint: string }> {
    return this.p.bus.execute(this.commands.uploadToDatastore, token, args, (ctx, { ws }) => {
      const store = ws.datastores[args.datastore];
      if (!store) {
        const known = Object.keys(ws.datastores);
        throw errors.notFound('datastore', args.datastore, `workspace '${ws.workspace}' (attached: ${known.join(', ') || 'none; attach one with attachDatastore'})`);
      }
      const path = datastorePath(args.path, 'The upload path');
      const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
      const uploaded = uploadDatastoreFiles(this.p.storage, identity, ws.storageAccount!, store.container, args.source, path);
      ctx.emit(STREAMS.datastores(ws.workspaceId), 'any', [
        { type: 'DatastoreUploaded', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, datastore: args.datastore, container: store.container, path, ...uploaded } },
      ]);
      return uploaded;
    });
  }

  private runWorkspace(runId: string): string {
    if (this.p.store.streamVersion(STREAMS.run(runId)) === 0) throw errors.notFound('run', runId);
    return this.runs.load(runId).snapshot.context.workspace;
  }

  async cancelRun(token: string | undefined, args: { runId: string }): Promise<void> {
    await this.p.bus.execute(this.commands.cancelRun, token, args, async (ctx, { ws }) => {
      const { snapshot } = this.runs.load(args.runId);
      const event = { type: 'RunCancelRequested' as const, runId: args.runId, workspaceId: ws.workspaceId, workspace: ws.workspace, by: ctx.principal ?? '' };
      if (!snapshot.can(event)) throw errors.conflict(`Run ${args.runId} is ${runStatusOf(snapshot) ?? 'finishing'}; it cannot be canceled.`, { run: args.runId });
      const { type, ...data } = event;
      await this.runs.record(args.runId, [{ type, data }]);
    });
  }

  /** Wait for the run to end — or, with `until`, to reach that status (e.g. Running before a fault). */
  async waitForRun(token: string | undefined, args: { runId: string; timeoutMs: number; until?: RunStatus }): Promise<{ status: RunStatus; reason?: string }> {
    return this.p.bus.execute(this.commands.waitForRun, token, args, async () => {
      const status = await this.runs.waitFor(args.runId, args.timeoutMs, args.until);
      const reason = this.runs.load(args.runId).snapshot.context.reason;
      return { status, ...(reason ? { reason } : {}) };
    });
  }

  async getRunStatusHistory(token: string | undefined, args: { runId: string }): Promise<{ statuses: RunStatus[]; terminal: boolean }> {
    return this.p.bus.execute(this.commands.getRunStatusHistory, token, args, () => {
      const { history, snapshot } = this.runs.load(args.runId);
      return { statuses: history, terminal: isTerminalStatus(runStatusOf(snapshot)) };
    });
  }

  /** S8.4: clients call AML, which reads the metrics from the metric store (Cosmos DB) and returns them. */
  async getMetrics(token: string | undefined, args: { runId: string }) {
    return this.p.bus.execute(this.commands.getMetrics, token, args, () => {
      const r = this.p.world.runMetrics[args.runId];
      if (!r) throw errors.notFound('run', args.runId);
      // Like Run.get_metrics(): a metric logged once is a value, logged many times a list.
      const metrics: Record<string, unknown> = {};
      for (const [name, values] of Object.entries(r.metrics)) metrics[name] = values.length === 1 ? values[0] : values;
      for (const [name, values] of Object.entries(r.lists)) metrics[name] = values;
      for (const [name, rows] of Object.entries(r.tables)) metrics[name] = rows;
      return { metrics, tags: r.tags, outputs: r.outputs };
    });
  }
}
