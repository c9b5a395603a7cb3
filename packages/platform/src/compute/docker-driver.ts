import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_IMAGE_VM_LOGIN_AGENT } from '@amlsim/agent';
import { amlsimLabels, connectDocker, containerLabels, LABEL_EFFECT, LABEL_ROLE, LABEL_RUN, LABEL_SERVICE, LABEL_SESSION, type ContainerHandle, type DockerEngine } from '@amlsim/docker';
import { closeSocketDoor } from '../runtime/socket-doors';
import {
  openVmDoor,
  removeVmHostDirs,
  vmHostDir,
  vmHostDirs,
  type ComputeDriver,
  type InferenceRuntime,
  type RunLaunch,
  type RunningCompute,
  type RunningContainer,
  type RunningVm,
  type VmLaunch,
} from './compute-driver';
import { EnvironmentStore, environmentImageFiles, type EnvironmentReport, type PreparedEnvironment } from './environments';
import { callLoginAgent, waitForLoginAgent } from './vm-login-client';

const AGENT_MOUNT = '/amlsim/agent';
const CONTROL_MOUNT = '/amlsim/control';
/** Where a VM sees the host directory of its login socket. */
const VM_MOUNT = '/amlsim/vm';
/** A simulated VM's size: small, it runs one management code and script at a time. */
const VM_MEMORY_BYTES = 512 * 2 ** 20;
/** Under which the runs on a VM get their work directories. */
const VM_WORK_ROOT = '/tmp/azureml_runs';
/** The label naming a VM container's VM (unique in its session). */
const LABEL_VM = 'dev.amlsim.vm';

/**
 * The docker driver: each run is a container FROM scratch (the host's node binary and its
 * libraries), with no network (`NetworkMode: none`), memory and CPU limits, running as a
 * non-root user. Its only channel to the platform is the control-plane socket in a
 * bind-mounted directory; the management code comes from the file share (S8.3 step 2),
 * mounted read-only. A node's disks are Docker volumes: the temporary disk is mounted at
 * /tmp (S4.6: not encrypted), the OS disk at /mnt/os-disk.
 */
export const createDockerDriver = async (options: { socketPath?: string; environmentsDir?: string } = {}): Promise<ComputeDriver> => {
  // Orphans of crashed sessions were swept, and recorded, when the platform started
  // (runtime/startup-sweep.ts): whatever verb comes first, not only a training one.
  const engine: DockerEngine = await connectDocker(options.socketPath ? { socketPath: options.socketPath } : {});
  // S8.3 step 1 / S8.5: environment dependencies installed with npm on the host, kept by digest
  // (in the data dir when the platform gives one; else in a temp dir of this driver's own).
  const ownEnvironments = options.environmentsDir ? undefined : mkdtempSync(join(tmpdir(), 'amlsim-environments-'));
  const environments = new EnvironmentStore(options.environmentsDir ?? ownEnvironments!);
  let baseImage: ReturnType<DockerEngine['ensureNodeBaseImage']> | undefined;
  let baseChecked = false;
  const container = (handle: ContainerHandle): RunningContainer => ({
    id: handle.id,
    wait: () => handle.wait(),
    logs: () => handle.logs(),
    kill: () => handle.kill(),
    remove: () => handle.remove(),
  });
  /** A run's container as a RunningCompute (its short id, as ContainerStarted records it). */
  const runTarget = (handle: ContainerHandle): RunningCompute => ({
    id: handle.id.slice(0, 12),
    wait: () => handle.wait(),
    kill: () => handle.kill(),
    freeze: () => handle.pause(),
    remove: () => handle.remove(),
    responsive: () => handle.responsive(),
  });
  // S8.5: web-service images and replicas, on this driver's one engine (the labels say whose they are).
  const inference: InferenceRuntime = {
    buildServiceImage: async ({ session, workspace, files, env, workdir, cmd, dependencies, onBuildLog }) => {
      // S8.5: the image's dependencies are installed first: a package npm cannot install fails the build before any image is made.
      const environment = dependencies?.length ? await environments.prepare(session, dependencies, onBuildLog) : undefined;
      const base = await engine.ensureNodeBaseImage(amlsimLabels({ role: 'base' }));
      const built = await engine.buildLayeredImage({
        base: base.tag,
        files: environment ? [...environmentImageFiles(environment), ...files] : files,
        env,
        workdir,
        cmd,
        labels: amlsimLabels({ session, pid: process.pid, role: 'image', workspace }),
      });
      return { tag: built.tag, reused: built.reused, ...(environment ? { environment: reportOf(environment) } : {}) };
    },
    startContainer: async (launch) =>
      container(
        await engine.runContainer({
          image: launch.image,
          ...(launch.cmd ? { cmd: launch.cmd } : {}),
          ...(launch.env ? { env: launch.env } : {}),
          ...(launch.binds ? { binds: launch.binds } : {}),
          // S3.1: a replica in a VNet shares the holder's loopback.
          ...(launch.vnetHolder ? { joinNetworkOf: launch.vnetHolder } : {}),
          labels: {
            ...containerLabels(launch.session, { workspace: launch.workspace, ...(launch.service ? { service: launch.service } : {}), role: launch.role }),
            // AKS spreads replicas over its agents.
            ...(launch.agent ? { 'dev.amlsim.agent': launch.agent } : {}),
          },
          memoryBytes: launch.memoryBytes,
          nanoCpus: launch.nanoCpus,
        }),
      ),
    findReplicas: async ({ session, service }) =>
      (await engine.findContainers({ [LABEL_SESSION]: session, [LABEL_SERVICE]: service, [LABEL_ROLE]: 'scoring' })).map(container),
    pushImage: async (options) => ({ digest: (await engine.pushImage(options)).digest }),
    pullImage: async (options) => ({ reference: (await engine.pullImage(options)).reference }),
  };
  return {
    kind: 'docker',
    prepareImage: async ({ session, dependencies, onBuildLog }) => {
      // S8.3 managed step 1, "Docker build if needed": the dependencies are installed with npm on
      // the host before any image is made, so a package that cannot be installed leaves none.
      const environment = dependencies.length > 0 ? await environments.prepare(session, dependencies, onBuildLog) : undefined;
      // The base image is content-addressed and never changes under us: check it once per driver.
      baseImage ??= engine.ensureNodeBaseImage(amlsimLabels({ role: 'base' })).catch((e: unknown) => {
        baseImage = undefined;
        throw e;
      });
      const first = await baseImage;
      const base = { ...first, reused: first.reused || baseChecked };
      baseChecked = true;
      if (!environment) return { image: base.tag, reused: base.reused };
      // The installed packages become a layer at /node_modules (a script's require and import find
      // them from any directory), content-addressed, so the same environment reuses the same image;
      // the container still has no network. The layer also lists what was declared and installed.
      const layer = await engine.buildLayeredImage({
        base: base.tag,
        files: [
          ...environmentImageFiles(environment),
          { path: '/amlsim/environment/dependencies.json', content: JSON.stringify({ dependencies: environment.specs, packages: environment.packages }, null, 2) },
        ],
        labels: amlsimLabels({ session, pid: process.pid, role: 'layer' }),
      });
      return { image: layer.tag, reused: layer.reused, environment: reportOf(environment) };
    },
    provisionNode: async ({ session, workspace, compute, node }) => {
      const labels = containerLabels(session, { workspace, role: 'node' });
      const os = await engine.createVolume({ name: `amlsim-${session}-${compute}-${node}-os`, labels: { ...labels, 'dev.amlsim.disk': 'os', 'dev.amlsim.encrypted': 'platform-key' } });
      const tmp = await engine.createVolume({ name: `amlsim-${session}-${compute}-${node}-tmp`, labels: { ...labels, 'dev.amlsim.disk': 'temp', 'dev.amlsim.encrypted': 'false' } });
      return { osDisk: os.name, tempDisk: tmp.name };
    },
    deprovisionNode: async (disks) => {
      await engine.removeVolume(disks.osDisk);
      await engine.removeVolume(disks.tempDisk);
    },
    diskExists: (disk) => engine.volumeExists(disk),
    startRun: async (launch: RunLaunch): Promise<RunningCompute> => {
      const effect: Record<string, string> = launch.effectId ? { [LABEL_EFFECT]: launch.effectId } : {};
      // Carried out at most once per effect id: the container is named after the session and the
      // effect, so a retried start is refused the name and gets the container the first made
      // (packages/docker/src/containers.ts runContainerOnceOn), with no container listing before
      // every first start.
      const spec = {
        image: launch.image,
        cmd: ['/usr/bin/node', `${AGENT_MOUNT}/management/management.cjs`],
        env: {
          ...launch.env,
          AZUREML_SERVICE_ENDPOINT: `unix://${CONTROL_MOUNT}/${launch.socketName}`,
          AMLSIM_WORK_DIR: `/tmp/${launch.runId}`,
        },
        binds: [
          // The run's own channel, read-only: it can connect, not delete, rename or add a socket.
          { hostPath: launch.controlDir, containerPath: CONTROL_MOUNT, readOnly: true },
          { hostPath: launch.agentDir, containerPath: AGENT_MOUNT, readOnly: true },
          // S4.2: the run's inputs, decrypted by the platform; a mounted one read-only.
          ...(launch.mounts ?? []).map((m) => ({ hostPath: m.hostPath, containerPath: m.targetPath, readOnly: m.readOnly })),
        ],
        volumes: [
          { volume: launch.node.disks.tempDisk, containerPath: '/tmp' },
          { volume: launch.node.disks.osDisk, containerPath: '/mnt/os-disk' },
        ],
        labels: { ...containerLabels(launch.session, { workspace: launch.workspace, run: launch.runId, role: 'node' }), ...effect },
        memoryBytes: launch.memoryBytes,
        nanoCpus: launch.nanoCpus,
        // S3.1: a node of a cluster in a VNet shares the holder's loopback.
        ...(launch.vnetHolder ? { joinNetworkOf: launch.vnetHolder } : {}),
      };
      const handle = launch.effectId ? await engine.runContainerOnce({ ...spec, name: effectContainerName(launch.session, launch.effectId) }) : await engine.runContainer(spec);
      return runTarget(handle);
    },
    attachRun: async ({ session, runId, container }) => {
      // The container the log names, and only it: an empty id names none.
      if (!container) return undefined;
      const handle = (await engine.findContainers({ [LABEL_SESSION]: session, [LABEL_RUN]: runId })).find((h) => h.id.startsWith(container));
      return handle ? runTarget(handle) : undefined;
    },
    findRunTargets: async ({ session, runId }) => (await engine.findContainers({ [LABEL_SESSION]: session, [LABEL_RUN]: runId })).map(runTarget),
    startVm: async (launch: VmLaunch): Promise<RunningVm> => {
      // S8.3 unmanaged: the user's VM, long-lived, FROM the node base image, no network. Its
      // only doors are the login agent's socket (a host directory mounted at /amlsim/vm) and,
      // outwards, the control-plane socket its management code calls back through.
      const door = openVmDoor(launch.session, launch.name); // the VM's user (uid 1000) listens in it
      const dir = door.dir;
      const base = await engine.ensureNodeBaseImage(amlsimLabels({ role: 'base' }));
      const handle = await engine.runContainer({
        image: base.tag,
        cmd: ['/usr/bin/node', AGENT_IMAGE_VM_LOGIN_AGENT],
        env: {
          AMLSIM_VM_SOCKET: `${VM_MOUNT}/login.sock`,
          AMLSIM_VM_USER: launch.username,
          AMLSIM_VM_HOME: `/tmp/home/${launch.username}`,
          ...(launch.passwordHash ? { AMLSIM_VM_PASSWORD_HASH: launch.passwordHash } : {}),
        },
        binds: [
          { hostPath: dir, containerPath: VM_MOUNT },
          { hostPath: launch.controlDir, containerPath: CONTROL_MOUNT, readOnly: true },
          { hostPath: launch.agentDir, containerPath: AGENT_MOUNT, readOnly: true },
        ],
        labels: { ...containerLabels(launch.session, { role: 'vm' }), [LABEL_VM]: launch.name },
        memoryBytes: VM_MEMORY_BYTES,
        nanoCpus: 1_000_000_000,
        // S3.1: a VM in a VNet shares the holder's loopback.
        ...(launch.vnetHolder ? { joinNetworkOf: launch.vnetHolder } : {}),
      });
      let ended: string | undefined;
      void handle
        .wait()
        .then(async ({ exitCode }) => {
          const logs = await handle.logs().catch(() => undefined);
          ended = `its container exited with code ${exitCode}${logs?.stderr ? `: ${logs.stderr.trim().slice(-500)}` : ''}`;
        })
        .catch(() => {});
      const stop = async () => {
        await handle.remove();
        closeSocketDoor(door);
      };
      try {
        await waitForLoginAgent(join(dir, 'login.sock'), { failed: async () => ended });
      } catch (error) {
        await stop();
        throw error;
      }
      return { id: handle.id.slice(0, 12), loginSocket: join(dir, 'login.sock'), controlSocket: `${CONTROL_MOUNT}/${launch.socketName}`, workRoot: VM_WORK_ROOT, stop };
    },
    attachVm: async ({ session, name, host, socketName }) => {
      // The container the log names, and only it, running with its login agent answering in
      // its door (a container that stopped is left to the session's cleanup).
      if (!host) return undefined;
      const handle = (await engine.findContainers({ [LABEL_SESSION]: session, [LABEL_ROLE]: 'vm', [LABEL_VM]: name })).find((h) => h.id.startsWith(host));
      if (!handle) return undefined;
      const loginSocket = join(vmHostDir(session, name), 'door', 'login.sock');
      const answer = await callLoginAgent(loginSocket, 'GET', '/health', undefined, 2_000).catch(() => undefined);
      if (answer?.status !== 200) return undefined;
      // The same door (the directory the container has mounted since it started), opened again as the platform's.
      const door = openVmDoor(session, name);
      const stop = async () => {
        await handle.remove();
        closeSocketDoor(door);
      };
      return { id: handle.id.slice(0, 12), loginSocket: join(door.dir, 'login.sock'), controlSocket: `${CONTROL_MOUNT}/${socketName}`, workRoot: VM_WORK_ROOT, stop };
    },
    stopVm: (vm) => vm.stop(),
    // S3.1: the holder carries the session label, so the session's sweep (cleanup) removes it.
    startVnetHolder: async ({ session, vnet }) => ({ id: (await engine.startVnetHolder({ vnet, labels: containerLabels(session) })).id }),
    vnetHolderRunning: async ({ session, vnet, holder }) => {
      const found = await engine.findVnetHolder(session, vnet);
      return found !== undefined && found.id.startsWith(holder) && (await found.responsive());
    },
    inference: () => inference,
    leftovers: async (session) => {
      const { containers, volumes } = await engine.listSessionObjects(session);
      return [...containers.map((c) => `container ${c}`), ...volumes.map((v) => `volume ${v}`), ...vmHostDirs(session).map((d) => `directory ${d}`)];
    },
    cleanup: async (session) => {
      // The sweep takes VM containers too: they carry the session label.
      await engine.sweep({ session });
      await engine.removeImages({ session });
      removeVmHostDirs(session);
    },
    close: async () => {
      await engine.close();
      if (ownEnvironments) rmSync(ownEnvironments, { recursive: true, force: true });
    },
  };
};

/** The one container an effect may make: Docker names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*, so an effect id's ':' becomes '.'. */
export const effectContainerName = (session: string, effectId: string): string =>
  `amlsim-${session}-effect-${effectId}`.replace(/[^a-zA-Z0-9_.-]/g, '.');

const reportOf = (env: PreparedEnvironment): EnvironmentReport => ({ digest: env.digest, packages: env.packages, source: env.source });
