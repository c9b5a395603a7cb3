import type Docker from 'dockerode';
import { containerStartFailed } from './errors';
import { demuxLogFrames, type ContainerLogs } from './log-frames';

/** A host directory made visible in the container (the platform's unix-socket channel lives in one). */
export interface BindMount {
  hostPath: string;
  containerPath: string;
  readOnly?: boolean;
}

/** A named Docker volume mounted in the container. */
export interface VolumeMount {
  volume: string;
  containerPath: string;
  readOnly?: boolean;
}

/** What {@link runContainerOn} starts. Network, capabilities and privileges are not options: they are fixed. */
export interface RunContainerOptions {
  image: string;
  cmd?: string[];
  env?: Record<string, string>;
  binds?: BindMount[];
  volumes?: VolumeMount[];
  labels: Record<string, string>;
  /** Hard memory limit; swap is disabled so the limit is the limit (exceeding it OOM-kills). */
  memoryBytes: number;
  /** CPU quota in units of 1e-9 CPUs (1_000_000_000 = one CPU). */
  nanoCpus: number;
  /** `name`, `uid` or `uid:gid`; defaults to the image's USER. */
  user?: string;
  workdir?: string;
  name?: string;
  readOnlyRootfs?: boolean;
  /** tmpfs mounts (`{ '/tmp': 'size=16m' }`), useful with a read-only root filesystem. */
  tmpfs?: Record<string, string>;
  /** Cap on processes + threads, so a runaway script cannot fork-bomb the host. Default 512. */
  pidsLimit?: number;
  /**
   * S3.1: the id of a VNet holder (vnet.ts) whose network namespace — loopback only — the
   * container joins (`NetworkMode: container:<id>`). Absent: `none`, a loopback of its own.
   */
  joinNetworkOf?: string;
}

/** How a container ended. */
export interface ContainerExit {
  exitCode: number;
  /** The kernel's OOM killer ended it for exceeding its memory limit. */
  oomKilled: boolean;
}

/**
 * A started container. Disposing it (`await using`) removes it, whatever state it is in.
 */
export interface ContainerHandle extends AsyncDisposable {
  readonly id: string;
  /** Resolves when the container stops; repeated calls share one answer. */
  wait(): Promise<ContainerExit>;
  /** Everything the container wrote so far, stdout and stderr kept apart. */
  logs(): Promise<ContainerLogs>;
  /** SIGKILL; a container that already stopped is left as it is. */
  kill(): Promise<void>;
  /** Freezes the container's processes (a hung target: no heartbeat, no exit). */
  pause(): Promise<void>;
  /** The engine's word: is it running, and not paused? */
  responsive(): Promise<boolean>;
  /** Force-removes the container and its anonymous volumes; idempotent. */
  remove(): Promise<void>;
}

const DEFAULT_PIDS_LIMIT = 512;

/** The container carrying every one of `labels`, running or not, if there is one (the newest, if several). */
export async function findContainerOn(docker: Docker, labels: Record<string, string>): Promise<ContainerHandle | undefined> {
  const found = await docker.listContainers({ all: true, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
  const newest = found.sort((a, b) => b.Created - a.Created)[0];
  return newest ? new RunningContainer(docker.getContainer(newest.Id)) : undefined;
}

/** Every container with these labels (running or not), oldest first. */
export async function findContainersOn(docker: Docker, labels: Record<string, string>): Promise<ContainerHandle[]> {
  const found = await docker.listContainers({ all: true, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
  return found.sort((a, b) => a.Created - b.Created).map((c) => new RunningContainer(docker.getContainer(c.Id)));
}

/** Creates and starts a container under the fixed isolation rules (docs/architecture.md "Docker conventions"). */
export async function runContainerOn(docker: Docker, options: RunContainerOptions): Promise<ContainerHandle> {
  const mounts: Docker.MountSettings[] = [
    // `Mounts` rather than `Binds`: a missing host directory is an error here, where `Binds`
    // would silently create it root-owned; and paths may contain ':'.
    ...(options.binds ?? []).map((b) => ({ Type: 'bind' as const, Source: b.hostPath, Target: b.containerPath, ReadOnly: b.readOnly ?? false })),
    ...(options.volumes ?? []).map((v) => ({ Type: 'volume' as const, Source: v.volume, Target: v.containerPath, ReadOnly: v.readOnly ?? false })),
  ];
  const spec: Docker.ContainerCreateOptions = {
    Image: options.image,
    Labels: options.labels,
    Tty: false, // keeps stdout and stderr apart in the log frames
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(options.name ? { name: options.name } : {}),
    ...(options.cmd ? { Cmd: options.cmd } : {}),
    ...(options.env ? { Env: Object.entries(options.env).map(([k, v]) => `${k}=${v}`) } : {}),
    ...(options.user ? { User: options.user } : {}),
    ...(options.workdir ? { WorkingDir: options.workdir } : {}),
    HostConfig: {
      // Only a loopback interface: the one way out is the unix socket in a bind-mounted directory.
      // In a VNet (S3.1) the loopback is the holder's, shared with the VNet's other members.
      NetworkMode: options.joinNetworkOf !== undefined ? `container:${options.joinNetworkOf}` : 'none',
      PortBindings: {},
      PublishAllPorts: false,
      Memory: options.memoryBytes,
      MemorySwap: options.memoryBytes, // equal to Memory = no swap on top of the limit
      NanoCpus: options.nanoCpus,
      PidsLimit: options.pidsLimit ?? DEFAULT_PIDS_LIMIT,
      // We read exit code, OOM flag and logs after exit; the sweep removes what we forget.
      AutoRemove: false,
      ReadonlyRootfs: options.readOnlyRootfs ?? false,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      Mounts: mounts,
      ...(options.tmpfs ? { Tmpfs: options.tmpfs } : {}),
    },
  };

  let container: Docker.Container;
  try {
    container = await docker.createContainer(spec);
  } catch (cause) {
    throw containerStartFailed(options.image, dockerMessage(cause), cause);
  }
  try {
    await container.start();
  } catch (cause) {
    // Never leave a created-but-dead container behind on a failed start.
    await container.remove({ force: true, v: true }).catch(() => undefined);
    throw containerStartFailed(options.image, dockerMessage(cause), cause);
  }
  return new RunningContainer(container);
}

/**
 * Creates and starts a container named `options.name` at most once: Docker refuses a second
 * container of one name (409), so an earlier attempt's container — running, exited or never
 * started — is found by that refusal and returned as it is, never started again. The common
 * case, a first attempt, costs no lookup before the create.
 */
export async function runContainerOnceOn(docker: Docker, options: RunContainerOptions & { name: string }): Promise<ContainerHandle> {
  try {
    return await runContainerOn(docker, options);
  } catch (err) {
    if (!hasStatus((err as { cause?: unknown }).cause, 409) || !/already in use/i.test(dockerMessage((err as { cause?: unknown }).cause))) throw err;
    const made = docker.getContainer(options.name);
    // The handle is named by the container's id, not by the name it was asked for.
    const { Id } = await made.inspect();
    return new RunningContainer(docker.getContainer(Id));
  }
}

class RunningContainer implements ContainerHandle {
  readonly id: string;
  #exit?: Promise<ContainerExit>;
  #removed = false;

  constructor(private readonly container: Docker.Container) {
    this.id = container.id;
  }

  wait(): Promise<ContainerExit> {
    this.#exit ??= (async () => {
      const { StatusCode } = (await this.container.wait()) as { StatusCode: number };
      // The wait answer has no OOM flag; the container's state does. A container the kernel's
      // OOM killer ended exits non-zero (137, SIGKILL), so one that exited 0 was not: it costs
      // no further call to the engine, which a cluster of busy nodes would wait on.
      if (StatusCode === 0) return { exitCode: 0, oomKilled: false };
      const info = await this.container.inspect();
      return { exitCode: StatusCode, oomKilled: info.State.OOMKilled === true };
    })();
    return this.#exit;
  }

  async logs(): Promise<ContainerLogs> {
    const raw: unknown = await this.container.logs({ stdout: true, stderr: true, follow: false });
    return demuxLogFrames(Buffer.isBuffer(raw) ? raw : Buffer.from(raw as string, 'binary'));
  }

  async kill(): Promise<void> {
    try {
      await this.container.kill({ signal: 'SIGKILL' });
    } catch (err) {
      // A paused (frozen) container must be thawed before the engine will kill it.
      if (hasStatus(err, 409) && /paused/i.test(String((err as Error).message))) {
        await this.container.unpause().catch(() => {});
        return this.kill();
      }
      // 409: not running (already exited); 404: already gone. Both mean "it is not running".
      if (!hasStatus(err, 404, 409)) throw err;
    }
  }

  /** Freeze every process of the container (cgroup freezer): it stops answering, as a hung node does. */
  async pause(): Promise<void> {
    await this.container.pause();
  }

  async responsive(): Promise<boolean> {
    try {
      const { State } = await this.container.inspect();
      return State.Running === true && State.Paused !== true;
    } catch (err) {
      if (hasStatus(err, 404)) return false;
      throw err;
    }
  }

  async remove(): Promise<void> {
    if (this.#removed) return;
    try {
      await this.container.remove({ force: true, v: true });
    } catch (err) {
      // 404: gone already; 409: a removal is already in progress.
      if (!hasStatus(err, 404, 409)) throw err;
    }
    this.#removed = true;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.remove();
  }
}

/** Whether a dockerode error carries one of the given HTTP status codes. */
export function hasStatus(err: unknown, ...codes: number[]): boolean {
  const status = (err as { statusCode?: number } | null)?.statusCode;
  return typeof status === 'number' && codes.includes(status);
}

/** The daemon's own words from a dockerode error (its `json.message`), else the error message. */
export function dockerMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}
