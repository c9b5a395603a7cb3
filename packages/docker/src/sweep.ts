import type Docker from 'dockerode';
import { hasStatus } from './containers';
import { LABEL_MANAGED, LABEL_PID, LABEL_SESSION, MANAGED_VALUE } from './labels';
import { removeImagesWhereOn } from './images';
import { removeVolumeOn } from './volumes';

/** Which managed objects a sweep removes. */
export interface SweepOptions {
  /**
   * Remove everything of this session, whoever owns it and whether or not it runs (shutdown).
   * Without it, the sweep removes what belongs to dead processes (start-up).
   */
  session?: string;
  /** Whether the owning process lives; defaults to {@link isProcessAlive}. */
  isAlive?: (pid: number) => boolean;
}

/** How many objects a sweep removed. */
export interface SweepResult {
  containers: number;
  volumes: number;
  images: number;
}

/**
 * Signal 0 checks existence without delivering anything. ESRCH: no such process (dead).
 * EPERM: it exists but belongs to someone else, so it is alive.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes orphaned containers, then volumes (a volume in use cannot go before its container),
 * then images (the session images a crashed simulator built: scoring images, dependency layers).
 * Only objects labelled `dev.amlsim.managed=true` are ever considered; one with no pid label
 * (the shared base image) is left alone unless its session is named, since nothing says its
 * owner is gone.
 */
export async function sweepOn(docker: Docker, options: SweepOptions = {}): Promise<SweepResult> {
  const isAlive = options.isAlive ?? isProcessAlive;
  const filter = [`${LABEL_MANAGED}=${MANAGED_VALUE}`];
  if (options.session !== undefined) filter.push(`${LABEL_SESSION}=${options.session}`);
  const doomed = (labels: Record<string, string> | null | undefined): boolean => {
    if (options.session !== undefined) return true; // the filter already matched the session
    const pid = Number(labels?.[LABEL_PID]);
    return Number.isInteger(pid) && pid > 0 && !isAlive(pid);
  };

  let containers = 0;
  for (const c of await docker.listContainers({ all: true, filters: { label: filter } })) {
    if (!doomed(c.Labels)) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      containers++;
    } catch (err) {
      if (!hasStatus(err, 404, 409)) throw err; // someone else removed it first
    }
  }

  let volumes = 0;
  const { Volumes } = await docker.listVolumes({ filters: { label: filter } });
  for (const v of Volumes ?? []) {
    if (!doomed(v.Labels)) continue;
    await removeVolumeOn(docker, v.Name);
    volumes++;
  }

  // Children before parents (an image another is built on refuses removal).
  const images = await removeImagesWhereOn(docker, filter, doomed);
  return { containers, volumes, images };
}

/** What of a session is still on the engine (an invariant after every scenario: nothing). */
export async function listSessionObjectsOn(docker: Docker, session: string): Promise<{ containers: string[]; volumes: string[] }> {
  const filter = [`${LABEL_MANAGED}=${MANAGED_VALUE}`, `${LABEL_SESSION}=${session}`];
  const containers = (await docker.listContainers({ all: true, filters: { label: filter } })).map((c) => c.Id.slice(0, 12));
  const { Volumes } = await docker.listVolumes({ filters: { label: filter } });
  return { containers, volumes: (Volumes ?? []).map((v) => v.Name) };
}
