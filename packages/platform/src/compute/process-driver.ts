import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '@amlsim/core';
import { dieWithParent } from '../runtime/die-with-parent';
import { closeSocketDoor } from '../runtime/socket-doors';
import { openVmDoor, removeVmHostDirs, vmHostDirs, type ComputeDriver, type NodeDisks, type RunLaunch, type RunningCompute, type RunningVm, type VmLaunch } from './compute-driver';
import { EnvironmentStore } from './environments';
import { waitForLoginAgent } from './vm-login-client';

/**
 * The process driver: the same management code as a local child process, over the same
 * control-plane socket. Nodes are directories. There is no memory limit or network isolation
 * here — use the docker driver to see those (S4.6 OOM, NetworkMode none).
 */
export const createProcessDriver = (root: string, options: { environmentsDir?: string } = {}): ComputeDriver => {
  // S8.3 step 1: the same npm environments as the docker driver's, from the same data dir cache;
  // here the run's work dir links to the installed packages (there is no image to put them in).
  const environmentsDir = options.environmentsDir ?? join(root, 'environments');
  const environments = new EnvironmentStore(environmentsDir);
  const running = new Set<ReturnType<typeof spawn>>();
  /** Process groups of every run started: a script's children and grandchildren are in its run's group. */
  const groups = new Set<number>();
  /** VMs: login agents, each the leader of a process group holding what it started. */
  const vms = new Set<ReturnType<typeof spawn>>();
  const vmExits = new Map<ReturnType<typeof spawn>, Promise<void>>();
  /** What each startContainer effect started (by session and effect id). */
  const byEffect = new Map<string, RunningCompute>();
  const startProcess = async (launch: RunLaunch): Promise<RunningCompute> => {
    // S4.2: a process binds nothing; it reads its inputs where the platform decrypted them.
    const moved = (launch.mounts ?? []).find((m) => m.targetPath !== m.hostPath);
    if (moved) throw errors.badRequest(`The process driver cannot mount '${moved.hostPath}' at '${moved.targetPath}': its runs see inputs at their host paths.`);
    // It dies with the simulator, even a SIGKILLed one (a crashed simulator leaves no run going).
    const [command, args] = dieWithParent(process.execPath, [join(launch.agentDir, 'management', 'management.cjs')]);
    const child = spawn(command, args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...launch.env,
        AZUREML_SERVICE_ENDPOINT: `unix://${join(launch.controlDir, launch.socketName)}`,
        AMLSIM_WORK_DIR: join(launch.node.disks.tempDisk, launch.runId),
        ...environmentEnv(environmentsDir, launch.image),
      },
      stdio: ['ignore', 'ignore', 'ignore'],
      detached: true,
    });
    running.add(child);
    if (child.pid) groups.add(child.pid);
    const exited = new Promise<{ exitCode: number; oomKilled: boolean }>((resolve) => {
      child.on('exit', (code, signal) => {
        running.delete(child);
        // The run is over when its management code is: whatever the script started dies with it.
        if (child.pid) killGroup(child.pid);
        resolve({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), oomKilled: false });
      });
      child.on('error', () => resolve({ exitCode: 127, oomKilled: false }));
    });
    let frozen = false;
    return {
      id: `pid-${child.pid}`,
      wait: () => exited,
      kill: async () => {
        if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
        await exited;
      },
      freeze: async () => {
        if (child.exitCode === null && child.pid) {
          process.kill(-child.pid, 'SIGSTOP');
          frozen = true;
        }
      },
      remove: async () => {},
      // The driver stopped it itself (SIGSTOP) or it exited: nothing else stops a process group.
      responsive: async () => child.exitCode === null && child.signalCode === null && !frozen,
    };
  };
  return {
    kind: 'process',
    // No image: the host's Node runs the script. Dependencies are installed with npm as for the
    // docker driver (compute/environments.ts); the "image" names the environment by its digest,
    // so a run driven on by a resumed session finds its packages again.
    prepareImage: async ({ session, dependencies, onBuildLog }) => {
      if (dependencies.length === 0) return { image: 'host-node', reused: true };
      const env = await environments.prepare(session, dependencies, onBuildLog);
      return { image: `host-node+${env.digest}`, reused: env.source === 'cache', environment: { digest: env.digest, packages: env.packages, source: env.source } };
    },
    provisionNode: async ({ session, compute, node }) => {
      const base = join(root, session, compute, node);
      const disks: NodeDisks = { osDisk: join(base, 'os-disk'), tempDisk: join(base, 'temp-disk') };
      mkdirSync(disks.osDisk, { recursive: true, mode: 0o700 });
      mkdirSync(disks.tempDisk, { recursive: true, mode: 0o700 });
      writeFileSync(join(disks.osDisk, 'ENCRYPTED-WITH-PLATFORM-KEY'), 'S4.6: OS disks are encrypted with platform-managed keys\n', { mode: 0o600 });
      return disks;
    },
    deprovisionNode: async (disks) => {
      rmSync(disks.osDisk, { recursive: true, force: true });
      rmSync(disks.tempDisk, { recursive: true, force: true });
    },
    diskExists: async (disk) => existsSync(disk),
    // A run's process dies with its simulator (runtime/die-with-parent.ts): none is left to take back.
    // A process dies with its simulator: none is ever left for a resumed session to find.
    attachRun: async () => undefined,
    // Its VMs are processes tied to the simulator (setpriv --pdeathsig KILL): none outlives it.
    attachVm: async () => undefined,
    findRunTargets: async () => [],
    startRun: async (launch: RunLaunch): Promise<RunningCompute> => {
      // Carried out at most once per effect id: a retried start gets the process it made.
      const made = launch.effectId ? byEffect.get(`${launch.session}/${launch.effectId}`) : undefined;
      if (made) return made;
      const compute = await startProcess(launch);
      if (launch.effectId) byEffect.set(`${launch.session}/${launch.effectId}`, compute);
      return compute;
    },
    startVm: async (launch: VmLaunch): Promise<RunningVm> => {
      // The VM is the same login agent as a process; its socket, home and work dirs are host dirs.
      const door = openVmDoor(launch.session, launch.name);
      const dir = door.dir;
      mkdirSync(join(dir, 'work'), { recursive: true });
      const [command, args] = dieWithParent(process.execPath, [join(launch.agentDir, 'vm', 'login-agent.mjs')]);
      const child = spawn(command, args, {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          AMLSIM_VM_SOCKET: join(dir, 'login.sock'),
          AMLSIM_VM_USER: launch.username,
          AMLSIM_VM_HOME: join(dir, 'home'),
          ...(launch.passwordHash ? { AMLSIM_VM_PASSWORD_HASH: launch.passwordHash } : {}),
        },
        stdio: ['ignore', 'ignore', 'ignore'],
        detached: true,
      });
      vms.add(child);
      let ended: string | undefined;
      const exited = new Promise<void>((resolve) => {
        child.on('exit', (code, signal) => {
          vms.delete(child);
          vmExits.delete(child);
          ended = `its process exited (${signal ?? `code ${code}`})`;
          resolve();
        });
        child.on('error', (error) => {
          vms.delete(child);
          vmExits.delete(child);
          ended = `its process did not start: ${error.message}`;
          resolve();
        });
      });
      vmExits.set(child, exited);
      const stop = async () => {
        await stopVmProcess(child, exited);
        closeSocketDoor(door);
      };
      try {
        await waitForLoginAgent(join(dir, 'login.sock'), { failed: async () => ended });
      } catch (error) {
        await stop();
        throw error;
      }
      return { id: `pid-${child.pid}`, loginSocket: join(dir, 'login.sock'), controlSocket: join(launch.controlDir, launch.socketName), workRoot: join(dir, 'work'), stop };
    },
    stopVm: (vm) => vm.stop(),
    // S8.5: an image and its replicas are Docker containers; a process stands in for neither.
    inference: (verb) => {
      throw errors.badRequest(
        `${verb} needs the docker driver (--driver docker): web-service images and replicas are Docker containers, which the process driver does not make.`,
        { verb, driver: 'process' },
      );
    },
    leftovers: async (session) => [
      ...[...running].filter((c) => c.exitCode === null).map((c) => `process ${c.pid}`),
      ...[...groups].filter(groupAlive).map((g) => `process group ${g} (a run's script left processes behind)`),
      ...[...vms].filter((c) => c.exitCode === null).map((c) => `vm process ${c.pid}`),
      ...(existsSync(join(root, session)) ? [`directory ${join(root, session)}`] : []),
      ...vmHostDirs(session).map((d) => `directory ${d}`),
    ],
    cleanup: async (session) => {
      for (const group of groups) killGroup(group);
      await Promise.all([...vms].map((vm) => stopVmProcess(vm, vmExits.get(vm)!)));
      rmSync(join(root, session), { recursive: true, force: true });
      removeVmHostDirs(session);
    },
    close: async () => {},
  };
};

/** SIGKILL to every process of a group; a group that is already empty is no error. */
const killGroup = (group: number): void => {
  try {
    process.kill(-group, 'SIGKILL');
  } catch {
    // ESRCH: nothing left in it
  }
};

/**
 * Is any process of the group still running? From /proc where there is one: a member that has
 * exited but is not yet reaped (a zombie, waiting for init) counts as gone. Elsewhere signal 0.
 */
const groupAlive = (group: number): boolean => {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(-group, 0);
      return true;
    } catch {
      return false;
    }
  }
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .some((pid) => {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return false; // gone meanwhile
      }
      // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so read after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(pgrp) === group && state !== 'Z' && state !== 'X';
    });
};

/**
 * Stop a VM's login agent: SIGTERM first (it kills the process groups of the management code it
 * started), then SIGKILL to its own group if it has not gone within a second.
 */
const stopVmProcess = async (child: ReturnType<typeof spawn>, exited: Promise<void>): Promise<void> => {
  const alive = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  if (!alive()) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (alive()) process.kill(-child.pid!, 'SIGKILL');
  }, 1_000);
  await exited;
  clearTimeout(timer);
};

/**
 * The management code's view of a run's environment on the host (management.cjs links its
 * packages into the work dir's node_modules, where require and import find them).
 */
function environmentEnv(environmentsDir: string, image: string): Record<string, string> {
  const digest = /^host-node\+sha256:([0-9a-f]{64})$/.exec(image)?.[1];
  if (!digest) return {};
  const dir = join(environmentsDir, digest);
  return existsSync(join(dir, 'node_modules')) ? { AMLSIM_ENVIRONMENT_DIR: dir } : {};
}
