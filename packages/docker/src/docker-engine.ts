import { Agent } from 'node:http';
import { inspect } from 'node:util';
import Docker from 'dockerode';
import { findContainerOn, findContainersOn, runContainerOn, runContainerOnceOn, type ContainerHandle, type RunContainerOptions } from './containers';
import { dockerUnavailable } from './errors';
import type { ImageFile } from './image-files';
import {
  buildImageOn,
  buildLayeredImageOn,
  ensureNodeBaseImageOn,
  imageId,
  removeSessionImagesOn,
  type BuildImageOptions,
  type ImageResult,
  type LayeredImageOptions,
} from './images';
import { collectNodeRuntimeFiles, type NodeRuntimeSources } from './node-runtime';
import {
  pullImageOn,
  pushImageOn,
  removeImageOn,
  type PullImageOptions,
  type PullResult,
  type PushImageOptions,
  type PushResult,
} from './registry';
import { sweepOn, type SweepOptions, type SweepResult, listSessionObjectsOn } from './sweep';
import { createVolumeOn, removeVolumeOn, type VolumeHandle } from './volumes';
import { findVnetHolderOn, startVnetHolderOn } from './vnet';

/** Where the engine listens by default on Linux. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** How to reach the Docker engine. Read once at the composition root; nothing here reads the environment. */
export interface ConnectDockerOptions {
  /** Unix socket of the engine; default {@link DEFAULT_DOCKER_SOCKET}. */
  socketPath?: string;
  /** How long the initial ping may take before the engine counts as absent; default 3000 ms. */
  pingTimeoutMs?: number;
  /** Where the Node runtime's files are taken from (defaults: this Node, /bin/busybox). */
  runtime?: NodeRuntimeSources;
}

/**
 * Connects to the Docker engine and checks that it answers.
 * @throws SimError `DockerUnavailable` when nothing answers on the socket in time.
 */
export async function connectDocker(options: ConnectDockerOptions = {}): Promise<DockerEngine> {
  const socketPath = options.socketPath ?? DEFAULT_DOCKER_SOCKET;
  // Our own keep-alive agent: reusing connections saves a connect per call, and close() can
  // destroy them so an idle socket never keeps the process alive.
  const agent = new Agent({ keepAlive: true });
  // docker-modem formats every request's options with util.inspect (showHidden, unlimited
  // depth) for its debug log, whether that log is on or not. Options carrying this agent would
  // format the agent and every socket it holds: milliseconds of CPU per Docker call, growing
  // with the open connections, which is what made a run slower than raw dockerode (bench/training-bench.ts).
  // A one-line description keeps that formatting as cheap as for options without an agent.
  Object.defineProperty(agent, inspect.custom, { value: () => `[keep-alive Agent for ${socketPath}]` });
  // docker-modem honours `agent` and ping's `abortSignal`; @types/dockerode 4 just does not declare them.
  const dockerOptions: Docker.DockerOptions & { agent: Agent } = { socketPath, agent };
  const docker = new Docker(dockerOptions);
  const pingable = docker as unknown as { ping(opts: { abortSignal: AbortSignal }): Promise<unknown> };
  try {
    await pingable.ping({ abortSignal: AbortSignal.timeout(options.pingTimeoutMs ?? 3000) });
  } catch (cause) {
    agent.destroy();
    throw dockerUnavailable(socketPath, cause);
  }
  return new DockerEngine(docker, agent, socketPath, options.runtime ?? {});
}

/**
 * The simulator's only door to Docker: what it needs and nothing more. Containers always run
 * without network, with memory/CPU limits, no capabilities and no privilege escalation.
 */
export class DockerEngine implements AsyncDisposable {
  #runtimeFiles?: Promise<ImageFile[]>;
  // One build per tag at a time: two callers asking for the same image share the build.
  readonly #building = new Map<string, Promise<ImageResult>>();

  /** @internal use {@link connectDocker}. */
  constructor(
    private readonly docker: Docker,
    private readonly agent: Agent,
    /** The engine's unix socket. */
    readonly socketPath: string,
    private readonly runtimeSources: NodeRuntimeSources,
  ) {}

  /**
   * Builds an image from the given files with a generated Dockerfile
   * (`FROM <from>`, `COPY rootfs/ /`, `LABEL`, `ENV`, `WORKDIR`, `USER`, `CMD`).
   * @returns the image id.
   * @throws SimError `ImageBuildFailed` with the builder's error detail.
   */
  buildImage(options: BuildImageOptions): Promise<string> {
    return buildImageOn(this.docker, options);
  }

  /** Whether a local image has this tag (or id). */
  async imageExists(tag: string): Promise<boolean> {
    return (await imageId(this.docker, tag)) !== undefined;
  }

  /** The files of a FROM-scratch Node runtime (see {@link collectNodeRuntimeFiles}); computed once per engine. */
  nodeRuntimeFiles(): Promise<ImageFile[]> {
    this.#runtimeFiles ??= collectNodeRuntimeFiles(this.runtimeSources).catch((err: unknown) => {
      this.#runtimeFiles = undefined; // a failure is not cached: setup may fix it
      throw err;
    });
    return this.#runtimeFiles;
  }

  /**
   * Ensures `amlsim/node-base:<content digest>` exists, building it from {@link nodeRuntimeFiles}
   * only if missing. Its user is `aml` (uid 1000). Session and pid labels are dropped: the base
   * is shared by all sessions and survives {@link removeImages}.
   */
  async ensureNodeBaseImage(labels: Record<string, string> = {}): Promise<ImageResult> {
    const files = await this.nodeRuntimeFiles();
    return this.#once(`node-base:${JSON.stringify(labels)}`, () => ensureNodeBaseImageOn(this.docker, files, labels));
  }

  /**
   * `FROM base` + files, content-addressed: identical base, files, labels and config give the
   * same tag and reuse the image (`reused: true`) without building.
   */
  buildLayeredImage(options: LayeredImageOptions): Promise<ImageResult> {
    return buildLayeredImageOn(this.docker, options);
  }

  /**
   * Creates and starts a container: network `none`, memory (no swap) and CPU limits, all
   * capabilities dropped, `no-new-privileges`, no port bindings. Dispose the handle to remove it.
   * @throws SimError `ContainerStartFailed` (nothing is left behind).
   */
  /** The container carrying all of `labels`, if one exists (running or not). */
  /** Every container with these labels (running or not), oldest first. */
  findContainers(labels: Record<string, string>): Promise<ContainerHandle[]> {
    return findContainersOn(this.docker, labels);
  }

  findContainer(labels: Record<string, string>): Promise<ContainerHandle | undefined> {
    return findContainerOn(this.docker, labels);
  }

  runContainer(options: RunContainerOptions): Promise<ContainerHandle> {
    return runContainerOn(this.docker, options);
  }

  /** {@link runContainer} at most once per name: a second call returns the container the first made. */
  runContainerOnce(options: RunContainerOptions & { name: string }): Promise<ContainerHandle> {
    return runContainerOnceOn(this.docker, options);
  }

  /**
   * S3.1: starts a VNet's holder (vnet.ts): a container with network `none` whose namespace —
   * loopback only — the VNet's members join ({@link RunContainerOptions.joinNetworkOf}).
   */
  startVnetHolder(options: { vnet: string; labels: Record<string, string> }): Promise<ContainerHandle> {
    return startVnetHolderOn(this.docker, { ...options, ...(this.runtimeSources.busybox ? { busybox: this.runtimeSources.busybox } : {}) });
  }

  /** A session's holder of a VNet that is still there (a resumed session takes it back). */
  findVnetHolder(session: string, vnet: string): Promise<ContainerHandle | undefined> {
    return findVnetHolderOn(this.docker, session, vnet);
  }

  /** Creates a labelled volume. */
  createVolume(options: { name?: string; labels: Record<string, string> }): Promise<VolumeHandle> {
    return createVolumeOn(this.docker, options);
  }

  /** Containers and volumes of a session still on the engine. */
  listSessionObjects(session: string): Promise<{ containers: string[]; volumes: string[] }> {
    return listSessionObjectsOn(this.docker, session);
  }

  /** Whether a volume exists (a node's disks disappear when the node is deprovisioned, S4.6). */
  async volumeExists(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).inspect();
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      throw error;
    }
  }

  /** Removes a volume; one that is already gone is fine. */
  removeVolume(name: string): Promise<void> {
    return removeVolumeOn(this.docker, name);
  }

  /**
   * Removes managed containers, volumes and images of sessions whose lease has lapsed
   * (start-up, lease.ts), or, with `session`, everything of that session (shutdown).
   */
  sweep(options: SweepOptions = {}): Promise<SweepResult> {
    return sweepOn(this.docker, options);
  }

  /** Removes the images labelled with the session; the shared base image carries no session and stays. */
  async removeImages(options: { session: string }): Promise<{ images: number }> {
    return { images: await removeSessionImagesOn(this.docker, options.session) };
  }

  /**
   * Tags a local image `<registry>/<repository>:<tag>` and pushes it to a loopback registry
   * with the given credentials (sent with the request, never written to a docker config file).
   * The registry tag stays on the local image, as after `docker push`; {@link removeImage} drops it.
   * @returns the reference and the manifest digest the registry stored.
   * @throws SimError `RegistryAuthenticationFailed` when the registry refuses the credentials,
   *   `ImagePushFailed` for any other failure, `InvalidImageReference` for a registry that is not
   *   `127.x.y.z:PORT` or a malformed repository/tag. A failed push removes the tag it added.
   */
  pushImage(options: PushImageOptions): Promise<PushResult> {
    return pushImageOn(this.docker, options);
  }

  /**
   * Pulls `<registry>/<repository>:<tag>` (or `@sha256:…`) from a loopback registry.
   * @throws SimError `RegistryAuthenticationFailed`, `ImagePullFailed`, `InvalidImageReference`
   *   (a reference without a `127.x.y.z:PORT` registry: nothing is ever pulled from elsewhere).
   */
  pullImage(options: PullImageOptions): Promise<PullResult> {
    return pullImageOn(this.docker, options);
  }

  /**
   * Removes a local image reference (a tag is untagged; the image goes with its last tag).
   * `force` also removes an image that stopped containers still use.
   * @returns `false` when there was nothing to remove.
   */
  removeImage(reference: string, options: { force?: boolean } = {}): Promise<boolean> {
    return removeImageOn(this.docker, reference, options);
  }

  /** Closes idle connections to the engine. Containers are not touched: see {@link sweep}. */
  async close(): Promise<void> {
    this.agent.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #once(key: string, build: () => Promise<ImageResult>): Promise<ImageResult> {
    const pending = this.#building.get(key);
    if (pending) return pending;
    const p = build().finally(() => this.#building.delete(key));
    this.#building.set(key, p);
    return p;
  }
}
