import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { hasStatus } from './containers';
import { LABEL_MANAGED, MANAGED_VALUE } from './labels';

/** A Docker volume created by amlsim; disposing it removes it. */
export interface VolumeHandle extends AsyncDisposable {
  readonly name: string;
  remove(): Promise<void>;
}

/** Creates a labelled local volume; the name defaults to `amlsim-<uuid>`. */
export async function createVolumeOn(docker: Docker, options: { name?: string; labels: Record<string, string> }): Promise<VolumeHandle> {
  const name = options.name ?? `amlsim-${randomUUID()}`;
  await docker.createVolume({ Name: name, Driver: 'local', Labels: options.labels });
  return {
    name,
    remove: () => removeVolumeOn(docker, name),
    [Symbol.asyncDispose]: () => removeVolumeOn(docker, name),
  };
}

/**
 * Removes a volume; a volume that is already gone is not an error. A volume still held by
 * stopped containers of ours (a node's disk whose last run container is being removed) is
 * freed by removing those containers first; a running one is never touched.
 */
export async function removeVolumeOn(docker: Docker, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await docker.getVolume(name).remove({ force: true });
      return;
    } catch (err) {
      if (hasStatus(err, 404)) return;
      if (!hasStatus(err, 409) || attempt === 5) throw err;
      const holders = await docker.listContainers({ all: true, filters: { volume: [name], label: [`${LABEL_MANAGED}=${MANAGED_VALUE}`] } });
      if (holders.some((c) => c.State === 'running')) throw err;
      for (const c of holders) {
        await docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch((e: unknown) => {
            // 404: gone; 409: its removal is already under way (ours, elsewhere): wait and retry.
            if (!hasStatus(e, 404, 409)) throw e;
          });
      }
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}
