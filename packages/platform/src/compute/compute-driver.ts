import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { sessionTempPath } from '../runtime/session-temp';
import type { EnvironmentReport } from './environments';
import { openSocketDoor, type SocketDoor } from '../runtime/socket-doors';

/**
 * Where a run's management code executes (S8.3). Two implementations share one contract
 * suite: `docker` (real containers with no network, the default whenever an engine answers)
 * and `process` (the same management code as a local child process, for machines without
 * Docker and fast tests). Both reach the platform only through the control-plane socket.
 * They also host user-owned VMs (S8.3 unmanaged compute): a long-lived container or process
 * whose only door is a login agent on a unix socket.
 */
export type NodeDisks = {
  /** The node's OS disk: encrypted with a platform key (S4.6). */
  osDisk: string;
  /** The node's local temporary disk: NOT encrypted, may hold training data (S4.6). */
  tempDisk: string;
};

export type RunLaunch = {
  session: string;
  runId: string;
  /**
   * The id of the `startContainer` effect this start carries out: starting twice with the same
   * id gives the target the first start made, never a second one (a retried or resumed effect).
   */
  effectId?: string;
  workspace: string;
  /** Image from `prepareImage` (ignored by the process driver). */
  image: string;
  node: { name: string; disks: NodeDisks };
  /** Host directory holding the management code and the run module (the file share, S8.3 step 2). */
  agentDir: string;
  /** Host directory of the run's own control-plane socket (mounted read-only: the platform owns it). */
  controlDir: string;
  /** File name of the socket inside controlDir. */
  socketName: string;
  env: Record<string, string>;
  memoryBytes: number;
  nanoCpus: number;
  /** S3.1: the VNet holder whose loopback-only namespace the target joins (absent: a loopback of its own). */
  vnetHolder?: string;
  /**
   * S4.2: host directories of the run's inputs, bound into the target at `targetPath` (read-only
   * unless `readOnly` is false). The process driver's target sees host paths: there `targetPath`
   * must be `hostPath`.
   */
  mounts?: Array<{ hostPath: string; targetPath: string; readOnly: boolean }>;
};

export type RunningCompute = {
  /** Container id or process id. */
  id: string;
  wait(): Promise<{ exitCode: number; oomKilled: boolean }>;
  /** Stop it now (cancel, killContainer fault). */
  kill(): Promise<void>;
  /** Freeze it: it neither works nor exits (freezeContainer fault: the heartbeat stops). */
  freeze(): Promise<void>;
  /** Free what it used (container, process). */
  remove(): Promise<void>;
  /**
   * Engine liveness (managed compute): does the target still work, in the driver's own word —
   * the container is running and not frozen, the process alive and not stopped? The platform
   * asks it when a run's heartbeats fall silent: on managed compute the script runs on the
   * management code's own thread, and a long synchronous training loop sends no heartbeat
   * without the target being hung. Absent (an attached VM): heartbeats alone decide.
   */
  responsive?(): Promise<boolean>;
};

/** A user-owned VM to start (S8.3 unmanaged compute, S6.2). */
export type VmLaunch = {
  session: string;
  /** The VM's name, unique in the session. */
  name: string;
  /** The admin user. */
  username: string;
  /** Salted scrypt hash of the admin password (never the password); absent: no password login. */
  passwordHash?: string;
  /** Host directory of the agent (login agent, management code, run module), mounted read-only. */
  agentDir: string;
  /** Host directory of the VM's control-plane socket (the VM's management code calls back through it; read-only). */
  controlDir: string;
  socketName: string;
  /** S3.1: the VNet holder whose loopback-only namespace the VM joins. */
  vnetHolder?: string;
};

export type RunningVm = {
  /** Container id or process id. */
  id: string;
  /** Host path of the login agent's socket: the platform's only way in. */
  loginSocket: string;
  /** The control-plane socket as the VM sees it (AZUREML_SERVICE_ENDPOINT of runs on it). */
  controlSocket: string;
  /** A writable directory on the VM under which runs get their work directories. */
  workRoot: string;
  /** Stop the VM and remove what it used; idempotent. */
  stop(): Promise<void>;
};

/**
 * The door of a VM's login socket (runtime/socket-doors.ts): the VM's agent listens in it, only
 * the platform reaches it. Short, in the temp dir (unix socket paths are limited to 108 bytes),
 * named by session so cleanup finds what a session left.
 */
export const openVmDoor = (session: string, name: string): SocketDoor => openSocketDoor(session, ['vm', name], 'target');

/** The outer (platform-only) directory of a VM's door. */
export const vmHostDir = (session: string, name: string): string => sessionTempPath(session, 'vm', name);

/** The VM host directories of a session still on disk. */
export const vmHostDirs = (session: string): string[] => {
  const prefix = basename(sessionTempPath(session, 'vm', ''));
  return existsSync(tmpdir()) ? readdirSync(tmpdir()).filter((f) => f.startsWith(prefix)).map((f) => join(tmpdir(), f)) : [];
};

export const removeVmHostDirs = (session: string): void => {
  for (const dir of vmHostDirs(session)) rmSync(dir, { recursive: true, force: true });
};

/** A file an inference image holds: bytes, or a host file copied in. */
export type ImageFileSpec = { path: string; content: Buffer | string; mode?: number } | { path: string; hostPath: string; mode?: number };

/** S8.5: a web service's image: files on the node base image, with its environment, work dir and command. */
export type ServiceImageBuild = {
  session: string;
  workspace: string;
  files: ImageFileSpec[];
  env: Record<string, string>;
  workdir: string;
  cmd: string[];
  /** S8.5: npm package specs installed into the image's /node_modules (compute/environments.ts); `onBuildLog` gets npm's output. */
  dependencies?: string[];
  onBuildLog?: (log: string) => void;
};

/** A container of an inference image: the check of its scoring script, or a web-service replica. */
export type ServiceContainerLaunch = {
  session: string;
  workspace: string;
  image: string;
  role: 'image-check' | 'scoring';
  /** The web service a replica serves, and (AKS) the agent it runs on. */
  service?: string;
  agent?: string;
  cmd?: string[];
  env?: Record<string, string>;
  /** Host directories mounted in (a replica's scoring socket door). */
  binds?: Array<{ hostPath: string; containerPath: string }>;
  memoryBytes: number;
  nanoCpus: number;
  /** S3.1: the VNet holder whose loopback-only namespace the replica joins. */
  vnetHolder?: string;
};

export type RunningContainer = {
  /** The container id. */
  id: string;
  wait(): Promise<{ exitCode: number; oomKilled: boolean }>;
  logs(): Promise<{ stdout: string; stderr: string }>;
  /** Stop it now (the killContainer fault on a replica). */
  kill(): Promise<void>;
  /** Remove it (stopping it first); idempotent. */
  remove(): Promise<void>;
};

/**
 * The container runtime inference needs (S8.5): images built, pushed to and pulled from the
 * workspace's registry, and containers started from them. The same engine as training's.
 */
export type InferenceRuntime = {
  buildServiceImage(build: ServiceImageBuild): Promise<{ tag: string; reused: boolean; environment?: EnvironmentReport }>;
  startContainer(launch: ServiceContainerLaunch): Promise<RunningContainer>;
  /** The replica containers of a session's service as a dead simulator left them (a resumed session), oldest first. */
  findReplicas(options: { session: string; service: string }): Promise<RunningContainer[]>;
  pushImage(options: { image: string; registry: string; repository: string; tag: string; username: string; password: string }): Promise<{ digest: string }>;
  pullImage(options: { reference: string; username: string; password: string }): Promise<{ reference: string }>;
};

export type ComputeDriver = {
  readonly kind: 'docker' | 'process';
  /**
   * S8.3 managed step 1: an image with the run's dependencies, content-addressed; reused when
   * identical. Both drivers install them with npm on the host (compute/environments.ts) and
   * report the environment — the docker driver into the image's /node_modules, the process
   * driver for the run's work dir to link to; `onBuildLog` gets npm's output, also when the
   * install fails (EnvironmentBuildFailed naming the package; no image is left).
   */
  prepareImage(options: { session: string; dependencies: string[]; onBuildLog?: (log: string) => void }): Promise<{ image: string; reused: boolean; environment?: EnvironmentReport }>;
  provisionNode(options: { session: string; workspace: string; compute: string; node: string }): Promise<NodeDisks>;
  deprovisionNode(disks: NodeDisks): Promise<void>;
  /** Does the node's disk still exist? (tests and invariants: scale-down deletes the OS disk, S4.6) */
  diskExists(disk: string): Promise<boolean>;
  startRun(launch: RunLaunch): Promise<RunningCompute>;
  /**
   * The run's target as a dead simulator left it (a resumed session, RunManager.reattach), by
   * the container id its ContainerStarted recorded (an empty id names none): still running or
   * exited meanwhile, or undefined when it is gone — always, on a driver whose
   * targets cannot outlive their simulator (the process driver's die with it).
   */
  attachRun(target: { session: string; runId: string; container: string }): Promise<RunningCompute | undefined>;
  /**
   * Every target of the run this session made, whatever its id, oldest first: how a resumed
   * session finds a start its dead simulator made and never reported (no ContainerStarted in the
   * log, so no id to attach by; RunManager.resume removes it before starting the run again).
   * Always none on a driver whose targets cannot outlive their simulator.
   */
  findRunTargets(target: { session: string; runId: string }): Promise<RunningCompute[]>;
  /** Start a user-owned VM (S8.3 unmanaged): resolves once its login agent answers. */
  startVm(launch: VmLaunch): Promise<RunningVm>;
  /**
   * A VM of this session as a dead simulator left it (a resumed session,
   * VirtualMachineService.reattach), by the host id its VmCreated recorded: its container still
   * running and its login agent answering in the same door, or undefined — always, on a driver
   * whose VMs cannot outlive their simulator (the process driver's die with it). `socketName`:
   * the socket of its reopened control-plane channel.
   */
  attachVm(target: { session: string; name: string; host: string; socketName: string }): Promise<RunningVm | undefined>;
  /** Stop a VM started by startVm (same as `vm.stop()`). */
  stopVm(vm: RunningVm): Promise<void>;
  /**
   * The container runtime web-service images and replicas need (S8.5), asked for by `verb`
   * before it records anything: a driver without containers refuses it (BadRequest naming
   * `--driver docker`).
   */
  inference(verb: string): InferenceRuntime;
  /**
   * S3.1: starts the holder of a VNet — a container owning a network namespace with loopback
   * only, which members join (`vnetHolder`) — and returns its id. Absent on a driver without
   * network namespaces (the process driver): a VNet cannot be made there.
   */
  startVnetHolder?(options: { session: string; vnet: string }): Promise<{ id: string }>;
  /** S3.1: is this session's holder of the VNet, by the id VnetCreated recorded, still running (a resumed session)? */
  vnetHolderRunning?(options: { session: string; vnet: string; holder: string }): Promise<boolean>;
  /** What of this session is still there (containers or processes, disks, VMs): empty after cleanup. */
  leftovers(session: string): Promise<string[]>;
  /** Remove everything of this session (containers, VMs, volumes, layered images). */
  cleanup(session: string): Promise<void>;
  close(): Promise<void>;
};
