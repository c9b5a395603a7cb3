import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { hasStatus } from './containers';

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

/** Removes a volume; a volume that is already gone is not an error. */
export async function removeVolumeOn(docker: Docker, name: string): Promise<void> {
  try {
    await docker.getVolume(name).remove({ force: true });
  } catch (err) {
    if (!hasStatus(err, 404)) throw err;
  }
}
