import { amlsimLabels, connectDocker, containerLabels, type DockerEngine } from '@amlsim/docker';
import type { ComputeDriver, RunLaunch, RunningCompute } from './compute-driver';

const AGENT_MOUNT = '/amlsim/agent';
const CONTROL_MOUNT = '/amlsim/control';

/**
 * The docker driver: each run is a container FROM scratch (the host's node binary and its
 * libraries), with no network (`NetworkMode: none`), memory and CPU limits, running as a
 * non-root user. Its only channel to the platform is the control-plane socket in a
 * bind-mounted directory; the management code comes from the file share (S8.3 step 2),
 * mounted read-only. A node's disks are Docker volumes: the temporary disk is mounted at
 * /tmp (S4.6: not encrypted), the OS disk at /mnt/os-disk.
 */
export const createDockerDriver = async (options: { socketPath?: string } = {}): Promise<ComputeDriver> => {
  const engine: DockerEngine = await connectDocker(options);
  // Orphans of crashed earlier runs (their owner process is gone) go first.
  await engine.sweep();
  return {
    kind: 'docker',
    prepareImage: async ({ session, dependencies }) => {
      const base = await engine.ensureNodeBaseImage(amlsimLabels({ role: 'base' }));
      if (dependencies.length === 0) return { image: base.tag, reused: base.reused };
      // S8.3 managed step 1, "remote Docker build if needed": the dependencies become a layer,
      // content-addressed, so the same environment reuses the same image. Nothing can be
      // downloaded here, so the layer records the dependency list for the script to read.
      const layer = await engine.buildLayeredImage({
        base: base.tag,
        files: [{ path: '/amlsim/environment/dependencies.json', content: JSON.stringify([...dependencies].sort(), null, 2) }],
        labels: amlsimLabels({ session, role: 'layer' }),
      });
      return { image: layer.tag, reused: layer.reused };
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
      const handle = await engine.runContainer({
        image: launch.image,
        cmd: ['/usr/bin/node', `${AGENT_MOUNT}/management/management.mjs`],
        env: {
          ...launch.env,
          AZUREML_SERVICE_ENDPOINT: `unix://${CONTROL_MOUNT}/${launch.socketName}`,
          AMLSIM_WORK_DIR: `/tmp/${launch.runId}`,
        },
        binds: [
          { hostPath: launch.controlDir, containerPath: CONTROL_MOUNT },
          { hostPath: launch.agentDir, containerPath: AGENT_MOUNT, readOnly: true },
        ],
        volumes: [
          { volume: launch.node.disks.tempDisk, containerPath: '/tmp' },
          { volume: launch.node.disks.osDisk, containerPath: '/mnt/os-disk' },
        ],
        labels: containerLabels(launch.session, { workspace: launch.workspace, run: launch.runId, role: 'node' }),
        memoryBytes: launch.memoryBytes,
        nanoCpus: launch.nanoCpus,
      });
      return {
        id: handle.id.slice(0, 12),
        wait: () => handle.wait(),
        kill: () => handle.kill(),
        remove: () => handle.remove(),
      };
    },
    leftovers: async (session) => {
      const { containers, volumes } = await engine.listSessionObjects(session);
      return [...containers.map((c) => `container ${c}`), ...volumes.map((v) => `volume ${v}`)];
    },
    cleanup: async (session) => {
      await engine.sweep({ session });
      await engine.removeImages({ session });
    },
    close: () => engine.close(),
  };
};
