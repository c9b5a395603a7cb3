import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { renderDockerfile, writeBuildContext, type DockerfileSpec } from './build-context';
import { dockerMessage, hasStatus } from './containers';
import { imageBuildFailed } from './errors';
import { digestFiles, digestJson, type ImageFile } from './image-files';
import { LABEL_MANAGED, LABEL_PID, LABEL_ROLE, LABEL_SESSION, MANAGED_VALUE } from './labels';
import { RUNTIME_USER } from './node-runtime';

/** Label holding an image's content digest, so a reused tag is checked, not trusted. */
export const LABEL_CONTENT = 'dev.amlsim.content';

// Bump when the way images are assembled changes, so old tags are not reused for new recipes.
const BASE_RECIPE = 'node-base/1';
const LAYER_RECIPE = 'layer/1';

/** What {@link buildImageOn} builds: a generated Dockerfile over the given root-filesystem files. */
export interface BuildImageOptions extends Omit<DockerfileSpec, 'from' | 'labels'> {
  tag: string;
  files: readonly ImageFile[];
  /** `scratch` or a local image; nothing is pulled. */
  from: 'scratch' | (string & {});
  labels: Record<string, string>;
  /** Ignore the builder's cache (for measuring an uncached build). */
  noCache?: boolean;
}

/** What a layered build answers: the tag, and whether an existing image was reused. */
export interface ImageResult {
  tag: string;
  imageId: string;
  /** `true` when an image with identical inputs already existed and nothing was built. */
  reused: boolean;
}

/** What {@link buildLayeredImageOn} puts on top of a base image. */
export interface LayeredImageOptions extends Omit<DockerfileSpec, 'from' | 'labels'> {
  base: string;
  /** Defaults to `amlsim/layer:<digest of base + files + config>`. */
  tag?: string;
  files: readonly ImageFile[];
  labels: Record<string, string>;
}

/** Builds an image from an in-memory tar context; returns its id. */
export async function buildImageOn(docker: Docker, options: BuildImageOptions): Promise<string> {
  const { tag, files, noCache, ...spec } = options;
  // The builder would try to pull a missing base from a registry; none is reachable, and no
  // traffic may leave the machine (docs/architecture.md "Network"), so refuse before asking.
  if (spec.from !== 'scratch' && !(await imageId(docker, spec.from))) {
    throw imageBuildFailed(tag, `the base image '${spec.from}' does not exist locally (nothing is pulled)`);
  }
  let dockerfile: string;
  try {
    dockerfile = renderDockerfile(spec);
  } catch (cause) {
    throw imageBuildFailed(tag, (cause as Error).message, cause);
  }
  const pack = tar.pack();
  const feeding = writeBuildContext(pack, dockerfile, files).catch((err: unknown) => {
    pack.destroy(err as Error);
    throw err;
  });
  let progress: BuildProgress[];
  try {
    [, progress] = await Promise.all([
      feeding,
      (async () => {
        // tar-stream 3 packs are streamx streams, which pipe like Node streams but are not typed as one.
        const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
          t: tag,
          rm: true,
          forcerm: true,
          nocache: noCache ?? false,
        });
        return followProgress(docker, stream);
      })(),
    ]);
  } catch (cause) {
    pack.destroy(new Error('build aborted')); // unblocks the writer if the daemon gave up before reading the context
    throw imageBuildFailed(tag, dockerMessage(cause), cause);
  }
  // Build errors arrive as an item of the progress stream with a 200 response (docs/architecture.md "Docker conventions").
  const failed = progress.find((p) => p.error !== undefined || p.errorDetail !== undefined);
  if (failed) {
    await removeIntermediates(docker, progress);
    throw imageBuildFailed(tag, failed.errorDetail?.message ?? failed.error ?? 'unknown error');
  }
  const id = await imageId(docker, tag);
  if (!id) throw imageBuildFailed(tag, `the build reported success but no image is tagged '${tag}'`);
  return id;
}

/** The id of the image a tag names, or `undefined` if there is none. */
export async function imageId(docker: Docker, tag: string): Promise<string | undefined> {
  return (await inspectImage(docker, tag))?.Id;
}

async function inspectImage(docker: Docker, tag: string): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(tag).inspect();
  } catch (err) {
    if (hasStatus(err, 404)) return undefined;
    throw err;
  }
}

/**
 * Builds `amlsim/node-base:<digest>` from the Node runtime files unless it exists. The base is
 * shared across sessions, so session and pid labels are dropped: a session's image cleanup must
 * never remove it.
 */
export async function ensureNodeBaseImageOn(
  docker: Docker,
  files: readonly ImageFile[],
  labels: Record<string, string> = {},
): Promise<ImageResult> {
  const { [LABEL_SESSION]: _session, [LABEL_PID]: _pid, ...shared } = labels;
  const spec = {
    labels: { ...shared, [LABEL_MANAGED]: MANAGED_VALUE, [LABEL_ROLE]: 'base' },
    env: { PATH: '/usr/bin:/bin' },
    user: RUNTIME_USER.name, // least privilege by default; a caller may still ask for root
  };
  const content = digestJson({ recipe: BASE_RECIPE, files: await digestFiles(files), ...spec });
  return buildIfChanged(docker, `amlsim/node-base:${content.slice(0, 24)}`, content, { ...spec, files, from: 'scratch' });
}

/**
 * `FROM base` + the files, content-addressed: the digest covers the base image's id (not its
 * tag, which may move), the files and the configuration, so identical inputs reuse the image.
 */
export async function buildLayeredImageOn(docker: Docker, options: LayeredImageOptions): Promise<ImageResult> {
  const { base, tag, files, labels, ...config } = options;
  const baseId = await imageId(docker, base);
  if (!baseId) throw imageBuildFailed(tag ?? `${base} + layer`, `the base image '${base}' does not exist locally (nothing is pulled)`);
  // A role label is set even if the caller gives none: LABELs are inherited, and the base's
  // `role=base` must not stick to a layer built on it.
  const spec = { ...config, labels: { [LABEL_ROLE]: 'layer', ...labels, [LABEL_MANAGED]: MANAGED_VALUE } };
  const content = digestJson({ recipe: LAYER_RECIPE, baseId, files: await digestFiles(files), ...spec });
  return buildIfChanged(docker, tag ?? `amlsim/layer:${content.slice(0, 32)}`, content, { ...spec, files, from: baseId });
}

/** Builds `tag` from the options unless an image with that tag and `content` digest exists (a race-free tag move). */
export async function buildIfChanged(
  docker: Docker,
  tag: string,
  content: string,
  options: Omit<BuildImageOptions, 'tag'>,
): Promise<ImageResult> {
  const matches = (info: Docker.ImageInspectInfo | undefined): info is Docker.ImageInspectInfo =>
    info?.Config?.Labels?.[LABEL_CONTENT] === content;
  const existing = await inspectImage(docker, tag);
  // A caller-chosen tag may name older content: reuse only when the digest label matches.
  if (matches(existing)) return { tag, imageId: existing.Id, reused: true };

  // Build under a private tag, then move the real one: two processes building the same missing
  // image at once (parallel test files, two simulators) would otherwise leave the loser's
  // 100 MB image dangling when the winner's build takes the tag.
  const { repo } = splitTag(tag);
  const scratchTag = `${repo}:build-${randomUUID()}`;
  const id = await buildImageOn(docker, { ...options, tag: scratchTag, labels: { ...options.labels, [LABEL_CONTENT]: content } });
  try {
    const now = await inspectImage(docker, tag);
    if (matches(now) && now.Id !== id) {
      // Someone else finished first: keep theirs, drop ours (and its intermediate layers).
      await docker.getImage(scratchTag).remove({ force: true });
      return { tag, imageId: now.Id, reused: false };
    }
    await docker.getImage(id).tag(splitTag(tag));
  } finally {
    // Only untags when the image also carries the real tag; removes our copy otherwise.
    await docker
      .getImage(scratchTag)
      .remove()
      .catch((err: unknown) => {
        if (!hasStatus(err, 404)) throw err;
      });
  }
  return { tag, imageId: id, reused: false };
}

/** `repo[:tag]` split the way Docker reads it (a ':' before the last '/' is a registry port). */
function splitTag(ref: string): { repo: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repo: ref, tag: 'latest' };
}

/** Removes the images labelled with a session (see {@link removeImagesWhereOn}). */
export async function removeSessionImagesOn(docker: Docker, session: string): Promise<number> {
  return removeImagesWhereOn(docker, [`${LABEL_MANAGED}=${MANAGED_VALUE}`, `${LABEL_SESSION}=${session}`]);
}

/**
 * Removes the images matching the label filter (and `doomed`, when given), children before
 * parents: Docker refuses to remove an image another one is built on, so it loops while that
 * makes progress. Returns how many went.
 */
export async function removeImagesWhereOn(docker: Docker, labelFilter: string[], doomed: (labels: Record<string, string> | null | undefined) => boolean = () => true): Promise<number> {
  let removed = 0;
  for (;;) {
    const images = (await docker.listImages({ filters: { label: labelFilter } })).filter((i) => doomed(i.Labels));
    let progress = false;
    let lastError: unknown;
    for (const image of images) {
      try {
        await docker.getImage(image.Id).remove({ force: true });
        removed++;
        progress = true;
      } catch (err) {
        if (hasStatus(err, 404)) continue;
        lastError = err;
      }
    }
    if (images.length === 0 || !progress) {
      if (lastError) throw lastError;
      return removed;
    }
  }
}

/**
 * A failed build leaves the images of the steps that succeeded (the classic builder keeps them
 * as cache); nothing would ever use or remove them. The builder names each step's result in a
 * ` ---> <id>` line. Newest first, since a parent cannot go before its child; an image another
 * one still uses (a cache hit shared with a real build) refuses removal, which is ignored.
 */
async function removeIntermediates(docker: Docker, progress: readonly BuildProgress[]): Promise<void> {
  const ids = progress.flatMap((p) => /^ ---> ([0-9a-f]{12,64})\s*$/.exec(p.stream ?? '')?.[1] ?? []);
  for (const id of ids.reverse()) {
    await docker
      .getImage(id)
      .remove({ noprune: true })
      .catch(() => undefined);
  }
}

interface BuildProgress {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<BuildProgress[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: BuildProgress[]) => (err ? reject(err) : resolve(output)));
  });
}
