import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyToWorld, assignmentsOf, emptyWorld, errors, isTerminalStatus, runStatusOf, type EventStore, type IdGenerator, type StoredEvent, type WorldState, STREAMS } from '@amlsim/core';
import { ArmService } from './arm/arm';
import { BlobStorageService } from './workspace/blob-storage';
import { DirectoryService, type TenantConfig } from './identity/directory';
import { KeyVaultService } from './workspace/key-vault';
import { realClock, virtualClock, type SimClock } from './runtime/clock';
import { forgetResumableSession, loadResumableSession, saveResumableSession, updateResumableSession } from './identity/resumable-session';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from './identity/jwt';
import { CommandBus, CommandContext, type RbacMode } from './runtime/command-bus';
import { Faults } from './runtime/faults';
import { nanoIds } from './runtime/ids';
import { PLATFORM_PRINCIPAL, type PlatformContext } from './platform-context';
import { SecretRegistry } from './runtime/secret-registry';
import { takeCheckpoint } from './checkpoints';
import type { ComputeDriver } from './compute/compute-driver';
import { createDockerDriver } from './compute/docker-driver';
import { createProcessDriver } from './compute/process-driver';
import { VnetService } from './compute/vnets';
import { Scheduler } from './runtime/scheduler';
import { ControlPlane } from './training/control-plane';
import { MachineLearningService } from './training/machine-learning';
import { ModelRegistry } from './inference/model-registry';
import { ImageService } from './inference/images';
import { WebserviceService } from './inference/webservices';
import { ScoringGateway } from './inference/scoring-gateway';
import { holdSession, removeSessionEntries } from './runtime/session-temp';
import { sweepOrphans } from './runtime/startup-sweep';
import { ensureLocalCa } from './inference/local-ca';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { RunManager } from './training/run-manager';
import { RunTokenService, runTokenSigningKey, runTokenSigningKeyFromPem } from './identity/run-tokens';
import { SnapshotStore } from './training/snapshots';
import { VirtualMachineService } from './training/virtual-machines';

export type PlatformOptions = {
  store: EventStore;
  /** Where vaults, blob storage, registries and the platform root key live. */
  dataDir: string;
  /** Who may sign in (bootstrapped as the session's first facts); not given when resuming. */
  tenant?: TenantConfig;
  /**
   * Go on with this session of the log, whose simulator died (docs/architecture.md "Crash
   * recovery"): its read models are folded from its facts, its run-token key and clock kind come
   * from what it saved (identity/resumable-session.ts), and it takes its lease over. Its runs
   * are then taken back with `reattachRuns()`.
   */
  resume?: string;
  clock?: SimClock;
  ids?: IdGenerator;
  rbacMode?: RbacMode;
  /** Where runs execute (S8.3): real containers (default) or local processes. */
  driver?: 'docker' | 'process';
  /** The Docker engine's socket (default: the engine's standard socket). */
  dockerSocket?: string;
  /** Lifetime of run tokens (S1.3); default 10 minutes. */
  runTokenTtlMs?: number;
  /**
   * The session lease (packages/docker/src/lease.ts): how often this session renews it, and
   * after how long without renewal another session's lease counts as lapsed (tests shorten it).
   */
  lease?: { renewMs?: number; ttlMs?: number };
};

export type Platform = {
  readonly session: string;
  readonly context: PlatformContext;
  readonly directory: DirectoryService;
  readonly arm: ArmService;
  readonly ml: MachineLearningService;
  readonly models: ModelRegistry;
  readonly images: ImageService;
  readonly webservices: WebserviceService;
  /**
   * Call a web service through the scoring gateway over HTTPS (S5.1), as a client would:
   * trusting the simulator's CA. Returns the HTTP status and the JSON body.
   */
  /** Scoring requests the gateway has ended, if it ever started. */
  scoringRequests(): Promise<number | undefined>;
  callWebservice(service: string, request: { data: unknown; authorization?: string; userAgent?: string }): Promise<{ httpStatus: number; body: unknown }>;
  readonly runs: RunManager;
  /** User-owned VMs and their attachment as unmanaged compute (S8.3, S6.2). */
  readonly vms: VirtualMachineService;
  /** Read models of this session, current after every append. */
  readonly world: WorldState;
  /**
   * A resumed session's runs, gone on with (RunManager.resume): those whose containers ran on
   * while no simulator was there are taken back; those whose target had not started yet
   * (queued, waiting for a node, a node provisioning) are driven on from their next step, with
   * the clusters folded from the log; the rest are ended at once, as recovery ends them
   * (runtime/recovery.ts `endLostRuns`). Before them, its attached VMs whose containers ran on
   * are taken back with their channels (VirtualMachineService.reattach; `vms` says which, and
   * which were gone), so the runs on them are taken back or driven on like the others.
   */
  reattachRuns(): Promise<{ reattached: string[]; drivenOn: string[]; lost: string[]; vms: { reattached: string[]; lost: string[] } }>;
  /**
   * A resumed session's workspaces its dead simulator left mid-creation, reconciled
   * (ResourceProvider.recoverCreation): rolled back from the resource under way, or completed.
   */
  reconcileWorkspaces(): Promise<Array<{ workspaceId: string; outcome: 'rolledBack' | 'completed' }>>;
  /** A resumed session's web services whose replicas all ran on, served again (WebserviceService.restore). */
  restoreWebservices(): Promise<string[]>;
  /**
   * A resumed session's images its dead simulator left being made, carried on from the step
   * under way (ImageService.resume): built, checked, pushed and created, or failed PlatformRestarted.
   */
  resumeImages(): Promise<Array<{ imageId: string; image: string; status: string }>>;
  /**
   * A resumed session's deployments its dead simulator left starting replicas, carried on
   * (WebserviceService.resumeDeployments): Healthy with the replicas that ran on and the rest
   * started again, or Failed PlatformRestarted with none left.
   */
  resumeDeployments(): Promise<Array<{ service: string; status: 'Healthy' | 'Failed'; reason?: string }>>;
  /** Move the virtual clock (a fact in the log, so a replay shows why tokens expired). */
  advanceClock(ms: number): Promise<void>;
  /**
   * Arm a fault for the next matching operation (docs/scenarios.md "Time and faults"). `target` is a
   * run id, or with `on: 'service'` (killContainer only) a web service name: its first serving
   * replica is killed at once.
   */
  injectFault(kind: 'failProvisioning' | 'killContainer' | 'freezeContainer' | 'regionOutage' | 'regionRestored', target: string, on?: 'run' | 'service'): Promise<void>;
  /** Save the read models and aggregate states for `amlsim replay` to compare against. */
  checkpoint(): void;
  /** The compute driver, if runs have used one (tests inspect disks and containers through it). */
  driverIfStarted(): ComputeDriver | undefined;
  /**
   * Stop runs, the control plane and timers; remove the session's containers and volumes.
   * Returns what could not be removed (an invariant after every scenario: nothing).
   */
  close(): Promise<{ leftovers: string[] }>;
  /**
   * Stop the session because the simulator was interrupted (SIGINT, SIGTERM): record one
   * `SessionInterrupted`, cancel every live run through the run's own cancel path with the
   * reason "the simulator was interrupted (<signal>)", give them `graceMs` (default 15 s) to
   * end, then close (replicas, containers, volumes, images, registries go). A second call
   * returns the first's promise; after `close()` it records nothing and only closes.
   */
  interrupt(signal: string, options?: { graceMs?: number }): Promise<{ leftovers: string[]; canceledRuns: string[] }>;
};

/**
 * The platform's root key: the "platform-managed key" of S4.1/S6.1 that wraps every vault's
 * and storage account's data key. It is the one key kept as a file (mode 0600) — standing in
 * for the platform's HSM — and it protects only data keys, never user data directly.
 */
const loadRootKey = (dataDir: string): Buffer => {
  const dir = join(dataDir, 'platform');
  const file = join(dir, 'root.key');
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key, { mode: 0o600 });
  return key;
};

/** The runtime's composition root: wires the log, the read models and the simulated services. */
export const createPlatform = async (options: PlatformOptions): Promise<Platform> => {
  const ids = options.ids ?? nanoIds();
  const resumed = options.resume;
  if (!resumed && !options.tenant) throw new Error('createPlatform needs a tenant (or a session to resume)');
  const session = resumed ?? ids.next('s');
  // This session takes its lease first, so that no other simulator's sweep takes it for dead;
  // then what sessions whose lease lapsed left (Docker objects, registries, temp dirs) goes,
  // recorded below once the bus exists (runtime/startup-sweep.ts).
  const lease = holdSession(session, options.lease?.renewMs ? { renewMs: options.lease.renewMs } : {});
  const swept = await sweepOrphans({
    ...(options.dockerSocket ? { dockerSocket: options.dockerSocket } : {}),
    ...(options.lease?.ttlMs ? { lease: { ttlMs: options.lease.ttlMs } } : {}),
  }).catch((e: unknown) => {
    lease.release();
    throw e;
  });
  const world = emptyWorld();
  // The session's runs, for an interrupt to cancel those still live.
  const submittedRuns = new Set<string>();
  // A data dir the platform makes is the platform's alone (docs/security.md, "Data dir").
  if (!existsSync(options.dataDir)) mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const rootKey = loadRootKey(options.dataDir);
  let clock: SimClock;
  let runTokenKey: SigningKey;
  let serviceTokenKey: SigningKey;
  const serviceKid = `aml-webservice-${session}`;
  const pemOf = (key: SigningKey) => key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let savedServiceKeys: Record<string, { Primary: string; Secondary: string }> = {};
  let savedRunEnv: Record<string, Record<string, string>> = {};
  if (resumed) {
    const saved = loadResumableSession(options.dataDir, rootKey, resumed);
    if (!saved) {
      lease.release();
      throw errors.conflict(`session ${resumed} cannot be resumed: it closed, or its simulator saved nothing to resume it by (identity/resumable-session.ts)`);
    }
    // The log is the truth: the session's read models are its facts folded.
    let lastAtMs = 0;
    for (const e of options.store.readAll()) {
      if (e.meta.session !== session) continue;
      applyToWorld(world, e);
      lastAtMs = Date.parse(e.meta.at);
      if (e.type === 'RunSubmitted') submittedRuns.add(String(e.data.runId));
    }
    // Virtual time stood still while no simulator was there; real time did not.
    clock = saved.clock === 'virtual' ? virtualClock(lastAtMs) : realClock();
    runTokenKey = runTokenSigningKeyFromPem(session, saved.runTokenKeyPem);
    serviceTokenKey = saved.serviceTokenKeyPem ? signingKeyFromPem(serviceKid, saved.serviceTokenKeyPem) : generateSigningKey(serviceKid);
    savedServiceKeys = saved.serviceKeys ?? {};
    savedRunEnv = saved.runEnv ?? {};
  } else {
    clock = options.clock ?? realClock();
    runTokenKey = runTokenSigningKey(session);
    serviceTokenKey = generateSigningKey(serviceKid);
    saveResumableSession(options.dataDir, rootKey, session, { clock: clock.kind, runTokenKeyPem: pemOf(runTokenKey), serviceTokenKeyPem: pemOf(serviceTokenKey) });
  }
  // The data plane asks the log (via the read model) who holds a grant: revocations act at once.
  const holdsGrant = (principalId: string, scope: string) =>
    principalId === PLATFORM_PRINCIPAL.principalId ||
    assignmentsOf(world.access, principalId).some((a) => a.scope.toLowerCase() === scope.toLowerCase());
  const context: PlatformContext = {
    session,
    dataDir: options.dataDir,
    store: options.store,
    world,
    clock,
    ids,
    bus: new CommandBus(options.store, clock, session, ids),
    secrets: new SecretRegistry(),
    faults: new Faults(),
    vaults: new KeyVaultService(join(options.dataDir, 'keyvaults'), rootKey, holdsGrant),
    storage: new BlobStorageService(join(options.dataDir, 'storage'), rootKey, holdsGrant),
    rbacMode: options.rbacMode ?? 'enforce',
  };
  const unsubscribe = options.store.subscribe((events: StoredEvent[]) => {
    for (const e of events) {
      if (e.meta.session !== session) continue;
      applyToWorld(world, e);
      if (e.type === 'RunSubmitted') submittedRuns.add(String(e.data.runId));
    }
  });
  const directory = new DirectoryService(context);
  const arm = new ArmService(context, directory);
  // Every caller's command is authenticated and authorized by the bus, in one place (runtime/command-bus.ts).
  context.bus.guardWith(arm.commandGate());
  const scheduler = new Scheduler(clock);
  const snapshots = new SnapshotStore(context.storage);
  const tokens = new RunTokenService(context, runTokenKey);
  // The driver starts on first use, so workspaces and RBAC work on a machine without Docker.
  let driver: Promise<ComputeDriver> | undefined;
  let controlPlane: ControlPlane | undefined;
  let started: ComputeDriver | undefined;
  const getDriver = async (): Promise<ComputeDriver> => {
    driver ??= (options.driver === 'process' ? Promise.resolve(createProcessDriver(join(options.dataDir, 'compute'), { environmentsDir: join(options.dataDir, 'environments') })) : createDockerDriver({ ...(options.dockerSocket ? { socketPath: options.dockerSocket } : {}), environmentsDir: join(options.dataDir, 'environments') })).catch((e) => {
      driver = undefined;
      throw e;
    });
    const d = await driver;
    started = d;
    return d;
  };
  // S3.1: virtual networks, joined by the compute that names one.
  const vnets = new VnetService(context, getDriver);
  const vms = new VirtualMachineService(context, arm, getDriver, () => controlPlane!, vnets);
  const runs: RunManager = new RunManager(context, {
    driver: getDriver,
    tokens,
    snapshots,
    scheduler,
    get channels() {
      return controlPlane!;
    },
    runTokenTtlMs: options.runTokenTtlMs ?? 10 * 60_000,
    vms,
    userEnv: {
      keep: (runId, env) => {
        savedRunEnv[runId] = { ...env };
        updateResumableSession(options.dataDir, rootKey, session, (state) => {
          (state.runEnv ??= {})[runId] = { ...env };
        });
      },
      of: (runId) => savedRunEnv[runId],
    },
  });
  controlPlane = new ControlPlane(context, runs, tokens, snapshots);
  const ml = new MachineLearningService(context, arm, runs, snapshots, getDriver, vnets);
  const models = new ModelRegistry(context, arm);
  // Images and replicas go through the same driver (and Docker client) as training (S8.5).
  const images = new ImageService(context, arm, models, getDriver);
  // The scoring gateway starts on first deployment, serving HTTPS with a certificate from the
  // simulator's own CA in the data dir (S5.1); clients trust that CA to call it.
  // A second, plain-HTTP gateway serves the services deployed with `tls: false` (only when asked).
  const gateways: { https?: Promise<ScoringGateway>; http?: Promise<ScoringGateway> } = {};
  const ca = () => ensureLocalCa(join(options.dataDir, 'tls'));
  const getGateway = (tls = true) => {
    const kind = tls ? 'https' : 'http';
    return (gateways[kind] ??= (async () => {
      const g = new ScoringGateway({ now: () => clock.now() });
      if (tls) {
        const cert = ca();
        await g.start({ tls: { cert: cert.serverChainPem, key: cert.serverKeyPem } });
      } else {
        await g.start({});
      }
      return g;
    })());
  };
  const webservices = new WebserviceService(context, arm, images, getGateway, () => ca().caCertPath, {
    tokenKey: serviceTokenKey,
    keys: (service) => savedServiceKeys[service],
    keepKeys: (service, keys) =>
      updateResumableSession(options.dataDir, rootKey, session, (state) => {
        state.serviceKeys ??= {};
        if (keys) state.serviceKeys[service] = { ...keys };
        else delete state.serviceKeys[service];
      }),
  }, scheduler, vnets);
  if (swept.length > 0) {
    await context.bus.run('SweepOrphans', (ctx) =>
      ctx.emitAsPlatform(STREAMS.session(session), 'any', swept.map((data) => ({ type: 'OrphansSwept' as const, data }))),
    );
  }
  if (!resumed) await directory.bootstrap(options.tenant!);
  const closeNow = async (): Promise<{ leftovers: string[] }> => {
    scheduler.dispose();
    await webservices.close();
    for (const g of [gateways.https, gateways.http]) if (g) await (await g.catch(() => undefined))?.stop();
    await images.close();
    await runs.shutdown();
    await vms.shutdown();
    await controlPlane!.stop();
    let leftovers: string[] = [];
    if (driver) {
      const d = await driver.catch(() => undefined);
      if (d) {
        await d.cleanup(session);
        leftovers = await d.leftovers(session);
        await d.close();
      }
    }
    unsubscribe();
    // Closed: nothing of it is left to resume, and its key need not outlive it.
    forgetResumableSession(options.dataDir, session);
    // A resumed session did not take back all its dead simulator had (channels of runs whose
    // containers were gone, a registry's process): what is left of it goes with it.
    if (resumed) removeSessionEntries(session);
    lease.release();
    return { leftovers };
  };
  // Closing happens once, whoever asks first (the scenario's end, an interrupt, a test's cleanup).
  let closing: Promise<{ leftovers: string[] }> | undefined;
  let interrupting: Promise<{ leftovers: string[]; canceledRuns: string[] }> | undefined;
  const close = () => (closing ??= closeNow());
  return {
    session,
    context,
    directory,
    arm,
    ml,
    models,
    images,
    webservices,
    scoringRequests: async () => {
      let total: number | undefined;
      for (const g of [gateways.https, gateways.http]) {
        const ended = g ? (await g.catch(() => undefined))?.requestsEnded : undefined;
        if (ended !== undefined) total = (total ?? 0) + ended;
      }
      return total;
    },
    callWebservice: async (service, req) => {
      const record = world.webservices[service];
      if (!record) throw errors.notFound('web service', service);
      if (!record.scoringUri) throw errors.conflict(`Web service '${service}' is ${record.status}; it has no scoring endpoint.`);
      const body = JSON.stringify(req.data ?? null);
      const url = new URL(record.scoringUri);
      const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
      return new Promise((resolve, reject) => {
        const r = send(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            ...(url.protocol === 'https:' ? { ca: ca().caCertPem } : {}),
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              'user-agent': req.userAgent ?? 'amlsim-scenario',
              ...(req.authorization ? { authorization: req.authorization } : {}),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => {
              let parsed: unknown = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // not JSON: give the text
              }
              resolve({ httpStatus: res.statusCode ?? 0, body: parsed });
            });
          },
        );
        r.on('error', reject);
        r.end(body);
      });
    },
    runs,
    vms,
    world,
    reconcileWorkspaces: async () => {
      const done: Array<{ workspaceId: string; outcome: 'rolledBack' | 'completed' }> = [];
      const reason = `PlatformRestarted: the simulator of session ${session} stopped while this was being provisioned`;
      for (const e of options.store.readAll()) {
        if (e.meta.session !== session || e.type !== 'WorkspaceCreationRequested') continue;
        const workspaceId = String(e.data.workspaceId);
        const ctx = new CommandContext('Recover', ids.next('cmd'), options.store, clock, session);
        const outcome = await arm.rp.recoverCreation(ctx, workspaceId, reason);
        if (outcome) done.push({ workspaceId, outcome });
      }
      return done;
    },
    restoreWebservices: () => webservices.restore(),
    resumeImages: () => images.resume(),
    resumeDeployments: () => webservices.resumeDeployments(),
    reattachRuns: async () => {
      // The VMs first: the runs on a VM are taken back, or driven on, only on a VM taken back.
      const taken = await vms.reattach();
      return { ...(await runs.resume([...submittedRuns])), vms: taken };
    },
    advanceClock: async (ms) => {
      clock.advance(ms);
      await context.bus.run('AdvanceClock', (ctx) =>
        ctx.emitAsPlatform(STREAMS.session(session), 'any', [{ type: 'ClockAdvanced', data: { byMs: ms, to: new Date(clock.now()).toISOString() } }]),
      );
      // Timers due by the new time fire now, in order (token expiry, scale-down).
      await scheduler.runDue();
    },
    injectFault: async (kind, target, on = 'run') => {
      // An outage lasts until restored (S1.6). killContainer and freezeContainer act at once on
      // a running target, else when the run's target starts; failProvisioning acts once.
      if (on === 'service' && kind !== 'killContainer') throw errors.badRequest(`the ${kind} fault does not act on web services; killContainer does.`);
      const running = on === 'run' && (kind === 'killContainer' || kind === 'freezeContainer') ? runs.liveCompute(target) : undefined;
      // What the fault does is settled before it is recorded (one that cannot act is refused
      // and not recorded); it acts after, so that its effects follow FaultInjected in the log.
      const act: () => void | Promise<void> =
        on === 'service'
          ? webservices.replicaKiller(target)
          : kind === 'regionOutage'
            ? () => context.faults.startOutage(target)
            : kind === 'regionRestored'
              ? () => context.faults.endOutage(target)
              : running && kind === 'killContainer'
                ? () => void running.kill().catch(() => {})
                : running && kind === 'freezeContainer'
                  ? () => running.freeze()
                  : () => context.faults.arm(kind, target);
      await context.bus.run('InjectFault', (ctx) =>
        ctx.emitAsPlatform(STREAMS.session(session), 'any', [{ type: 'FaultInjected', data: { fault: kind, target } }]),
      );
      await act();
    },
    checkpoint: () => takeCheckpoint(options.store, session, world),
    driverIfStarted: () => started,
    // During an interrupt, closing waits for its cancels (closing at once would kill the runs it is ending).
    close: () => (interrupting ? interrupting.then(({ leftovers }) => ({ leftovers })) : close()),
    interrupt: (signal, { graceMs = 15_000 } = {}) =>
      (interrupting ??= (async () => {
        if (closing) return { leftovers: (await closing).leftovers, canceledRuns: [] };
        const reason = `the simulator was interrupted (${signal})`;
        const live = [...submittedRuns].filter((runId) => !isTerminalStatus(runStatusOf(runs.load(runId).snapshot)));
        await context.bus.run('InterruptSession', (ctx) =>
          ctx.emitAsPlatform(STREAMS.session(session), 'any', [{ type: 'SessionInterrupted', data: { signal, reason, canceledRuns: live } }]),
        );
        // The same path as a user's cancel (the run's statechart stops its target), so each run
        // ends Canceled with its token revoked and its node released before the session goes.
        await Promise.all(
          live.map(async (runId) => {
            const { workspaceId, workspace } = runs.load(runId).snapshot.context;
            await runs.record(runId, [{ type: 'RunCancelRequested', data: { runId, workspaceId, workspace, by: PLATFORM_PRINCIPAL.name, reason } }]).catch(() => {});
            await runs.waitFor(runId, graceMs).catch(() => {});
          }),
        );
        const { leftovers } = await close();
        return { leftovers, canceledRuns: live };
      })()),
  };
};

