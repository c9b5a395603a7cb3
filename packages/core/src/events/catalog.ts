import type { StoredEvent } from './envelope';
import type { AuthorizationEvaluation } from '../rbac/authorize';

/**
 * Every event type the simulator writes, with the service lane it happens in (for the
 * timeline and diagrams), who acted on whom, the requirements it shows, and its payload.
 * Payloads never hold a secret value: secrets are referenced by vault, name, version and
 * fingerprint.
 *
 * Names are the scenario's names (`workspace: ws1`, `principal: bob`) so `expect.order`
 * matchers read like the scenario; ids ride along for joins.
 */
/**
 * A party of the platform: the service lane an event is shown in, and either end of the arrow
 * it draws (`from`: the party that acted, `to`: the party it acted on; see `EventDoc`).
 */
export type Lane =
  | 'Client'
  | 'AAD'
  | 'ARM'
  | 'RP'
  | 'KeyVault'
  | 'Storage'
  | 'Registry'
  | 'AppInsights'
  | 'Monitor'
  | 'Compute'
  | 'Webservice'
  | 'CosmosDB'
  | 'Platform';

/**
 * Every lane, in the order a request travels from the client to the back end: the order of
 * docs/events.md's sections and of a sequence diagram's participants
 * (packages/core/src/projections/sequence.ts).
 */
export const LANES = [
  'Client',
  'AAD',
  'ARM',
  'RP',
  'KeyVault',
  'Storage',
  'Registry',
  'AppInsights',
  'Monitor',
  'Compute',
  'Webservice',
  'CosmosDB',
  'Platform',
] as const satisfies readonly Lane[];
// Adding a lane to the type without listing it above is a type error.
type UnlistedLanes = Exclude<Lane, (typeof LANES)[number]>;
const everyLaneListed: UnlistedLanes extends never ? true : UnlistedLanes = true;
void everyLaneListed;

/** What each lane stands for, as a reader of the docs and diagrams names it. */
export const LANE_TITLES: Readonly<Record<Lane, string>> = {
  Client: 'Client (CLI, SDK, portal)',
  AAD: 'AAD (Azure Active Directory)',
  ARM: 'ARM (Azure Resource Manager)',
  RP: 'RP (the AML resource provider and its control plane)',
  KeyVault: 'KeyVault',
  Storage: 'Storage',
  Registry: 'Registry (container registry)',
  AppInsights: 'AppInsights (Application Insights)',
  Monitor: 'Monitor (Azure Monitor)',
  Compute: 'Compute (clusters, nodes, run containers, attached VMs)',
  Webservice: 'Webservice (the scoring gateway and its replicas)',
  CosmosDB: 'CosmosDB (the metric store in the platform subscription)',
  Platform: 'Platform (simulator bookkeeping)',
};

/** Whether a string names a lane (a party). */
export const isLane = (name: string): name is Lane => (LANES as readonly string[]).includes(name);

type WorkspaceRef = { workspaceId: string; workspace: string };
type RunRef = WorkspaceRef & { runId: string };
/** One metric row as the run-context library records it (docs/control-plane.md). */
export type MetricRow =
  | { kind: 'scalar'; name: string; value: number | string | boolean; step: number; at: string }
  | { kind: 'list'; name: string; values: Array<number | string | boolean>; at: string }
  | { kind: 'row'; name: string; row: Record<string, number | string | boolean>; at: string }
  | { kind: 'tag'; name: string; value: string; at: string };
export type RunOutcome = 'Completed' | 'Failed' | 'Canceled';
export type ComputeType = 'AmlCompute' | 'VirtualMachine' | 'AKS';
/** A run's control-plane channel: a socket of the run's own container, or of the VM it runs on (S1.3). */
export type ChannelKind = 'container' | 'vm';
export type ProvisionedResource = 'keyVault' | 'storage' | 'registry' | 'appInsights' | 'identity';
/** The four steps management code takes on unmanaged compute (S8.3), in order. */
export type ManagementStep = 'prepareEnvironment' | 'downloadCode' | 'setEnvironment' | 'runScript';
/** S4.2: how a run's input reaches its target: mounted read-only, or downloaded as a writable copy. */
export const RUN_INPUT_MODES = ['mount', 'download'] as const;
export type RunInputMode = (typeof RUN_INPUT_MODES)[number];
/**
 * S4.2: one input of a run: the files under `path` in `datastore` (a blob container of the
 * workspace's storage account), seen by the script at the path `AZUREML_DATAREFERENCE_<name>` gives.
 */
export type RunInputSpec = { name: string; datastore: string; container: string; path: string; mode: RunInputMode };
export type IdentityGrantTarget = 'workspace' | 'storage' | 'keyVault' | 'registry' | 'resourceGroup' | 'keyVaultResourceGroup';

/**
 * An environment's dependencies as installed into an image (S8.3 managed step 1, S8.5): npm
 * packages installed on the host and copied into the image's /node_modules. `digest` keys the
 * data dir's cache of installed trees; `source` says whether npm ran (`registry`) or the tree
 * installed before was used (`cache`); `buildLog` is the blob path of npm's output in the
 * workspace storage (the text itself is never in the log).
 */
export type EnvironmentRef = { digest: string; packages: string[]; source: 'registry' | 'cache'; buildLog: string };

export type EventDataMap = {
  // ---- AAD (S1.1) --------------------------------------------------------------------------
  TenantCreated: { tenantId: string; mfa: 'required' | 'optional'; issuer: string };
  PrincipalRegistered: {
    tenantId: string;
    principal: string;
    principalId: string;
    kind: 'user' | 'servicePrincipal' | 'managedIdentity' | 'application';
    /** A service principal's client id (the token endpoint's client_id). */
    appId?: string;
    /** Which secret the tenant file gave it (never the secret: only its hash is kept, in the directory's vault). */
    credential?: 'clientSecret' | 'password';
  };
  /** `via`: the scenario runner's signIn, or the token endpoint's grant (absent in logs older than it). */
  SignInSucceeded: { principal: string; principalId: string; amr: string[]; via?: 'signIn' | 'client_credentials' | 'password' };
  SignInFailed: { principal: string; code: string; reason: string; via?: 'signIn' | 'client_credentials' | 'password' };
  ArmTokenIssued: { principal: string; principalId: string; tokenId: string; fingerprint: string; audience: string; expiresAt: string };
  // ---- ARM (S2) ----------------------------------------------------------------------------
  SubscriptionCreated: { subscription: string; scope: string; owners: string[] };
  ResourceGroupCreated: { subscription: string; resourceGroup: string; scope: string };
  /** `roleDefinitionId`: the GUID an ARM client named the definition by (absent: derived from the name). */
  RoleDefined: { role: string; actions: string[]; notActions: string[]; assignableScopes: string[]; roleDefinitionId?: string };
  RoleAssigned: { assignmentId: string; principal: string; principalId: string; role: string; scope: string };
  RoleAssignmentRemoved: { assignmentId: string; principal: string; principalId: string; role: string; scope: string; reason: string };
  /** Keys were read by a caller (S4.3, S6.1): which, by fingerprint only. */
  KeysListed: { principal: string; resource: string; scope: string; keys: Array<{ name: string; fingerprint: string }> };
  AuthorizationViolationRecorded: { principal: string; action: string; scope: string; why: string; mode: 'soft' };
  CommandRejected: { command: string; code: string; reason: string; principal?: string; scope?: string; action?: string; evaluation?: AuthorizationEvaluation };
  SupportApplicationCreated: { subscription: string; region: string; application: string; principalId: string };
  // ---- Resource provider: workspace lifecycle (S8.1, S2.5, S4.1, S6.1) ----------------------
  WorkspaceCreationRequested: WorkspaceRef & {
    subscription: string;
    resourceGroup: string;
    region: string;
    edition: 'basic' | 'enterprise';
    customerManagedKey: boolean;
    scope: string;
    keyVaultResourceGroup: string;
  };
  KeyVaultProvisioned: WorkspaceRef & { keyVault: string };
  StorageAccountProvisioned: WorkspaceRef & {
    storageAccount: string;
    blobContainer: string;
    fileShare: string;
    encryption: 'platform-managed' | 'customer-managed';
  };
  ContainerRegistryProvisioned: WorkspaceRef & { registry: string };
  AppInsightsProvisioned: WorkspaceRef & { appInsights: string };
  ManagedIdentityCreated: WorkspaceRef & { identity: string; principalId: string };
  IdentityAccessGranted: WorkspaceRef & { target: IdentityGrantTarget; role: string; scope: string; principalId: string };
  ProvisioningFailed: WorkspaceRef & { resource: ProvisionedResource; reason: string };
  ResourceDeprovisioned: WorkspaceRef & { resource: ProvisionedResource; name: string };
  WorkspaceCreationFailed: WorkspaceRef & { resource: ProvisionedResource; reason: string };
  WorkspaceCreated: WorkspaceRef & { subscription: string; resourceGroup: string; region: string; edition: 'basic' | 'enterprise'; scope: string };
  WorkspaceUpgraded: WorkspaceRef & { from: 'basic'; to: 'enterprise' };
  /** The workspace is gone; its associated resources (`kept`: vault, storage, registry, App Insights) stay, as Azure keeps them. */
  WorkspaceDeleted: WorkspaceRef & { by: string; kept: string[]; computes: string[] };
  IdentityAccessRevoked: WorkspaceRef & { target: IdentityGrantTarget; scope: string; principalId: string };
  KeysResynced: WorkspaceRef & { restored: IdentityGrantTarget[] };
  DatastoreAttached: WorkspaceRef & { datastore: string; container: string };
  // ---- Key Vault (S6.1, S6.3) -----------------------------------------------------------------
  SecretStored: WorkspaceRef & { vault: string; secret: string; version: number; fingerprint: string };
  // ---- Storage (S4.1, S4.3) -------------------------------------------------------------------
  StorageKeyRegenerated: WorkspaceRef & { storageAccount: string; key: 'key1' | 'key2'; fingerprint: string };
  /**
   * S4.2: files were put in a datastore's blob container under `path`, sealed at rest, written by
   * the workspace identity. `fingerprint` is over the files' relative paths and contents (the
   * same as a run's `RunInputMounted` of that path shows): never a key or connection string.
   */
  DatastoreUploaded: WorkspaceRef & { datastore: string; container: string; path: string; files: number; bytes: number; fingerprint: string };
  // ---- Code snapshots (S8.2) ------------------------------------------------------------------
  /** `asset`: the code asset version an ARM client registered it as (docs/azure.md "Jobs"). */
  SnapshotCreated: WorkspaceRef & {
    snapshotId: string;
    experiment: string;
    fileCount: number;
    totalBytes: number;
    reused: boolean;
    ignoreFile: string | null;
    asset?: { name: string; version: string };
  };
  // ---- Compute (S8.3, S4.6) -------------------------------------------------------------------
  /** A compute target was deleted; `idleNodes` still go at their scale-down time (they run nothing). */
  ComputeDeleted: WorkspaceRef & { computeId: string; compute: string; by: string; idleNodes: number };
  ComputeCreated: WorkspaceRef & {
    computeId: string;
    compute: string;
    type: ComputeType;
    vmSize: string;
    minNodes: number;
    maxNodes: number;
    idleSecondsBeforeScaledown: number;
    memoryBytes: number;
    /** AKS: agent nodes and the cluster's region (S1.6: it may differ from the workspace's). */
    agentCount?: number;
    region?: string;
    /** S3.1: the virtual network its nodes (AKS: its replicas) join; absent: none (each has its own loopback). */
    vnet?: string;
  };
  /**
   * S3.1: a virtual network was created by its first member (`member`: the compute or VM that
   * named it): one network namespace holding only loopback, owned by the container `holder`
   * (packages/docker/src/vnet.ts). It is in `subscription` and `region`, and joins only compute
   * of both (docs/security.md "Network").
   */
  VnetCreated: { vnet: string; subscription: string; region: string; holder: string; driver: string; member: string; workspaceId?: string; workspace?: string };
  // ---- Unmanaged compute: user-owned VMs attached with the platform's own SSH key (S8.3, S6.2) --
  /** `vnet` (S3.1): the virtual network the VM joined, in `region` and `subscription`. */
  VmCreated: { vmId: string; vm: string; owner: string; username: string; passwordLogin: boolean; host: string; driver: string; vnet?: string; region?: string; subscription?: string };
  /**
   * The control-plane channel of a VM (its runs' calls come in on it), opened as the VM started:
   * what a resumed session reopens at the same socket with the same id when it takes the VM back.
   */
  VmChannelOpened: { vmId: string; vm: string; channel: string; kind: ChannelKind; socket: string };
  /**
   * A resumed session took back a VM whose container ran on while no simulator was there
   * (packages/platform/src/training/virtual-machines.ts `reattach`): the same container `host`,
   * its login agent answering in the same door, its channel listening again at `socket`.
   * `downForMs`: since the last fact the dead simulator recorded.
   */
  VmReattached: { vmId: string; vm: string; host: string; channel: string; socket: string; downForMs: number };
  /** A resumed session found a VM of its dead simulator gone (`reason`): its runs end PlatformRestarted. */
  VmLost: { vmId: string; vm: string; host: string; reason: string; downForMs: number };
  PlatformKeyVaultProvisioned: { vault: string; scope: string; subscription: string };
  PlatformKeyPairGenerated: WorkspaceRef & { computeId: string; compute: string; algorithm: 'ed25519'; vault: string; secret: string; version: number; fingerprint: string };
  VmKeyAuthorized: WorkspaceRef & { computeId: string; compute: string; vmId: string; vm: string; username: string; fingerprint: string };
  ComputeAttached: WorkspaceRef & {
    computeId: string;
    compute: string;
    type: 'VirtualMachine';
    vmId: string;
    vm: string;
    username: string;
    vault: string;
    secret: string;
    fingerprint: string;
    /** S3.1: the virtual network of the VM (its runs run in it). */
    vnet?: string;
  };
  NodeProvisioningStarted: WorkspaceRef & { computeId: string; compute: string; node: string; forRun: string };
  NodeProvisioningFailed: WorkspaceRef & { computeId: string; compute: string; node: string; reason: string };
  NodeProvisioned: WorkspaceRef & { computeId: string; compute: string; node: string; osDisk: string; tempDisk: string; osDiskEncrypted: true; tempDiskEncrypted: false };
  NodeAssigned: WorkspaceRef & { computeId: string; compute: string; node: string; runId: string };
  NodeReleased: WorkspaceRef & { computeId: string; compute: string; node: string; runId: string };
  ClusterIdleTimeoutElapsed: WorkspaceRef & { computeId: string; compute: string; node: string; idleSince: string };
  NodeDeprovisioned: WorkspaceRef & { computeId: string; compute: string; node: string; osDiskDeleted: true; reason: string };
  // ---- Runs (S1.3, S8.3, S8.4) ----------------------------------------------------------------
  RunSubmitted: RunRef & {
    experiment: string;
    computeId: string;
    compute: string;
    computeType: ComputeType;
    snapshotId: string;
    script: string;
    args: string[];
    dependencies: string[];
    /** S4.2: data of the workspace's datastores the target sees when it starts (absent: none). */
    inputs?: RunInputSpec[];
  };
  /**
   * S4.2: an input's files, read from its datastore with the workspace identity and decrypted,
   * appeared read-only (`mode: mount`) or as a writable copy (`download`) at `mountPath` inside
   * the run's target, before it started. `fingerprint`: over the files' relative paths and contents.
   */
  RunInputMounted: RunRef & {
    input: string;
    datastore: string;
    container: string;
    path: string;
    mode: RunInputMode;
    mountPath: string;
    files: number;
    bytes: number;
    fingerprint: string;
  };
  RunTokenIssued: RunRef & { tokenId: string; fingerprint: string; expiresAt: string; channel: string };
  RunChannelOpened: RunRef & { channel: string; kind: ChannelKind; socket: string };
  RunChannelClosed: RunRef & { channel: string; kind: ChannelKind };
  /**
   * A resumed session took back a run whose target ran on while no simulator was there
   * (packages/platform/src/training/run-manager.ts `reattach`): its channel listens again at
   * `socket`, its token still verifies, its watchdog restarted. `downForMs`: since the last fact
   * the dead simulator recorded.
   */
  RunReattached: RunRef & { container: string; channel: string; socket: string; downForMs: number };
  /**
   * A resumed session went on with a run whose target had not started (packages/platform/src/training/run-manager.ts
   * `driveOn`): `from` is the status it stood at, `next` the step of its statechart carried out
   * again. `replacedToken`: the id of a token whose value died with the simulator (values are never
   * logged); the RunTokenIssued that follows is the run's token from then on. `downForMs`: since
   * the last fact the dead simulator recorded.
   */
  RunResumed: RunRef & { from: string; next: string; replacedToken?: string; downForMs: number };
  /** `environment`: the dependencies installed into the image (absent with none, and on the process driver). */
  RunImagePrepared: RunRef & { image: string; reused: boolean; dependencies: string[]; environment?: EnvironmentRef };
  ManagementCodeWritten: RunRef & { fileShare: string; path: string };
  RunQueued: RunRef & { compute: string; position: number };
  ContainerStarted: RunRef & { node: string; container: string; image: string; driver: string };
  RunStatusReported: RunRef & { status: 'Preparing' | 'Running' | 'Finalizing'; step: string };
  VmLoginSucceeded: RunRef & { vmId: string; vm: string; username: string; fingerprint: string };
  VmLoginRefused: RunRef & { vmId: string; vm: string; username: string; fingerprint: string; reason: string };
  ManagementCodeStarted: RunRef & { vm: string; pid: number; workDir: string };
  ManagementStepCompleted: RunRef & { vm: string; step: ManagementStep; detail: string };
  ManagementCodeExited: RunRef & { vm: string; pid: number; exitCode: number };
  MetricsWrittenBack: RunRef & { batch: number; count: number; rows: MetricRow[] };
  OutputUploaded: RunRef & { path: string; bytes: number };
  RunLogsUploaded: RunRef & { stdoutBytes: number; stderrBytes: number; tail: string };
  RunScriptEnded: RunRef & { exitCode: number; error?: string };
  /**
   * Recorded on the run whose channel the call came in on (the caller), never on the run it
   * named: a hostile caller cannot write into its victim's stream. `target` is the path it
   * asked for; `tokenRun` the run of the token it presented, when that token was genuine.
   */
  RunCallRefused: RunRef & { call: string; code: string; reason: string; channel?: string; target?: string; tokenRun?: string };
  /** `reason`: why, when the platform itself asked (e.g. the simulator was interrupted). */
  RunCancelRequested: RunRef & { by: string; reason?: string };
  RunHeartbeatLost: RunRef & { lastHeartbeatAt: string; silentForMs: number };
  RunHeartbeatResumed: RunRef & { silentForMs: number };
  ContainerExited: RunRef & { node: string; exitCode: number; oomKilled: boolean };
  RunCompleted: RunRef;
  RunFailed: RunRef & { reason: string };
  RunCanceled: RunRef & { reason?: string };
  RunTokenRevoked: RunRef & { tokenId: string };
  RunTokenExpired: RunRef & { tokenId: string };
  // ---- Models (S8.5) ----------------------------------------------------------------------------
  ModelRegistered: WorkspaceRef & {
    modelId: string;
    model: string;
    version: number;
    files: Array<{ path: string; bytes: number; sha256: string }>;
    tags: Record<string, string>;
  };
  // ---- Images (S8.5, S4.5) -------------------------------------------------------------------
  ImageCreationRequested: WorkspaceRef & { imageId: string; image: string; version: number; models: string[]; scoringScript: string; dependencies: string[] };
  ImageBuilt: WorkspaceRef & { imageId: string; image: string; tag: string; reused: boolean; environment?: EnvironmentRef };
  ImageScoringScriptChecked: WorkspaceRef & { imageId: string; image: string; ok: boolean; detail: string };
  ImagePushed: WorkspaceRef & { imageId: string; image: string; registry: string; repository: string; digest: string };
  ImageCreated: WorkspaceRef & { imageId: string; image: string; location: string };
  ImageCreationFailed: WorkspaceRef & { imageId: string; image: string; reason: string };
  ImageCreationTimedOut: WorkspaceRef & { imageId: string; image: string; afterMs: number };
  /**
   * A resumed session goes on with an image its dead simulator left being made
   * (packages/platform/src/inference/images.ts `resume`): `effect`, the step under way, is
   * carried out again (the build is content-addressed, the push idempotent).
   */
  ImageCreationResumed: WorkspaceRef & { imageId: string; image: string; effect: 'buildImage' | 'checkScoringScript' | 'pushImage' | 'completeImage' };
  // ---- Web services (S1.4, S1.5, S7.3, S8.5) ------------------------------------------------------
  WebserviceDeploymentRequested: WorkspaceRef & {
    serviceId: string;
    service: string;
    imageId: string;
    image: string;
    target: 'ACI' | 'AKS';
    /** The AKS cluster, for AKS. */
    compute?: string;
    authEnabled: boolean;
    tokenAuthEnabled: boolean;
    replicas: number;
    cpu: number;
    memoryGb: number;
    /**
     * S5.1: whether the service is served over HTTPS (false: the deployment asked for plain
     * HTTP), so that a resumed or restored service is served as it was deployed. Logs written
     * before it was recorded lack it: a deployment resumed from one is served over HTTPS (the
     * default), a restored service as its last scoring URI says.
     */
    tls?: boolean;
    /** S3.1: the virtual network the replicas join (an AKS cluster's, or the ACI deployment's own). */
    vnet?: string;
  };
  ServiceKeysGenerated: WorkspaceRef & { serviceId: string; service: string; primary: string; secondary: string };
  /** `vnet`, `port` (S3.1): in a virtual network the replica also listens on 127.0.0.1:`port` of the VNet's loopback. */
  ReplicaStarted: WorkspaceRef & { serviceId: string; service: string; replica: string; container: string; vnet?: string; port?: number };
  /** `caCert`: the path of the simulator's CA certificate, which clients trust to call the HTTPS endpoint (S5.1). */
  WebserviceHealthy: WorkspaceRef & { serviceId: string; service: string; scoringUri: string; caCert?: string };
  /**
   * A resumed session took back a service whose replicas ran on while no simulator was there
   * (packages/platform/src/inference/webservices.ts `restore`): a new gateway routes to them at
   * `scoringUri`, with the same keys and the same CA.
   */
  WebserviceRestored: WorkspaceRef & { serviceId: string; service: string; scoringUri: string; replicas: number; caCert?: string };
  /** A replica of a running service went down (`replica`: which one); the others, if any, still serve. */
  WebserviceUnhealthy: WorkspaceRef & { serviceId: string; service: string; replica: string; reason: string };
  /** The deployment did not bring the service up (a replica exited or never answered); its replicas were removed. */
  WebserviceFailed: WorkspaceRef & { serviceId: string; service: string; reason: string };
  WebserviceUnschedulable: WorkspaceRef & { serviceId: string; service: string; compute: string; replicas: number; capacity: number };
  /**
   * A resumed session goes on with a deployment its dead simulator left starting its replicas
   * (packages/platform/src/inference/webservices.ts `resumeDeployments`): `kept` replicas ran on
   * and answer, `restarting` are started (again), with the keys kept from before.
   */
  WebserviceDeploymentResumed: WorkspaceRef & { serviceId: string; service: string; kept: string[]; restarting: string[] };
  ServiceTokenIssued: WorkspaceRef & {
    serviceId: string;
    service: string;
    tokenId: string;
    fingerprint: string;
    expiresAt: string;
    refreshBy: string;
    workspaceRegion: string;
    clusterRegion: string;
    durationMs: number;
  };
  /** A web-service token reached its refreshBy (S1.6): its holder should get a new one before `expiresAt`. */
  ServiceTokenRefreshDue: WorkspaceRef & { serviceId: string; service: string; tokenId: string; refreshBy: string; expiresAt: string };
  ServiceKeyRegenerated: WorkspaceRef & { serviceId: string; service: string; key: 'Primary' | 'Secondary'; fingerprint: string };
  WebserviceDeleted: WorkspaceRef & { serviceId: string; service: string };
  ScoringRequestRecorded: WorkspaceRef & {
    serviceId: string;
    service: string;
    HTTPMethod: string;
    UserAgent: string;
    ComputeType: string;
    RequestUrl: string;
    StatusCode: number;
    RequestId: string;
    DurationMs: number;
  };
  PlatformTelemetryPushed: WorkspaceRef & { serviceId: string; service: string; RequestId: string; StatusCode: number };
  // ---- The effect runner (packages/platform/src/runtime/effect-runner.ts) -----------------------
  /**
   * An effect a statechart named, whose work outside the log a crash could leave half-done, is
   * about to be carried out; its outcome follows on the same stream. `effectId` is
   * `<position>:<index>` of the fact that named it: no effect id is carried out twice.
   */
  EffectStarted: { effect: string; effectId: string; params?: Record<string, unknown> };
  // ---- Scenario bookkeeping ---------------------------------------------------------------------
  ClockAdvanced: { byMs: number; to: string };
  /**
   * A scenario began in this session: its file and a digest of its steps, so that a resumed
   * session (packages/scenario/src/run/run-scenario.ts `continueScenario`) plays the rest of
   * the same scenario only.
   */
  ScenarioStarted: { scenario: string; file: string; digest: string; steps: number };
  /**
   * A scenario step ended (`ok`: its expectation held; `made`: what it made, for later steps
   * naming it by its `id`). `interrupted`: the simulator died in it after it had acted; the
   * resumed session took what it made from its facts and did not play it again.
   */
  ScenarioStepEnded: { index: number; line: number; verb: string; ok: boolean; made?: string; interrupted?: boolean };
  FaultInjected: { fault: string; target: string };
  /**
   * What a start-up sweep removed of one session that had gone (`session`: a session id, or
   * `data-…` for a temporary data dir); `why` its lease counted as lapsed.
   */
  OrphansSwept: {
    session: string;
    why: 'ownerExited' | 'leaseExpired' | 'leaseReleased';
    containers: number;
    volumes: number;
    images: number;
    registries: number;
    tempDirs: number;
    dataDirs: number;
  };
  /** The simulator got a signal: `canceledRuns` are canceled next with `reason`, then everything of the session is removed. */
  SessionInterrupted: { signal: string; reason: string; canceledRuns: string[] };
  /** A session whose simulator died was ended by the next one (packages/core/src/recovery/abandoned.ts). */
  SessionRecovered: { session: string; by: string; reason: string; runs: string[]; nodes: string[]; images: string[]; services: string[] };
};

export type EventType = keyof EventDataMap;

/** An event as a statechart consumes it: its type and its payload, flat. */
export type MachineEvent<K extends EventType> = { type: K } & EventDataMap[K];

/** A committed event of a known type, typed by its `type`. */
export type AmlEvent = { [K in EventType]: StoredEvent<K, EventDataMap[K]> }[EventType];

/**
 * What the catalog says of one event type. `lane`: where the timeline shows it. `from` and
 * `to`: the event as an arrow, from the party that acted to the party it acted on
 * (`RunStatusReported`: Compute reports to the RP's control plane; `ArmTokenIssued`: AAD gives
 * the client its token); a refusal points at the party that refused (`CommandRejected`:
 * Client → ARM). Bookkeeping of the simulator itself is Platform → Platform.
 */
export type EventDoc = { lane: Lane; from: Lane; to: Lane; cites: readonly string[]; doc: string };

/** Lane, arrow, requirement ids and one line of documentation per event type. */
export const EVENT_CATALOG: { readonly [K in EventType]: EventDoc } = {
  TenantCreated: { lane: 'AAD', from: 'Platform', to: 'AAD', cites: ['S1.1'], doc: 'A simulated Azure AD directory exists, with its MFA policy.' },
  PrincipalRegistered: { lane: 'AAD', from: 'AAD', to: 'AAD', cites: ['S1.1', 'S2.5', 'S2.6'], doc: 'A user, service principal, managed identity or application exists in the directory.' },
  SignInSucceeded: { lane: 'AAD', from: 'Client', to: 'AAD', cites: ['S1.1'], doc: 'A principal signed in; amr lists the factors given.' },
  SignInFailed: { lane: 'AAD', from: 'Client', to: 'AAD', cites: ['S1.1'], doc: 'A sign-in was refused (e.g. AADSTS50076: second factor required).' },
  ArmTokenIssued: { lane: 'AAD', from: 'AAD', to: 'Client', cites: ['S1.1', 'S1.2'], doc: 'An ARM access token was minted (only its fingerprint is recorded).' },
  SubscriptionCreated: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S2.1'], doc: 'A subscription exists with its Owners.' },
  ResourceGroupCreated: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S8.1'], doc: 'A resource group was created.' },
  RoleDefined: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S2.3'], doc: 'A custom role definition was created.' },
  RoleAssigned: { lane: 'ARM', from: 'ARM', to: 'AAD', cites: ['S2.1', 'S2.2'], doc: 'A role was assigned to a principal at a scope.' },
  RoleAssignmentRemoved: { lane: 'ARM', from: 'ARM', to: 'AAD', cites: ['S2.5'], doc: 'A role assignment was removed.' },
  KeysListed: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S4.3', 'S6.1'], doc: "A caller read a resource's access keys (listKeys); the event names them by fingerprint only." },
  AuthorizationViolationRecorded: { lane: 'ARM', from: 'ARM', to: 'Client', cites: ['S2.2'], doc: 'RBAC in soft mode: the call was allowed but would have been denied.' },
  CommandRejected: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S1.2', 'S2.2'], doc: 'A call was refused; nothing else was changed.' },
  SupportApplicationCreated: { lane: 'AAD', from: 'RP', to: 'AAD', cites: ['S2.6'], doc: 'AML created its per-region support application with Contributor in the subscription.' },
  WorkspaceCreationRequested: { lane: 'ARM', from: 'ARM', to: 'RP', cites: ['S8.1'], doc: 'ARM accepted a create-workspace call and asked the AML resource provider to provision it.' },
  KeyVaultProvisioned: { lane: 'KeyVault', from: 'RP', to: 'KeyVault', cites: ['S8.1', 'S6.1'], doc: "The workspace's Key Vault was created in the user's subscription." },
  StorageAccountProvisioned: { lane: 'Storage', from: 'RP', to: 'Storage', cites: ['S8.1', 'S4.1'], doc: 'The storage account (blob container and file share), encrypted at rest.' },
  ContainerRegistryProvisioned: { lane: 'Registry', from: 'RP', to: 'Registry', cites: ['S8.1'], doc: "The workspace's container registry was created." },
  AppInsightsProvisioned: { lane: 'AppInsights', from: 'RP', to: 'AppInsights', cites: ['S8.1', 'S7.3'], doc: 'Application Insights was created with the workspace.' },
  ManagedIdentityCreated: { lane: 'AAD', from: 'RP', to: 'AAD', cites: ['S2.5'], doc: 'The system-assigned managed identity, named like the workspace.' },
  IdentityAccessGranted: { lane: 'ARM', from: 'RP', to: 'ARM', cites: ['S2.5', 'S6.3'], doc: 'One of the managed identity grants of S2.5.' },
  ProvisioningFailed: { lane: 'RP', from: 'RP', to: 'ARM', cites: ['S8.1'], doc: 'Provisioning one of the workspace resources failed.' },
  ResourceDeprovisioned: { lane: 'RP', from: 'RP', to: 'ARM', cites: ['S8.1'], doc: 'A resource created for a failed workspace was removed again.' },
  WorkspaceCreationFailed: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.1'], doc: 'Workspace creation ended in failure; nothing it created remains.' },
  WorkspaceCreated: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.1'], doc: 'The workspace is ready.' },
  WorkspaceUpgraded: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S2.2'], doc: 'The workspace was upgraded to the Enterprise edition.' },
  WorkspaceDeleted: {
    lane: 'ARM',
    from: 'Client',
    to: 'RP',
    cites: ['S8.1'],
    doc: 'The workspace and its compute targets were deleted; the Key Vault, storage account, registry and App Insights it used are kept, as Azure keeps them.',
  },
  IdentityAccessRevoked: { lane: 'ARM', from: 'Client', to: 'ARM', cites: ['S2.5'], doc: "An administrator removed one of the managed identity's grants." },
  KeysResynced: { lane: 'RP', from: 'RP', to: 'ARM', cites: ['S2.5'], doc: "resync keys restored the managed identity's grants." },
  DatastoreAttached: { lane: 'RP', from: 'Client', to: 'RP', cites: ['S2.2', 'S6.1'], doc: 'A datastore was attached; its connection string went to the key vault.' },
  SecretStored: { lane: 'KeyVault', from: 'RP', to: 'KeyVault', cites: ['S6.1'], doc: 'A secret version was written to a key vault (value never logged).' },
  StorageKeyRegenerated: { lane: 'Storage', from: 'Client', to: 'Storage', cites: ['S4.3'], doc: 'A storage access key was regenerated; the old one stopped working.' },
  DatastoreUploaded: {
    lane: 'Storage',
    from: 'Client',
    to: 'Storage',
    cites: ['S4.2', 'S4.1'],
    doc: "Training data was put in a datastore's blob container, encrypted at rest, written by the workspace identity (files, bytes and a fingerprint; no credential).",
  },
  SnapshotCreated: { lane: 'Storage', from: 'Client', to: 'Storage', cites: ['S8.2', 'S4.1'], doc: 'A code snapshot was packed, content-hashed and stored encrypted in the workspace blob storage.' },
  ComputeDeleted: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: 'A compute target was deleted (it ran nothing; idle nodes go at their scale-down time).' },
  ComputeCreated: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3', 'S2.2'], doc: 'A compute target was created or attached.' },
  VnetCreated: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S3.1'], doc: 'A virtual network: one loopback-only network namespace (a holder container) that the compute naming it joins.' },
  VmCreated: { lane: 'Compute', from: 'Client', to: 'Compute', cites: ['S8.1', 'S8.3'], doc: "A user-owned VM (a long-lived container) started; its login agent accepts only keys in its authorized keys (and the admin password, once, to add one)." },
  VmChannelOpened: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S1.3', 'S8.3'], doc: "The VM's control-plane channel opened: a socket owned by the platform, mounted read-only in the VM; the runs on the VM call back through it, each with its own token." },
  VmReattached: {
    lane: 'Compute',
    from: 'RP',
    to: 'Compute',
    cites: ['S8.3'],
    doc: "The simulator was restarted while the user's VM ran on: the resumed session took back the same VM, its login agent and its channel (same socket, same id); the management code still running on it is waited for again.",
  },
  VmLost: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: "The simulator was restarted and the user's VM was gone: the runs on it end PlatformRestarted." },
  PlatformKeyVaultProvisioned: { lane: 'KeyVault', from: 'RP', to: 'KeyVault', cites: ['S6.2'], doc: "The platform's own key vault, in the platform's subscription: only the platform may read it." },
  PlatformKeyPairGenerated: { lane: 'KeyVault', from: 'RP', to: 'KeyVault', cites: ['S6.2'], doc: "AML generated its own SSH key pair for a compute target; the private key went to the platform key vault (fingerprint only)." },
  VmKeyAuthorized: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S6.2'], doc: "The user's VM password was used once to add the platform's public key to the VM's authorized keys; the password is kept nowhere." },
  ComputeAttached: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.1', 'S8.3', 'S2.2', 'S6.2'], doc: 'A VM was attached to the workspace as unmanaged compute, reached with the platform key.' },
  NodeProvisioningStarted: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S4.6'], doc: 'The cluster scales up: a node is being provisioned for a queued run.' },
  NodeProvisioningFailed: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S4.6'], doc: 'Provisioning a node failed: the node is unusable and is removed.' },
  NodeProvisioned: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S4.6'], doc: 'A cluster node exists: an encrypted OS disk and an unencrypted temporary disk.' },
  NodeAssigned: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: 'A node was given to a run.' },
  NodeReleased: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S4.6'], doc: 'A run gave its node back; the node is idle.' },
  ClusterIdleTimeoutElapsed: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S4.6'], doc: 'A node stayed idle for idleSecondsBeforeScaledown with nothing queued.' },
  NodeDeprovisioned: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S4.6'], doc: "The node's VM was deprovisioned and its OS disk deleted." },
  RunSubmitted: { lane: 'RP', from: 'Client', to: 'RP', cites: ['S8.3'], doc: 'AML was called with a snapshot id and created a run.' },
  RunInputMounted: {
    lane: 'Storage',
    from: 'Storage',
    to: 'Compute',
    cites: ['S4.2', 'S2.5'],
    doc: "A run's input was read from its datastore with the workspace identity, decrypted and mounted into the run's target (read-only for mode mount) before it started.",
  },
  RunTokenIssued: { lane: 'AAD', from: 'AAD', to: 'Compute', cites: ['S1.3'], doc: 'A short-lived AML token scoped to the workspace and the run, and bound to the run\'s control-plane channel (fingerprint only).' },
  RunChannelOpened: {
    lane: 'RP',
    from: 'RP',
    to: 'Compute',
    cites: ['S1.3'],
    doc: "The run's control-plane channel opened: a socket of its own (kind container) or its VM's (kind vm), owned by the platform; only calls with this run's token are accepted on it.",
  },
  RunReattached: {
    lane: 'RP',
    from: 'RP',
    to: 'Compute',
    cites: ['S1.3', 'S8.3'],
    doc: "The simulator was restarted while the run's container ran on: the resumed session opened the run's channel again at the same socket and goes on with its token, heartbeats and write-back.",
  },
  RunResumed: {
    lane: 'RP',
    from: 'RP',
    to: 'Compute',
    cites: ['S1.3', 'S8.3'],
    doc: "The simulator was restarted before the run's container started: the resumed session carries out its next step again (a node asked for, provisioned, its container started), with a new token if the old one's value died with the simulator.",
  },
  RunChannelClosed: { lane: 'RP', from: 'RP', to: 'Compute', cites: ['S1.3'], doc: "The run ended: its control-plane channel no longer accepts its calls (a container's socket is removed)." },
  RunImagePrepared: { lane: 'Registry', from: 'RP', to: 'Registry', cites: ['S8.3'], doc: 'Managed step 1: the run image was built, or an identical one reused; its environment dependencies were installed with npm on the host (or taken from the data dir cache) into /node_modules.' },
  ManagementCodeWritten: { lane: 'Storage', from: 'RP', to: 'Storage', cites: ['S8.3'], doc: "Managed step 2: the management code was written to the user's file share." },
  RunQueued: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3', 'S4.6'], doc: 'The run waits for a free node.' },
  ContainerStarted: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: 'Managed step 3: the container started with the management code as its command.' },
  RunStatusReported: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: 'The management code reported a step over the control plane.' },
  VmLoginSucceeded: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3', 'S6.2'], doc: "Unmanaged: the platform took its key from the platform vault and logged in to the VM (the VM verified the key's signature)." },
  VmLoginRefused: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3', 'S6.2'], doc: "Unmanaged: the VM refused the platform's login (its key is not in the VM's authorized keys)." },
  ManagementCodeStarted: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: 'Unmanaged: AML started the management code on the VM, with the run token in its environment.' },
  ManagementStepCompleted: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: "Unmanaged: the management code on the VM finished one of its four steps (prepare environment, download code, set variables, run the user's script)." },
  ManagementCodeExited: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: 'Unmanaged: the management code on the VM exited with this code.' },
  MetricsWrittenBack: { lane: 'CosmosDB', from: 'Compute', to: 'CosmosDB', cites: ['S8.4', 'S1.3', 'S4.4'], doc: 'A batch of metrics was written back with the run token into the metric store.' },
  OutputUploaded: { lane: 'Storage', from: 'Compute', to: 'Storage', cites: ['S4.1'], doc: 'A file from ./outputs was uploaded to the encrypted blob store.' },
  RunLogsUploaded: { lane: 'Storage', from: 'Compute', to: 'Storage', cites: ['S4.1'], doc: "The script's output was uploaded (its tail is kept on the run)." },
  RunScriptEnded: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: "The user's script ended with this exit code." },
  RunCallRefused: { lane: 'RP', from: 'Compute', to: 'RP', cites: ['S1.3'], doc: "A control-plane call from compute was refused (token expired, revoked, out of scope, or another run's token on this channel)." },
  RunHeartbeatLost: { lane: 'Compute', from: 'RP', to: 'Compute', cites: ['S8.3'], doc: 'The running management code stopped sending heartbeats: the run is NotResponding.' },
  RunHeartbeatResumed: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: 'Heartbeats came back: the run is Running again.' },
  RunCancelRequested: { lane: 'RP', from: 'Client', to: 'RP', cites: ['S8.3'], doc: 'Someone asked to cancel the run.' },
  ContainerExited: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.3'], doc: 'The run container exited (exit code, and whether the memory limit killed it).' },
  RunCompleted: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.3'], doc: 'The run finished successfully.' },
  RunFailed: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.3'], doc: 'The run failed; the reason says why.' },
  RunCanceled: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.3'], doc: 'The run was canceled.' },
  RunTokenRevoked: { lane: 'AAD', from: 'RP', to: 'AAD', cites: ['S1.3'], doc: 'The run ended: its token stops working.' },
  RunTokenExpired: { lane: 'AAD', from: 'AAD', to: 'Compute', cites: ['S1.3'], doc: 'The run token reached its expiry.' },
  ModelRegistered: {
    lane: 'RP',
    from: 'Client',
    to: 'RP',
    cites: ['S8.5', 'S7.1', 'S7.2', 'S4.1'],
    doc: 'A model version was registered; its files are kept encrypted in the workspace blob storage. Not in the activity log (S7.2).',
  },
  ImageCreationRequested: { lane: 'RP', from: 'Client', to: 'RP', cites: ['S8.5'], doc: 'An image from models, a scoring script and dependencies was asked for (status Running).' },
  ImageBuilt: { lane: 'Registry', from: 'RP', to: 'Registry', cites: ['S8.5'], doc: 'The Docker image was built on the Node base (or an identical one reused), with its dependencies installed with npm into /node_modules.' },
  ImageScoringScriptChecked: { lane: 'Registry', from: 'RP', to: 'Registry', cites: ['S8.5'], doc: 'The scoring script was loaded in the image: it exports run (and init); or the error.' },
  ImagePushed: { lane: 'Registry', from: 'RP', to: 'Registry', cites: ['S8.5', 'S4.5', 'S6.1'], doc: "The image was pushed to the workspace's container registry with credentials from the key vault." },
  ImageCreated: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.5'], doc: 'The image is ready in the registry (status Succeeded).' },
  ImageCreationTimedOut: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.5'], doc: 'The image took longer than the build timeout (status TimedOut).' },
  ImageCreationFailed: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.5'], doc: 'The image failed (status Failed); the reason is the build or scoring-script error.' },
  ImageCreationResumed: {
    lane: 'RP',
    from: 'RP',
    to: 'Registry',
    cites: ['S8.5'],
    doc: 'The simulator was restarted while the image was being made: the resumed session carries out the step under way again (the build is reused, the push idempotent).',
  },
  WebserviceDeploymentRequested: { lane: 'RP', from: 'Client', to: 'RP', cites: ['S8.5', 'S1.4'], doc: 'A web service is being deployed from an image (status Transitioning).' },
  ServiceKeysGenerated: { lane: 'RP', from: 'RP', to: 'Webservice', cites: ['S1.5'], doc: 'Key auth is on: a primary and a secondary key were made (fingerprints only).' },
  ReplicaStarted: { lane: 'Compute', from: 'RP', to: 'Webservice', cites: ['S8.5'], doc: 'A scoring replica container started from the image pulled from the registry.' },
  WebserviceHealthy: { lane: 'RP', from: 'Webservice', to: 'RP', cites: ['S8.5'], doc: 'Every replica answered its liveness check: the service scores.' },
  WebserviceRestored: {
    lane: 'RP',
    from: 'RP',
    to: 'Webservice',
    cites: ['S8.5', 'S5.1'],
    doc: 'The simulator was restarted while the replicas ran on: the resumed session serves them again behind a new gateway, with the same keys and CA.',
  },
  WebserviceUnhealthy: { lane: 'RP', from: 'Webservice', to: 'RP', cites: ['S8.5'], doc: 'A replica of a running service went down (its container exited); the service answers from the replicas left, or 503 when none is.' },
  WebserviceFailed: { lane: 'RP', from: 'RP', to: 'Client', cites: ['S8.5'], doc: "The deployment failed: a replica did not come up; the reason is its scoring server's error. The replicas were removed." },
  WebserviceUnschedulable: { lane: 'Compute', from: 'Compute', to: 'RP', cites: ['S8.5'], doc: 'The AKS cluster has too few agents for the replicas asked for.' },
  WebserviceDeploymentResumed: {
    lane: 'RP',
    from: 'RP',
    to: 'Webservice',
    cites: ['S8.5'],
    doc: 'The simulator was restarted while the replicas were being started: the resumed session keeps those that ran on and starts the rest, with the same keys.',
  },
  ServiceTokenIssued: {
    lane: 'AAD',
    from: 'AAD',
    to: 'Client',
    cites: ['S1.6'],
    doc: "A web-service token was issued by the workspace's region (fingerprint only); durationMs grows with the distance to the cluster's region.",
  },
  ServiceTokenRefreshDue: { lane: 'AAD', from: 'AAD', to: 'Client', cites: ['S1.6'], doc: 'A web-service token reached its refreshBy (half its lifetime): its holder should get a new one before it expires.' },
  ServiceKeyRegenerated: { lane: 'RP', from: 'Client', to: 'Webservice', cites: ['S1.5'], doc: 'One key was regenerated: its old value is refused from the next request on.' },
  WebserviceDeleted: { lane: 'RP', from: 'RP', to: 'Webservice', cites: ['S8.5'], doc: 'The web service and its replicas are gone.' },
  ScoringRequestRecorded: { lane: 'AppInsights', from: 'Webservice', to: 'AppInsights', cites: ['S7.3'], doc: 'App Insights recorded a scoring request, accepted or refused.' },
  PlatformTelemetryPushed: { lane: 'Monitor', from: 'Webservice', to: 'Monitor', cites: ['S8.5'], doc: "Scoring telemetry also went to the platform's own subscription." },
  EffectStarted: {
    lane: 'Platform',
    from: 'Platform',
    to: 'Platform',
    cites: [],
    doc: "The platform began an effect the stream's statechart named (provisioning or rolling back a workspace resource; building, checking or pushing an image); its outcome is the next fact. An effect whose start is recorded is never carried out again.",
  },
  ClockAdvanced: { lane: 'Platform', from: 'Platform', to: 'Platform', cites: [], doc: 'The virtual clock moved forward.' },
  ScenarioStarted: { lane: 'Client', from: 'Client', to: 'Platform', cites: [], doc: 'A scenario began playing in this session (its file and digest: a resumed session plays the rest of the same one).' },
  ScenarioStepEnded: { lane: 'Client', from: 'Client', to: 'Platform', cites: [], doc: "A scenario step ended, and whether its expectation held: where a resumed session's scenario goes on from." },
  FaultInjected: { lane: 'Platform', from: 'Client', to: 'Platform', cites: [], doc: 'A scenario armed a fault.' },
  OrphansSwept: {
    lane: 'Platform',
    from: 'Platform',
    to: 'Compute',
    cites: [],
    doc: "At start-up, what a session that had gone left was removed: its containers, volumes, images, registry processes, temp dirs and temporary data dir. Its lease had lapsed (ownerExited: seen dead from its own PID namespace; leaseExpired: not renewed in time; leaseReleased: released with objects left); a live simulator's objects are never swept.",
  },
  SessionRecovered: {
    lane: 'Platform',
    from: 'Platform',
    to: 'RP',
    cites: ['S8.3', 'S8.5', 'S4.6'],
    doc: 'A session whose simulator stopped before its work ended was recovered by the next one: its unfinished runs failed, its nodes deprovisioned, its image builds failed and its services marked down, with this reason.',
  },
  SessionInterrupted: {
    lane: 'Platform',
    from: 'Platform',
    to: 'Compute',
    cites: [],
    doc: 'The simulator got SIGINT or SIGTERM: its live runs are canceled with the reason, then its replicas, containers, volumes, images and registries go.',
  },
};

export const isKnownEventType = (type: string): type is EventType => Object.prototype.hasOwnProperty.call(EVENT_CATALOG, type);

export const laneOf = (type: string): Lane => (isKnownEventType(type) ? EVENT_CATALOG[type].lane : 'Platform');

/** The arrow an event draws: the party that acted and the party it acted on (Platform → Platform for an unknown type). */
export const arrowOf = (type: string): { from: Lane; to: Lane } => {
  if (!isKnownEventType(type)) return { from: 'Platform', to: 'Platform' };
  const { from, to } = EVENT_CATALOG[type];
  return { from, to };
};
