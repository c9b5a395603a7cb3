import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { actions, errors, nextWebserviceStatus, type AppInsightsRecord, type EventDataMap, type StoredEvent, type WebserviceRecord, type WorkspaceRecord, STREAMS } from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { signJwt, verifyJwt, type SigningKey } from '../identity/jwt';
import { crossRegionLatencyMs } from '../arm/regions';
import type { InferenceRuntime, RunningContainer } from '../compute/compute-driver';
import type { VnetService } from '../compute/vnets';
import { declareCommand, type CommandContext } from '../runtime/command-bus';
import type { Scheduler } from '../runtime/scheduler';
import type { PlatformRuntime } from '../platform-context';
import { sessionTempPath } from '../runtime/session-temp';
import { openSocketDoor } from '../runtime/socket-doors';
import type { ArmService } from '../arm/arm';
import type { ImageService } from './images';
import type { ScoringGateway, ScoringService } from './scoring-gateway';

/** S1.4 defaults per target: ACI key auth off and token auth unavailable; AKS key auth on, token auth off. */
const DEFAULTS = { ACI: { authEnabled: false }, AKS: { authEnabled: true } } as const;
/** Replica defaults of the SDK v1 deploy configurations (ACI and AKS alike, S8.5): 0.1 CPU, 0.5 GB. */
const DEFAULT_CPU_CORES = 0.1;
const DEFAULT_MEMORY_GB = 0.5;
/** The largest replica a deployment may ask for (an ACI container's limits). */
export const MAX_CPU_CORES = 4;
export const MAX_MEMORY_GB = 16;
const REPLICA_SOCKET = '/amlsim/scoring/replica.sock';
const HEALTH_TIMEOUT_MS = 30_000;
/** An AKS agent hosts this many replicas (the simulator's capacity rule). */
export const REPLICAS_PER_AGENT = 2;
/** S1.6: a web-service token lives an hour and should be refreshed after half of it. */
export const SERVICE_TOKEN_LIFETIME_MS = 60 * 60_000;
export const SERVICE_TOKEN_REFRESH_MS = 30 * 60_000;
const SERVICE_TOKEN_AUDIENCE = 'https://ml.azure.com/webservices';

type Live = {
  containers: RunningContainer[];
  dirs: string[];
  keys?: { Primary: string; Secondary: string };
  tls?: boolean;
  /** Replicas that serve (by index): a replica that goes down leaves it. */
  serving?: Map<number, { replica: string; socket: string }>;
  /** What the gateway routes to (re-registered with the replicas left when one goes down). */
  route?: { gateway: ScoringGateway; service: ScoringService };
  /** Cancels of its tokens' refreshBy timers (the service going cancels them). */
  refreshTimers?: Array<() => void>;
};

type DeploymentRequested = EventDataMap['WebserviceDeploymentRequested'];
type ServiceRef = { workspaceId: string; workspace: string; serviceId: string; service: string };

export const serviceStream = STREAMS.service;

/**
 * The host directory of a replica's scoring socket, bind-mounted into its container: the door
 * (runtime/socket-doors.ts) inside a directory only the platform can enter, so the gateway —
 * with its auth and App Insights record — is the only way to score.
 */
export const replicaDir = (session: string, serviceId: string, replica: number): string => join(sessionTempPath(session, serviceId, String(replica)), 'door');

/** What the web-service service uses of the platform (wired by createPlatform). */
export type WebserviceDeps = Pick<PlatformRuntime, 'bus' | 'clock' | 'faults' | 'ids' | 'secrets' | 'session' | 'store' | 'world'>;

/**
 * Web services (S8.5, S1.4, S1.5, S7.3): replicas started from the image the registry holds,
 * with no network; the platform's scoring gateway is their only way in, over each replica's
 * unix socket. Auth is one kind per service; every scoring request, accepted or refused, is
 * recorded in App Insights.
 */
export class WebserviceService {
  private readonly live = new Map<string, Live>();
  private readonly tokenKey: SigningKey;

  constructor(
    private readonly p: WebserviceDeps,
    private readonly arm: ArmService,
    private readonly images: ImageService,
    private readonly gateway: (tls?: boolean) => Promise<ScoringGateway>,
    private readonly caCertPath: () => string,
    /**
     * What outlives this simulator of the session's services (identity/resumable-session.ts): the
     * token signing key it was given, and where each service's current keys are kept (undefined:
     * the service is gone), so that a resumed session serves them with the same ones.
     */
    private readonly kept: { tokenKey: SigningKey; keepKeys: (service: string, keys: { Primary: string; Secondary: string } | undefined) => void; keys: (service: string) => { Primary: string; Secondary: string } | undefined },
    /** The platform's timers (runtime/scheduler.ts): a token's refreshBy is one. */
    private readonly scheduler: Scheduler,
    /** S3.1: the virtual networks replicas join. */
    private readonly vnets?: VnetService,
  ) {
    this.tokenKey = kept.tokenKey;
  }

  /** A command on an existing service acts in the service's workspace. */
  private onService = (args: { service: string }) => {
    const service = this.service(args.service);
    return { ...this.arm.inWorkspace(service.workspace), service };
  };
  private inWorkspace = (args: { workspace: string }) => this.arm.inWorkspace(args.workspace);

  /** Each command once: name, RBAC action, scope (runtime/command-bus.ts). */
  private readonly commands = {
    deploy: declareCommand({ name: 'DeployWebservice', verb: 'deployWebservice', action: actions.deployService, target: this.inWorkspace }),
    getToken: declareCommand({ name: 'GetToken', verb: 'getToken', action: actions.serviceToken, target: this.onService }),
    getKeys: declareCommand({ name: 'GetKeys', verb: 'getKeys', action: actions.listServiceKeys, target: this.onService }),
    regenKey: declareCommand({ name: 'RegenKey', verb: 'regenKey', action: actions.deployService, target: this.onService }),
    delete: declareCommand({ name: 'DeleteWebservice', verb: 'deleteWebservice', action: actions.deployService, target: this.onService }),
    queryAppInsights: declareCommand({ name: 'QueryAppInsights', verb: 'queryAppInsights', action: actions.readAppInsights, target: this.inWorkspace }),
  };

  private service(name: string): WebserviceRecord {
    const s = this.p.world.webservices[name];
    if (!s) throw errors.notFound('web service', name);
    return s;
  }

  async deploy(
    token: string | undefined,
    args: {
      workspace: string;
      name: string;
      imageId: string;
      target: 'ACI' | 'AKS';
      authEnabled?: boolean;
      tokenAuthEnabled?: boolean;
      replicas?: number;
      tls?: boolean;
      compute?: string;
      /** Per replica (default 0.1). The container gets at most the host's cores (docker cannot give more). */
      cpuCores?: number;
      /** Per replica (default 0.5). */
      memoryGb?: number;
      /** S3.1: the virtual network of an ACI deployment; on AKS the cluster's (naming another is refused). */
      vnet?: string;
    },
  ): Promise<{ service: string; status: string; scoringUri?: string; reason?: string }> {
    return this.p.bus.execute(this.commands.deploy, token, args, async (ctx, { ws }) => {
      // Replicas are containers: without a container runtime nothing of the service is recorded.
      const runtime = await this.images.runtime('deployWebservice');
      if (args.target === 'ACI' && args.compute !== undefined) throw errors.badRequest(`compute '${args.compute}' names an AKS cluster; ACI deployments take no compute.`);
      const cluster = args.target === 'AKS' ? this.aksCluster(ws, args.compute) : undefined;
      // S1.4: one kind of auth per service; ACI has no token auth.
      if (args.tokenAuthEnabled && args.target === 'ACI') throw errors.badRequest('Token auth is not available on ACI (S1.4): use key auth (authEnabled) or deploy to AKS.');
      // Asking for token auth on AKS turns the default key auth off (one kind per service).
      const authEnabled = args.authEnabled ?? (args.tokenAuthEnabled ? false : DEFAULTS[args.target].authEnabled);
      if (authEnabled && args.tokenAuthEnabled) throw errors.badRequest('A web service uses one kind of auth: key auth and token auth cannot both be enabled (S1.4).');
      // A Failed service holds no replicas: deploying again over it is how it is fixed.
      const existing = this.p.world.webservices[args.name];
      if (existing && existing.status !== 'Failed') throw errors.conflict(`A web service named '${args.name}' already exists.`, { service: args.name });
      const replicas = args.replicas ?? 1;
      const cpuCores = args.cpuCores ?? DEFAULT_CPU_CORES;
      const memoryGb = args.memoryGb ?? DEFAULT_MEMORY_GB;
      if (!(Number.isFinite(cpuCores) && cpuCores >= 0.01 && cpuCores <= MAX_CPU_CORES)) {
        throw errors.badRequest(`cpuCores must be a number from 0.01 to ${MAX_CPU_CORES}; got ${JSON.stringify(args.cpuCores)}.`);
      }
      if (!(Number.isFinite(memoryGb) && memoryGb >= 0.1 && memoryGb <= MAX_MEMORY_GB)) {
        throw errors.badRequest(`memoryGb must be a number from 0.1 to ${MAX_MEMORY_GB}; got ${JSON.stringify(args.memoryGb)}.`);
      }
      if (args.target === 'ACI' && replicas !== 1) throw errors.badRequest('An ACI web service has exactly one container; replicas are for AKS.');
      // S3.1: AKS replicas are in their cluster's VNet; an ACI container group may name one of its own.
      if (cluster && args.vnet !== undefined && args.vnet !== cluster.vnet) {
        throw errors.badRequest(`AKS replicas run in their cluster's virtual network: '${cluster.compute}' is in ${cluster.vnet ? `'${cluster.vnet}'` : 'none'}, not '${args.vnet}' (S3.1).`, { vnet: args.vnet });
      }
      const vnet = cluster ? cluster.vnet : args.vnet;
      if (cluster?.vnet !== undefined) await this.vnets!.holderOf(cluster.vnet);
      const { reference } = await this.images.pullForDeployment(ctx, runtime, ws, args.imageId);
      const joined = !cluster && args.vnet !== undefined ? await this.vnets!.join({ vnet: args.vnet, subscription: ws.subscription, region: ws.region, member: `ACI web service '${args.name}'`, workspace: ws }) : undefined;
      const capacity = cluster ? (cluster.agentCount ?? 1) * REPLICAS_PER_AGENT : 1;
      const serviceId = this.p.ids.next('svc');
      const ref = { workspaceId: ws.workspaceId, workspace: ws.workspace, serviceId, service: args.name };
      const stream = serviceStream(serviceId);
      const image = this.images.load(args.imageId).context;
      // S5.1: TLS by default; plain HTTP only when the deployment asks for it (tls: false).
      const tls = args.tls !== false;
      const requested: DeploymentRequested = {
        ...ref,
        imageId: args.imageId,
        image: image.image,
        target: args.target,
        ...(cluster ? { compute: cluster.compute } : {}),
        authEnabled,
        tokenAuthEnabled: args.tokenAuthEnabled ?? false,
        replicas,
        cpu: cpuCores,
        memoryGb,
        // Recorded so that a resumed or restored service is served as it was deployed.
        tls,
        ...(vnet !== undefined ? { vnet } : {}),
      };
      this.vnets?.record(ctx, joined);
      ctx.emit(stream, 'no-stream', [{ type: 'WebserviceDeploymentRequested', data: requested }]);
      if (cluster && replicas > capacity) {
        ctx.emit(stream, 'any', [{ type: 'WebserviceUnschedulable', data: { ...ref, compute: cluster.compute, replicas, capacity } }]);
        return { service: args.name, status: 'Unschedulable', reason: `${replicas} replicas do not fit on '${cluster.compute}' (room for ${capacity})` };
      }
      const live: Live = { containers: [], dirs: [] };
      this.live.set(args.name, live);
      if (authEnabled) {
        live.keys = { Primary: this.newKey(), Secondary: this.newKey() };
        this.kept.keepKeys(args.name, live.keys);
        ctx.emit(stream, 'any', [{ type: 'ServiceKeysGenerated', data: { ...ref, primary: fingerprint(live.keys.Primary), secondary: fingerprint(live.keys.Secondary) } }]);
      }
      const sockets: string[] = [];
      const replicaNames: string[] = [];
      try {
        for (let i = 0; i < replicas; i++) {
          sockets.push(await this.startReplica(ctx, runtime, ws, requested, reference, i, live));
          replicaNames.push(this.replicaName(requested, i));
        }
      } catch (error) {
        // S8.5: the deployment ends Failed (as wait_for_deployment reports it); nothing of it keeps running.
        const reason = error instanceof Error ? error.message : String(error);
        await this.teardown(args.name);
        ctx.emit(stream, 'any', [{ type: 'WebserviceFailed', data: { ...ref, reason } }]);
        throw errors.webserviceFailed(args.name, reason);
      }
      const scoringUri = await this.serve(args.name, live, ws, ref, args.target, sockets, replicaNames, tls);
      ctx.emit(stream, 'any', [{ type: 'WebserviceHealthy', data: { ...ref, scoringUri, ...(tls ? { caCert: this.caCertPath() } : {}) } }]);
      return { service: args.name, status: 'Healthy', scoringUri };
    });
  }

  /** Replica `i` of a deployment: `replica-<i>`, on AKS with the agent it runs on (replicas are spread over the agents). */
  private replicaName(d: DeploymentRequested, i: number): string {
    return d.compute ? `replica-${i}@agent-${i % this.agentCountOf(d)}` : `replica-${i}`;
  }

  private agentCountOf(d: DeploymentRequested): number {
    return (d.compute ? this.p.world.computes.byKey[`${d.workspaceId}/${d.compute}`]?.agentCount : undefined) ?? 1;
  }

  /**
   * Start replica `i` of a deployment in the door of its own, record `ReplicaStarted`, and wait
   * until it answers its liveness check; returns its socket. The container is `live.containers[i]`
   * from its start on, so that a failure tears it down with the rest.
   */
  private async startReplica(ctx: CommandContext, runtime: InferenceRuntime, ws: WorkspaceRecord, d: DeploymentRequested, reference: string, i: number, live: Live): Promise<string> {
    // S3.1: in a VNet the replica also listens on a loopback port of the VNet's namespace, one
    // no other member took (they share the namespace), for the VNet's other members to reach.
    const inVnet = d.vnet !== undefined ? { vnet: d.vnet, holder: await this.vnets!.holderOf(d.vnet), port: this.vnets!.nextPort(d.vnet) } : undefined;
    const door = openSocketDoor(this.p.session, [d.serviceId, String(i)], 'target');
    live.dirs.push(door.root);
    const container = await runtime.startContainer({
      session: this.p.session,
      workspace: ws.workspace,
      service: d.service,
      role: 'scoring',
      // AKS spreads replicas over its agents.
      ...(d.compute ? { agent: `${d.compute}-agent-${i % this.agentCountOf(d)}` } : {}),
      image: reference,
      env: { AMLSIM_SCORING_SOCKET: REPLICA_SOCKET, ...(inVnet ? { AMLSIM_SCORING_PORT: String(inVnet.port) } : {}) },
      binds: [{ hostPath: door.dir, containerPath: '/amlsim/scoring' }],
      ...(inVnet ? { vnetHolder: inVnet.holder } : {}),
      // The replica gets the CPU and memory the deployment records (defaults: 0.1 CPU, 0.5 GB),
      // CPU capped at the host's cores: docker refuses more than the machine has.
      memoryBytes: Math.round(d.memoryGb * 2 ** 30),
      nanoCpus: Math.round(Math.min(d.cpu, availableParallelism()) * 1_000_000_000),
    });
    live.containers[i] = container;
    ctx.emit(serviceStream(d.serviceId), 'any', [
      {
        type: 'ReplicaStarted',
        data: {
          workspaceId: d.workspaceId,
          workspace: d.workspace,
          serviceId: d.serviceId,
          service: d.service,
          replica: this.replicaName(d, i),
          container: container.id.slice(0, 12),
          ...(inVnet ? { vnet: inVnet.vnet, port: inVnet.port } : {}),
        },
      },
    ]);
    const socket = join(door.dir, 'replica.sock');
    await waitHealthy(socket, container);
    return socket;
  }

  /** Route the gateway to the service's replicas and watch them; returns its scoring URI. */
  private async serve(
    name: string,
    live: Live,
    ws: WorkspaceRecord,
    ref: { workspaceId: string; workspace: string; serviceId: string; service: string },
    computeType: 'ACI' | 'AKS',
    sockets: string[],
    replicaNames: string[],
    tls: boolean,
  ): Promise<string> {
    const gateway = await this.gateway(tls);
    live.tls = tls;
    const service: ScoringService = {
      replicas: sockets,
      computeType,
      authorize: (header) => this.authorize(name, header),
      onRequest: (r) => this.record(ws, ref, r),
    };
    gateway.register(name, service);
    live.route = { gateway, service };
    live.serving = new Map(sockets.map((socket, i) => [i, { replica: replicaNames[i]!, socket }]));
    // A replica that goes down later makes the service Unhealthy (S8.5); its wait fails once
    // it is removed (delete, session end), which is no news.
    live.containers.forEach((container, i) => {
      void container.wait().then(
        (exit) => this.replicaDown(name, live, i, exit.oomKilled ? 'its container was killed for exceeding its memory limit (OOMKilled)' : `its container exited with code ${exit.exitCode}`),
        () => {},
      );
    });
    return `${gateway.url}/api/v1/service/${name}/score`;
  }

  /**
   * A resumed session's services whose replicas all ran on while no simulator was there
   * (packages/platform/src/resume.ts): served again behind a new gateway — a new scoring URI —
   * with the same keys, token key and CA, and `WebserviceRestored` recorded; its tokens'
   * refreshBy timers are armed again at their due times, and those that fell due while no
   * simulator was there fire once all are restored, in due order. A service with a replica gone
   * is left for recovery to mark down. Returns the names restored.
   */
  async restore(): Promise<string[]> {
    const restored: string[] = [];
    const healthy = Object.values(this.p.world.webservices).filter((s) => s.status === 'Healthy' && !this.live.has(s.service));
    if (healthy.length === 0) return restored;
    const runtime = await this.images.runtime('restoreWebservice').catch(() => undefined);
    if (!runtime) return restored;
    for (const s of healthy) {
      const facts = this.p.store.readStream(serviceStream(s.serviceId));
      const started = facts.filter((e) => e.type === 'ReplicaStarted').map((e) => ({ replica: String(e.data.replica), container: String(e.data.container) }));
      const healthyAt = facts.findLast((e) => e.type === 'WebserviceHealthy' || e.type === 'WebserviceRestored');
      const found = await runtime.findReplicas({ session: this.p.session, service: s.service });
      const containers = started.map((r) => found.find((c) => c.id.startsWith(r.container)));
      const sockets = started.map((_, i) => join(replicaDir(this.p.session, s.serviceId, i), 'replica.sock'));
      const keys = this.kept.keys(s.service);
      if (!healthyAt || started.length === 0 || containers.some((c) => !c) || (s.authEnabled && !keys)) continue;
      // Every replica answers its liveness check, as at its deployment.
      const alive = await Promise.all(sockets.map((socket, i) => waitHealthy(socket, containers[i]!, 2_000).then(() => true, () => false)));
      if (alive.includes(false)) continue;
      const live: Live = { containers: containers as RunningContainer[], dirs: started.map((_, i) => sessionTempPath(this.p.session, s.serviceId, String(i))), ...(keys ? { keys } : {}) };
      this.live.set(s.service, live);
      const ws = this.p.world.workspaces.byId[s.workspaceId]!;
      const ref = { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service };
      // Served as it was deployed; a log from before `tls` was recorded says it by the scoring URI it had.
      const requested = facts.find((e) => e.type === 'WebserviceDeploymentRequested')?.data as DeploymentRequested | undefined;
      const tls = requested?.tls ?? String(healthyAt.data.scoringUri).startsWith('https:');
      const scoringUri = await this.serve(s.service, live, ws, ref, s.target, sockets, started.map((r) => r.replica), tls);
      this.p.bus.context('Restore').emitAsPlatform(serviceStream(s.serviceId), 'any', [
        { type: 'WebserviceRestored', data: { ...ref, scoringUri, replicas: started.length, ...(tls ? { caCert: this.caCertPath() } : {}) } },
      ]);
      this.rearmRefreshes(live, ref, facts);
      restored.push(s.service);
    }
    // Past due: fired now, in the order they fell due (runtime/scheduler.ts `runDue`).
    await this.scheduler.runDue();
    return restored;
  }

  /**
   * A resumed session's deployments its dead simulator left starting their replicas
   * (packages/platform/src/resume.ts), level-triggered: the replicas the log records that still
   * run and answer are kept; the others — never started, gone, or not answering — are started
   * again from the image the registry holds, with the keys kept from before
   * (identity/resumable-session.ts); a container the log never recorded (started just before
   * the crash) is removed. `WebserviceDeploymentResumed` says which, and the service ends
   * Healthy as a deployment does, behind the gateway over HTTPS or plain HTTP as the deployment
   * asked (HTTPS for a log from before that was recorded). When it cannot go on (no container
   * runtime, its keys not kept, a replica that does not come up) it ends Failed
   * PlatformRestarted saying why, and none of its replicas is left running.
   */
  async resumeDeployments(): Promise<Array<{ service: string; status: 'Healthy' | 'Failed'; reason?: string }>> {
    const out: Array<{ service: string; status: 'Healthy' | 'Failed'; reason?: string }> = [];
    const underWay = Object.values(this.p.world.webservices).filter((s) => s.status === 'Transitioning' && !this.live.has(s.service));
    for (const s of underWay) {
      const facts = this.p.store.readStream(serviceStream(s.serviceId));
      const requested = facts.find((e) => e.type === 'WebserviceDeploymentRequested')?.data as DeploymentRequested | undefined;
      if (!requested) continue;
      const ref: ServiceRef = { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service };
      const stream = serviceStream(s.serviceId);
      const ctx = this.p.bus.context('ResumeDeployment');
      const live: Live = { containers: [], dirs: [] };
      this.live.set(s.service, live);
      let found: RunningContainer[] = [];
      const sockets: string[] = [];
      const ws = this.p.world.workspaces.byId[s.workspaceId];
      try {
        const runtime = await this.images.runtime('resumeDeployment');
        found = await runtime.findReplicas({ session: this.p.session, service: s.service });
        if (!ws) throw new Error(`its workspace '${s.workspace}' is gone`);
        if (requested.authEnabled) live.keys = this.resumedKeys(ctx, ref, facts);
        // The last container the log records for each replica (one started again has a later fact).
        const recorded = new Map<string, string>();
        for (const e of facts) if (e.type === 'ReplicaStarted') recorded.set(String(e.data.replica), String(e.data.container));
        const again: number[] = [];
        for (let i = 0; i < requested.replicas; i++) {
          const short = recorded.get(this.replicaName(requested, i));
          const container = short ? found.find((c) => c.id.startsWith(short)) : undefined;
          const socket = join(replicaDir(this.p.session, s.serviceId, i), 'replica.sock');
          const answers = container ? await waitHealthy(socket, container, 2_000).then(() => true, () => false) : false;
          if (container && answers) {
            live.containers[i] = container;
            live.dirs.push(sessionTempPath(this.p.session, s.serviceId, String(i)));
            sockets[i] = socket;
          } else again.push(i);
        }
        // What the log does not keep running goes: containers it never recorded, and those that do not answer.
        for (const c of found) if (!live.containers.includes(c)) await c.remove().catch(() => {});
        ctx.emitAsPlatform(stream, 'any', [
          {
            type: 'WebserviceDeploymentResumed',
            data: { ...ref, kept: [...Array(requested.replicas).keys()].filter((i) => !again.includes(i)).map((i) => this.replicaName(requested, i)), restarting: again.map((i) => this.replicaName(requested, i)) },
          },
        ]);
        if (again.length > 0) {
          const { reference } = await this.images.pullForDeployment(ctx, runtime, ws, requested.imageId);
          for (const i of again) {
            // A dead replica's door may hold its stale socket: the new replica gets a fresh one.
            rmSync(sessionTempPath(this.p.session, s.serviceId, String(i)), { recursive: true, force: true });
            sockets[i] = await this.startReplica(ctx, runtime, ws, requested, reference, i, live);
          }
        }
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        const reason = `PlatformRestarted: the simulator of session ${this.p.session} stopped while web service '${s.service}' was being deployed, and the deployment cannot go on: ${why}`;
        await this.teardown(s.service);
        for (const c of found) await c.remove().catch(() => {});
        ctx.emitAsPlatform(stream, 'any', [{ type: 'WebserviceFailed', data: { ...ref, reason } }]);
        out.push({ service: s.service, status: 'Failed', reason });
        continue;
      }
      const tls = requested.tls ?? true;
      const scoringUri = await this.serve(s.service, live, ws!, ref, requested.target, sockets, sockets.map((_, i) => this.replicaName(requested, i)), tls);
      ctx.emitAsPlatform(stream, 'any', [{ type: 'WebserviceHealthy', data: { ...ref, scoringUri, ...(tls ? { caCert: this.caCertPath() } : {}) } }]);
      this.rearmRefreshes(live, ref, facts);
      out.push({ service: s.service, status: 'Healthy' });
    }
    await this.scheduler.runDue();
    return out;
  }

  /**
   * The keys of a key-auth deployment a resumed session goes on with: those kept from before
   * when it recorded them; made now (and recorded) when the simulator died before it did.
   * @throws Error when it recorded keys that were not kept.
   */
  private resumedKeys(ctx: CommandContext, ref: ServiceRef, facts: readonly StoredEvent[]): { Primary: string; Secondary: string } {
    const kept = this.kept.keys(ref.service);
    if (facts.some((e) => e.type === 'ServiceKeysGenerated')) {
      if (!kept) throw new Error('the keys it generated were not kept');
      this.p.secrets.add(kept.Primary, 'web service key');
      this.p.secrets.add(kept.Secondary, 'web service key');
      return kept;
    }
    const keys = { Primary: this.newKey(), Secondary: this.newKey() };
    this.kept.keepKeys(ref.service, keys);
    ctx.emitAsPlatform(serviceStream(ref.serviceId), 'any', [{ type: 'ServiceKeysGenerated', data: { ...ref, primary: fingerprint(keys.Primary), secondary: fingerprint(keys.Secondary) } }]);
    return keys;
  }

  /**
   * S1.6: at a token's refreshBy, `ServiceTokenRefreshDue` (its holder should get a new one
   * before it expires), on the platform's scheduler so that a virtual clock moves it too; the
   * service going (deleted, torn down) cancels it.
   */
  private armRefresh(live: Live, ref: ServiceRef, issued: { tokenId: string; refreshBy: string; expiresAt: string }): void {
    const cancel = this.scheduler.at(Date.parse(issued.refreshBy), () => {
      if (this.live.get(ref.service) !== live) return;
      this.p.bus
        .context('ServiceTokenTimer')
        .emitAsPlatform(serviceStream(ref.serviceId), 'any', [{ type: 'ServiceTokenRefreshDue', data: { ...ref, tokenId: issued.tokenId, refreshBy: issued.refreshBy, expiresAt: issued.expiresAt } }]);
    });
    (live.refreshTimers ??= []).push(cancel);
  }

  /** The refreshBy timers of a service's tokens whose due fact its log does not hold yet, armed again at their due times. */
  private rearmRefreshes(live: Live, ref: ServiceRef, facts: readonly StoredEvent[]): void {
    const due = new Set(facts.filter((e) => e.type === 'ServiceTokenRefreshDue').map((e) => String(e.data.tokenId)));
    for (const e of facts) {
      if (e.type !== 'ServiceTokenIssued' || due.has(String(e.data.tokenId))) continue;
      this.armRefresh(live, ref, { tokenId: String(e.data.tokenId), refreshBy: String(e.data.refreshBy), expiresAt: String(e.data.expiresAt) });
    }
  }

  /**
   * S1.6: a token for a token-auth service, with the time to refresh it. Getting one calls the
   * workspace's region: with that region out, no token can be had, wherever the cluster is;
   * the distance from the cluster's region adds to how long it takes.
   */
  async getToken(token: string | undefined, args: { service: string }): Promise<{ token: string; refreshBy: string; durationMs: number }> {
    return this.p.bus.execute(this.commands.getToken, token, args, async (ctx, { service: s, ws }) => {
      if (!s.tokenAuthEnabled) throw errors.badRequest(`Web service '${s.service}' does not use token auth (S1.4: one kind per service).`);
      if (this.p.faults.isOut(ws.region)) throw errors.serviceUnavailable('The token service of the workspace region', ws.region);
      const clusterRegion = this.clusterRegionOf(s) ?? ws.region;
      const durationMs = crossRegionLatencyMs(clusterRegion, ws.region);
      await this.p.clock.sleep(durationMs);
      const now = this.p.clock.now();
      const tokenId = this.p.ids.next('stok');
      const exp = Math.floor((now + SERVICE_TOKEN_LIFETIME_MS) / 1000);
      const value = signJwt(this.tokenKey, { aud: SERVICE_TOKEN_AUDIENCE, svc: s.serviceId, iat: Math.floor(now / 1000), exp, jti: tokenId });
      this.p.secrets.add(value, 'web service token');
      const refreshBy = new Date(now + SERVICE_TOKEN_REFRESH_MS).toISOString();
      const expiresAt = new Date(exp * 1000).toISOString();
      ctx.emit(serviceStream(s.serviceId), 'any', [
        {
          type: 'ServiceTokenIssued',
          data: {
            workspaceId: s.workspaceId,
            workspace: s.workspace,
            serviceId: s.serviceId,
            service: s.service,
            tokenId,
            fingerprint: fingerprint(value),
            expiresAt,
            refreshBy,
            workspaceRegion: ws.region,
            clusterRegion,
            durationMs,
          },
        },
      ]);
      const live = this.live.get(s.service);
      if (live) this.armRefresh(live, { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service }, { tokenId, refreshBy, expiresAt });
      return { token: value, refreshBy, durationMs };
    });
  }

  private aksCluster(ws: WorkspaceRecord, compute: string | undefined) {
    if (!compute) throw errors.badRequest('Deploying to AKS needs `compute`: an AKS cluster of the workspace (createCompute type AKS).');
    const c = this.p.world.computes.byKey[`${ws.workspaceId}/${compute}`];
    if (!c) throw errors.notFound('compute', compute, `workspace '${ws.workspace}'`);
    if (c.type !== 'AKS') throw errors.badRequest(`Compute '${compute}' is ${c.type}, not an AKS cluster.`);
    return c;
  }

  private clusterRegionOf(s: WebserviceRecord): string | undefined {
    const compute = s.compute ? this.p.world.computes.byKey[`${s.workspaceId}/${s.compute}`] : undefined;
    return compute?.region;
  }

  /** S1.5: both keys (management plane: Owner/Contributor). */
  async getKeys(token: string | undefined, args: { service: string }): Promise<{ primaryKey: string; secondaryKey: string }> {
    return this.p.bus.execute(this.commands.getKeys, token, args, (_ctx, { service: s }) => {
      const keys = this.live.get(s.service)?.keys;
      if (!keys) throw errors.badRequest(`Web service '${s.service}' does not use key auth; it has no keys.`);
      return { primaryKey: keys.Primary, secondaryKey: keys.Secondary };
    });
  }

  /** S1.5: a new value for one key; the old one is refused from the next request on. */
  async regenKey(token: string | undefined, args: { service: string; key: string }): Promise<void> {
    await this.p.bus.execute(this.commands.regenKey, token, args, (ctx, { service: s }) => {
      if (args.key !== 'Primary' && args.key !== 'Secondary') throw errors.badRequest(`key must be Primary or Secondary, not '${args.key}'.`);
      const live = this.live.get(s.service);
      if (!live?.keys) throw errors.badRequest(`Web service '${s.service}' does not use key auth; it has no keys.`);
      live.keys[args.key] = this.newKey();
      this.kept.keepKeys(s.service, live.keys);
      ctx.emit(serviceStream(s.serviceId), 'any', [
        { type: 'ServiceKeyRegenerated', data: { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service, key: args.key, fingerprint: fingerprint(live.keys[args.key]) } },
      ]);
    });
  }

  async delete(token: string | undefined, args: { service: string }): Promise<void> {
    await this.p.bus.execute(this.commands.delete, token, args, async (ctx, { service: s }) => {
      await this.teardown(s.service);
      this.kept.keepKeys(s.service, undefined);
      ctx.emit(serviceStream(s.serviceId), 'any', [{ type: 'WebserviceDeleted', data: { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service } }]);
    });
  }

  /** S7.3: App Insights records of a workspace, optionally of one service (readers too). */
  async queryAppInsights(token: string | undefined, args: { workspace: string; service?: string }): Promise<AppInsightsRecord[]> {
    return this.p.bus.execute(this.commands.queryAppInsights, token, args, (_ctx, { ws }) => {
      return (this.p.world.appInsights[ws.workspaceId] ?? []).filter((r) => !args.service || r.service === args.service);
    });
  }

  async close(): Promise<void> {
    for (const name of [...this.live.keys()]) await this.teardown(name);
  }

  /**
   * The `killContainer` fault on a web service: what kills its first serving replica's container.
   * @throws SimError ResourceNotFound when the service has no serving replica.
   */
  replicaKiller(service: string): () => Promise<void> {
    const live = this.live.get(service);
    const [index] = live?.serving?.keys() ?? [];
    if (!live || index === undefined) throw errors.notFound('running replica of web service', service);
    const container = live.containers[index]!;
    return () => container.kill();
  }

  /** S8.5: a replica of a running service went down: the gateway stops sending to it; the service is Unhealthy. */
  private replicaDown(name: string, live: Live, index: number, reason: string): void {
    const down = live.serving?.get(index);
    if (this.live.get(name) !== live || !down) return; // deleted or torn down meanwhile
    live.serving!.delete(index);
    if (live.route) live.route.gateway.register(name, { ...live.route.service, replicas: [...live.serving!.values()].map((r) => r.socket) });
    const s = this.p.world.webservices[name];
    // The statechart says whether the service can be Unhealthy now (it is, or was, Healthy).
    if (!s || !nextWebserviceStatus(s.status, { type: 'WebserviceUnhealthy' })) return;
    const ref = { workspaceId: s.workspaceId, workspace: s.workspace, serviceId: s.serviceId, service: s.service };
    this.p.bus.context('ReplicaMonitor').emitAsPlatform(serviceStream(s.serviceId), 'any', [{ type: 'WebserviceUnhealthy', data: { ...ref, replica: down.replica, reason } }]);
  }

  private async teardown(name: string): Promise<void> {
    const live = this.live.get(name);
    this.live.delete(name);
    for (const cancel of live?.refreshTimers ?? []) cancel();
    live?.route?.gateway.unregister(name);
    for (const c of live?.containers ?? []) await c.remove().catch(() => {});
    for (const d of live?.dirs ?? []) rmSync(d, { recursive: true, force: true });
  }

  private authorize(service: string, header: string | undefined): { ok: true } | { ok: false; status: 401; code: string; message: string } {
    const live = this.live.get(service);
    const s = this.p.world.webservices[service];
    if (s?.tokenAuthEnabled) return this.authorizeToken(s, header);
    if (!s?.authEnabled) return { ok: true };
    const presented = /^Bearer (.+)$/.exec(header ?? '')?.[1];
    if (!presented) return { ok: false, status: 401, code: 'Unauthorized', message: 'This service uses key auth: send Authorization: Bearer <key>.' };
    const matches = (key: string) => key.length === presented.length && timingSafeEqual(Buffer.from(key), Buffer.from(presented));
    if (live?.keys && (matches(live.keys.Primary) || matches(live.keys.Secondary))) return { ok: true };
    return { ok: false, status: 401, code: 'Unauthorized', message: 'The key is not one of the service keys (was it regenerated?).' };
  }

  /** S1.6: a token of this service, signed by AML, not past its expiry. */
  private authorizeToken(s: WebserviceRecord, header: string | undefined): { ok: true } | { ok: false; status: 401; code: string; message: string } {
    const presented = /^Bearer (.+)$/.exec(header ?? '')?.[1];
    const refuse = (message: string) => ({ ok: false as const, status: 401 as const, code: 'Unauthorized', message });
    if (!presented) return refuse('This service uses token auth: send Authorization: Bearer <token from getToken>.');
    try {
      const claims = verifyJwt(presented, new Map([[this.tokenKey.kid, this.tokenKey]]));
      if (claims.aud !== SERVICE_TOKEN_AUDIENCE || claims.svc !== s.serviceId) return refuse('The token is not for this service.');
      if (typeof claims.exp !== 'number' || claims.exp * 1000 <= this.p.clock.now()) return refuse('The token has expired: get a new one (refresh it before refreshBy).');
      return { ok: true };
    } catch {
      return refuse('The token is not valid.');
    }
  }

  private record(ws: WorkspaceRecord, ref: { workspaceId: string; workspace: string; serviceId: string; service: string }, r: AppInsightsLike): void {
    // Both facts in one append (one SQLite transaction): this runs on every scoring request,
    // right after its answer is written. No principal: App Insights records on its own account.
    this.p.bus.context('AppInsights').emitMany([
      {
        stream: STREAMS.appInsights(ws.workspaceId),
        expectedVersion: 'any',
        events: [
          {
            type: 'ScoringRequestRecorded',
            data: {
              ...ref,
              HTTPMethod: r.HTTPMethod,
              UserAgent: r.UserAgent,
              ComputeType: r.ComputeType,
              RequestUrl: r.RequestUrl,
              StatusCode: r.StatusCode,
              RequestId: r.RequestId,
              DurationMs: r.DurationMs,
            },
          },
        ],
      },
      // S8.5: telemetry is also pushed to the platform's subscription (a stream of its own).
      {
        stream: STREAMS.platformTelemetry(this.p.session),
        expectedVersion: 'any',
        events: [{ type: 'PlatformTelemetryPushed', data: { ...ref, RequestId: r.RequestId, StatusCode: r.StatusCode } }],
      },
    ]);
  }

  private newKey(): string {
    const key = randomBytes(32).toString('base64');
    this.p.secrets.add(key, 'web service key');
    return key;
  }
}

type AppInsightsLike = { HTTPMethod: string; UserAgent: string; ComputeType: string; RequestUrl: string; StatusCode: number; RequestId: string; DurationMs: number };

/** A replica is up when its scoring server answers its liveness check; a container that exits first is not. */
const waitHealthy = async (socketPath: string, container: RunningContainer, timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> => {
  let exited: { exitCode: number } | undefined;
  // The replica may be removed later (delete, session end): its wait then fails, which is no error here.
  void container.wait().then(
    (e) => (exited = e),
    () => {},
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) {
      const logs = await container.logs().catch(() => ({ stdout: '', stderr: '' }));
      const last = logs.stderr.trim().split('\n').at(-1) ?? '';
      throw new Error(`the replica exited with code ${exited.exitCode}: ${last.replace(/^amlsim scoring: /, '')}`);
    }
    if (existsSync(socketPath) && (await liveness(socketPath)) === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the replica did not answer its liveness check within ${timeoutMs} ms`);
};

const liveness = (socketPath: string): Promise<number> =>
  new Promise((resolve) => {
    const req = request({ socketPath, path: '/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });

