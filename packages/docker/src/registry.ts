import type Docker from 'dockerode';
import { dockerMessage, hasStatus } from './containers';
import { imagePullFailed, imagePushFailed, invalidImageReference, registryAuthenticationFailed } from './errors';
import { imageId } from './images';

/**
 * Push, pull and remove of images against a registry on this machine (the workspace's
 * Container Registry, issue 4). Only loopback registries are accepted: no traffic may leave the
 * machine (docs/architecture.md "Network"), and Docker trusts 127.0.0.0/8 as an insecure (plain HTTP)
 * registry by default, which is how the registry process is reached.
 */

/** Credentials for one registry; sent to the engine per request, never stored in a docker config file. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** What {@link pushImageOn} pushes: a local image, under `<registry>/<repository>:<tag>`. */
export interface PushImageOptions extends RegistryCredentials {
  /** The local image to push (a tag or an id), e.g. `amlsim/layer:…`. */
  image: string;
  /** `127.x.y.z:PORT` — a loopback registry only. */
  registry: string;
  /** Repository path in the registry, e.g. `azureml/azureml_3f2a…` (lowercase, `/`-separated). */
  repository: string;
  /** Tag in the registry. */
  tag: string;
}

/** What a push answers. */
export interface PushResult {
  /** `<registry>/<repository>:<tag>`; the engine keeps this tag locally after the push. */
  reference: string;
  /** The manifest digest the registry stored (`sha256:…`); `<registry>/<repository>@<digest>` names exactly this image. */
  digest: string;
}

/** What {@link pullImageOn} pulls: `<registry>/<repository>:<tag>` or `<registry>/<repository>@sha256:…`. */
export interface PullImageOptions extends RegistryCredentials {
  reference: string;
}

/** What a pull answers. */
export interface PullResult {
  reference: string;
  /** The manifest digest the registry served. */
  digest: string;
  /** The local image id (the config digest), the same on every engine that pulls this image. */
  imageId: string;
}

interface ProgressItem {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

const LOOPBACK_REGISTRY = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;
// Docker's grammar for a path component and a tag (distribution/reference).
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Words the engine uses when a registry turns credentials down (the HTTP 401 comes back as text). */
const UNAUTHORIZED = /unauthorized|authentication required|no basic auth credentials|incorrect username or password/i;

/** Pushes a local image: tags it `<registry>/<repository>:<tag>`, pushes, returns the digest. */
export async function pushImageOn(docker: Docker, options: PushImageOptions): Promise<PushResult> {
  const { image, registry, repository, tag, username, password } = options;
  const target = `${registry}/${repository}`;
  const reference = `${target}:${tag}`;
  checkRegistry(reference, registry);
  if (!REPOSITORY.test(repository)) throw invalidImageReference(reference, `the repository '${repository}' is not a valid Docker repository path`);
  if (!TAG.test(tag)) throw invalidImageReference(reference, `the tag '${tag}' is not a valid Docker tag`);

  if (!(await imageId(docker, image))) throw imagePushFailed(reference, `the local image '${image}' does not exist`);
  const hadTag = (await imageId(docker, reference)) !== undefined;
  try {
    await docker.getImage(image).tag({ repo: target, tag });
  } catch (cause) {
    throw imagePushFailed(reference, `tagging '${image}' as '${reference}' failed: ${dockerMessage(cause)}`, cause);
  }

  try {
    let progress: ProgressItem[];
    try {
      // `serveraddress` is required even though the engine could derive it: without it the
      // engine answers 400 "missing X-Registry-Auth" (docs/architecture.md "Docker conventions").
      const stream = (await docker.getImage(target).push({
        tag,
        authconfig: { username, password, serveraddress: registry },
      })) as NodeJS.ReadableStream;
      progress = await followProgress(docker, stream);
    } catch (cause) {
      throw classify('push', reference, username, engineDetail(cause), cause);
    }
    // Push errors (a refused login, a registry that went away) arrive as an item of the
    // progress stream with a 200 response, like build errors.
    const failed = progress.find((p) => p.error !== undefined || p.errorDetail !== undefined);
    if (failed) throw classify('push', reference, username, failed.errorDetail?.message ?? failed.error ?? 'unknown error');
    const digest = progress.map((p) => p.aux?.Digest ?? /digest: (sha256:[0-9a-f]{64})/.exec(p.status ?? '')?.[1]).find(Boolean);
    if (!digest) throw imagePushFailed(reference, 'the engine reported success but no digest');
    return { reference, digest };
  } catch (error) {
    // A failed push leaves no new local tag behind (the image itself stays).
    if (!hadTag) await docker.getImage(reference).remove({ noprune: true }).catch(() => undefined);
    throw error;
  }
}

/** Pulls `<registry>/<repository>:<tag|@digest>` from a loopback registry with the given credentials. */
export async function pullImageOn(docker: Docker, options: PullImageOptions): Promise<PullResult> {
  const { reference, username, password } = options;
  const { registry, repository, tagOrDigest } = parseRegistryReference(reference);
  let progress: ProgressItem[];
  try {
    // `tag` may be a digest: the engine reads `sha256:…` there as one.
    const stream = (await docker.createImage(
      { username, password, serveraddress: registry },
      { fromImage: `${registry}/${repository}`, tag: tagOrDigest },
    )) as NodeJS.ReadableStream;
    progress = await followProgress(docker, stream);
  } catch (cause) {
    throw classify('pull', reference, username, engineDetail(cause), cause);
  }
  const failed = progress.find((p) => p.error !== undefined || p.errorDetail !== undefined);
  if (failed) throw classify('pull', reference, username, failed.errorDetail?.message ?? failed.error ?? 'unknown error');
  const digest =
    progress.map((p) => /^Digest: (sha256:[0-9a-f]{64})/.exec(p.status ?? '')?.[1]).find(Boolean) ??
    (DIGEST.test(tagOrDigest) ? tagOrDigest : undefined);
  const id = await imageId(docker, reference);
  if (!digest || !id) throw imagePullFailed(reference, `the engine reported success but ${id ? 'no digest' : 'no local image has that reference'}`);
  return { reference, digest, imageId: id };
}

/**
 * Removes a local image reference: a tag is untagged (the image goes when its last tag does);
 * an id removes the image. Answers whether something was removed (`false`: it was not there).
 */
export async function removeImageOn(docker: Docker, reference: string, options: { force?: boolean } = {}): Promise<boolean> {
  try {
    await docker.getImage(reference).remove({ force: options.force ?? false });
    return true;
  } catch (err) {
    if (hasStatus(err, 404)) return false;
    throw err;
  }
}

/** Splits `127.x.y.z:PORT/repo/path:tag` (or `@sha256:…`), refusing anything but a loopback registry. */
export function parseRegistryReference(reference: string): { registry: string; repository: string; tagOrDigest: string } {
  const slash = reference.indexOf('/');
  if (slash < 0) throw invalidImageReference(reference, 'it names no registry; expected 127.x.y.z:PORT/<repository>:<tag>');
  const registry = reference.slice(0, slash);
  checkRegistry(reference, registry);
  const rest = reference.slice(slash + 1);
  const at = rest.indexOf('@');
  const colon = rest.lastIndexOf(':');
  const [repository, tagOrDigest] =
    at >= 0 ? [rest.slice(0, at), rest.slice(at + 1)] : colon >= 0 ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, 'latest'];
  if (!REPOSITORY.test(repository)) throw invalidImageReference(reference, `the repository '${repository}' is not a valid Docker repository path`);
  if (at >= 0 ? !DIGEST.test(tagOrDigest) : !TAG.test(tagOrDigest)) {
    throw invalidImageReference(reference, `'${tagOrDigest}' is not a valid ${at >= 0 ? 'sha256 digest' : 'tag'}`);
  }
  return { registry, repository, tagOrDigest };
}

function checkRegistry(reference: string, registry: string): void {
  const m = LOOPBACK_REGISTRY.exec(registry);
  const octetsOk = m !== null && m.slice(1, 4).every((o) => Number(o) <= 255);
  const port = m ? Number(m[4]) : 0;
  if (!octetsOk || port < 1 || port > 65535) {
    throw invalidImageReference(
      reference,
      `the registry '${registry}' is not a loopback address with a port (expected 127.x.y.z:PORT); nothing may be sent off this machine`,
    );
  }
}

function classify(operation: 'push' | 'pull', reference: string, username: string, detail: string, cause?: unknown) {
  if (UNAUTHORIZED.test(detail)) return registryAuthenticationFailed(operation, reference, username, detail, cause);
  return operation === 'push' ? imagePushFailed(reference, detail, cause) : imagePullFailed(reference, detail, cause);
}

/**
 * The engine's words for a failed streaming request. The body of a streaming request is not
 * parsed into `json`, so dockerode's message carries it as `(HTTP code 500) server error - <text> `.
 */
function engineDetail(err: unknown): string {
  return dockerMessage(err)
    .replace(/^\(HTTP code \d+\) [^-]*- /, '')
    .trim();
}

function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<ProgressItem[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: ProgressItem[]) => (err ? reject(err) : resolve(output)));
  });
}
