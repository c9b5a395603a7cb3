import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComputeDriver, NodeDisks, RunLaunch, RunningCompute } from './compute-driver';

/**
 * The process driver: the same management code as a local child process, over the same
 * control-plane socket. Nodes are directories. There is no memory limit or network isolation
 * here — use the docker driver to see those (S4.6 OOM, NetworkMode none).
 */
export const createProcessDriver = (root: string): ComputeDriver => {
  const running = new Set<ReturnType<typeof spawn>>();
  return {
    kind: 'process',
    prepareImage: async ({ dependencies }) => ({ image: `host-node${dependencies.length ? `+${dependencies.join(',')}` : ''}`, reused: true }),
    provisionNode: async ({ session, compute, node }) => {
      const base = join(root, session, compute, node);
      const disks: NodeDisks = { osDisk: join(base, 'os-disk'), tempDisk: join(base, 'temp-disk') };
      mkdirSync(disks.osDisk, { recursive: true });
      mkdirSync(disks.tempDisk, { recursive: true });
      writeFileSync(join(disks.osDisk, 'ENCRYPTED-WITH-PLATFORM-KEY'), 'S4.6: OS disks are encrypted with platform-managed keys\n');
      return disks;
    },
    deprovisionNode: async (disks) => {
      rmSync(disks.osDisk, { recursive: true, force: true });
      rmSync(disks.tempDisk, { recursive: true, force: true });
    },
    diskExists: async (disk) => existsSync(disk),
    startRun: async (launch: RunLaunch): Promise<RunningCompute> => {
      const child = spawn(process.execPath, [join(launch.agentDir, 'management', 'management.mjs')], {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ...launch.env,
          AZUREML_SERVICE_ENDPOINT: `unix://${join(launch.controlDir, launch.socketName)}`,
          AMLSIM_WORK_DIR: join(launch.node.disks.tempDisk, launch.runId),
        },
        stdio: ['ignore', 'ignore', 'ignore'],
        detached: true,
      });
      running.add(child);
      const exited = new Promise<{ exitCode: number; oomKilled: boolean }>((resolve) => {
        child.on('exit', (code, signal) => {
          running.delete(child);
          resolve({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), oomKilled: false });
        });
        child.on('error', () => resolve({ exitCode: 127, oomKilled: false }));
      });
      return {
        id: `pid-${child.pid}`,
        wait: () => exited,
        kill: async () => {
          if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
          await exited;
        },
        remove: async () => {},
      };
    },
    leftovers: async (session) => [
      ...[...running].filter((c) => c.exitCode === null).map((c) => `process ${c.pid}`),
      ...(existsSync(join(root, session)) ? [`directory ${join(root, session)}`] : []),
    ],
    cleanup: async (session) => {
      for (const child of running) if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
      rmSync(join(root, session), { recursive: true, force: true });
    },
    close: async () => {},
  };
};
