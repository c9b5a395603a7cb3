import { realpath } from 'node:fs/promises';
import type Docker from 'dockerode';
import { findContainersOn, runContainerOn, type ContainerHandle } from './containers';
import { runtimeFilesUnavailable } from './errors';
import { digestFiles, digestJson, type ImageFile } from './image-files';
import { buildIfChanged, type ImageResult } from './images';
import { LABEL_MANAGED, LABEL_ROLE, LABEL_SESSION, MANAGED_VALUE } from './labels';
import { RUNTIME_USER } from './node-runtime';

/**
 * S3.1: a virtual network is one network namespace holding nothing but loopback. A small
 * "holder" container owns it (`NetworkMode: none`, so the engine gives it `lo` only), and each
 * member of the VNet joins it with `NetworkMode: container:<holder id>`: members reach each other
 * on 127.0.0.1, and nothing else — no bridge, no route, no other interface.
 */

/** The label naming the VNet a holder holds (unique in its session). */
export const LABEL_VNET = 'dev.amlsim.vnet';
/** The role of a VNet's holder container. */
export const VNET_HOLDER_ROLE = 'vnet-holder';

// Bump when the holder image's recipe changes.
const HOLDER_RECIPE = 'vnet-holder/1';
/** The holder only sleeps: a few MiB, a sliver of a CPU, a handful of processes. */
const HOLDER_MEMORY_BYTES = 16 * 2 ** 20;
const HOLDER_NANO_CPUS = 50_000_000;
const HOLDER_PIDS = 8;

/** What {@link startVnetHolderOn} starts. */
export interface VnetHolderOptions {
  /** The VNet's name (unique in the session). */
  vnet: string;
  /** Session labels (containerLabels): the holder is swept with the session's other objects. */
  labels: Record<string, string>;
  /** Static busybox to build the holder image from; default /bin/busybox (Debian busybox-static). */
  busybox?: string;
}

/**
 * `amlsim/vnet-holder:<digest>`, FROM scratch: a static busybox and nothing else. Shared by all
 * sessions like the node base image (no session label), so it is built once and never swept.
 */
export async function ensureVnetHolderImageOn(docker: Docker, busybox = '/bin/busybox'): Promise<ImageResult> {
  let hostPath: string;
  try {
    hostPath = await realpath(busybox);
  } catch (cause) {
    throw runtimeFilesUnavailable('busybox', `'${busybox}' is missing (Debian package busybox-static)`, cause);
  }
  const files: ImageFile[] = [
    { path: '/bin/busybox', hostPath, mode: 0o755 },
    { path: '/bin/sleep', linkTo: 'busybox' },
    { path: '/etc/passwd', content: `${RUNTIME_USER.name}:x:${RUNTIME_USER.uid}:${RUNTIME_USER.gid}:${RUNTIME_USER.name}:/:/bin/false\n`, mode: 0o644 },
  ];
  const spec = { labels: { [LABEL_MANAGED]: MANAGED_VALUE, [LABEL_ROLE]: 'vnet-holder-image' }, user: RUNTIME_USER.name };
  const content = digestJson({ recipe: HOLDER_RECIPE, files: await digestFiles(files), ...spec });
  return buildIfChanged(docker, `amlsim/vnet-holder:${content.slice(0, 24)}`, content, { ...spec, files, from: 'scratch' });
}

/**
 * Starts a VNet's holder: network `none` (its namespace has `lo` only), non-root, read-only,
 * every capability dropped, labelled with the session and the VNet. Its one process sleeps; the
 * namespace lives as long as it does. Removing it (the session's sweep) ends the VNet.
 */
export async function startVnetHolderOn(docker: Docker, options: VnetHolderOptions): Promise<ContainerHandle> {
  const image = await ensureVnetHolderImageOn(docker, options.busybox);
  return runContainerOn(docker, {
    image: image.tag,
    // The longest sleep busybox takes (about 68 years): a holder never ends by itself.
    cmd: ['/bin/sleep', '2147483647'],
    labels: { ...options.labels, [LABEL_ROLE]: VNET_HOLDER_ROLE, [LABEL_VNET]: options.vnet },
    memoryBytes: HOLDER_MEMORY_BYTES,
    nanoCpus: HOLDER_NANO_CPUS,
    pidsLimit: HOLDER_PIDS,
    readOnlyRootfs: true,
  });
}

/** A session's holder of a VNet, if one is still there (running or not), the newest first. */
export async function findVnetHolderOn(docker: Docker, session: string, vnet: string): Promise<ContainerHandle | undefined> {
  const found = await findContainersOn(docker, { [LABEL_SESSION]: session, [LABEL_ROLE]: VNET_HOLDER_ROLE, [LABEL_VNET]: vnet });
  return found.at(-1);
}

