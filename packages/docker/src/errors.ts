import { SimError } from '@amlsim/core';

/**
 * Errors of the Docker driver. Built here (not ad hoc) so codes and wording stay consistent
 * (docs/architecture.md "Errors"); each message says what was expected and what came instead.
 */

/** No Docker engine answered on the socket. */
export function dockerUnavailable(socketPath: string, cause?: unknown): SimError {
  const why = describeCause(cause);
  return new SimError(
    'DockerUnavailable',
    `No Docker engine answered at ${socketPath}${why ? ` (${why})` : ''}. ` +
      `The docker driver runs compute targets as local containers and needs a running engine: ` +
      `start one with \`bash scripts/setup.sh\`, or \`dockerd --bridge=none --iptables=false --ip-masq=false\` ` +
      `(as root, in the background). To run without Docker, use \`--driver process\`.`,
    { status: 503, retryable: true, cause, details: { socketPath } },
  );
}

/** `docker build` reported an error (it comes inside the progress stream, not as a failed request). */
export function imageBuildFailed(tag: string, detail: string, cause?: unknown): SimError {
  return new SimError('ImageBuildFailed', `Building image '${tag}' failed: ${detail}.`, {
    status: 500,
    cause,
    details: { tag, detail },
  });
}

/** A container could not be created or started. */
export function containerStartFailed(image: string, detail: string, cause?: unknown): SimError {
  return new SimError('ContainerStartFailed', `Starting a container from image '${image}' failed: ${detail}.`, {
    status: 500,
    cause,
    details: { image, detail },
  });
}

/** Finding the files of the Node runtime on the host failed (no `ldd`, unreadable binary, …). */
export function runtimeFilesUnavailable(what: string, detail: string, cause?: unknown): SimError {
  return new SimError(
    'RuntimeFilesUnavailable',
    `Collecting ${what} for the FROM-scratch image failed: ${detail}. ` +
      `The image is built from files on this machine (docs/architecture.md "Docker conventions"); \`bash scripts/setup.sh\` installs what is needed.`,
    { status: 500, cause, details: { what, detail } },
  );
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ? `${code}: ${cause.message}` : cause.message;
  }
  return cause === undefined ? '' : String(cause);
}

/** An image reference or registry address the driver will not use (not loopback, malformed). */
export function invalidImageReference(reference: string, why: string): SimError {
  return new SimError('InvalidImageReference', `The image reference '${reference}' cannot be used: ${why}.`, {
    status: 400,
    details: { reference, why },
  });
}

/**
 * The registry refused the credentials given for a push or pull. The message names the user,
 * never the password.
 */
export function registryAuthenticationFailed(
  operation: 'push' | 'pull',
  reference: string,
  username: string,
  detail: string,
  cause?: unknown,
): SimError {
  const registry = reference.split('/')[0] ?? reference;
  return new SimError(
    'RegistryAuthenticationFailed',
    `The ${operation} of '${reference}' was refused: registry ${registry} did not accept the credentials of user '${username}' (${detail}). ` +
      `Expected the registry's current admin credentials (kept in the workspace key vault).`,
    { status: 401, cause, details: { operation, reference, registry, username, detail } },
  );
}

/** `docker push` reported an error (inside the progress stream or as a failed request). */
export function imagePushFailed(reference: string, detail: string, cause?: unknown): SimError {
  return new SimError('ImagePushFailed', `Pushing image '${reference}' failed: ${detail}.`, {
    status: 500,
    cause,
    details: { reference, detail },
  });
}

/** `docker pull` reported an error (inside the progress stream or as a failed request). */
export function imagePullFailed(reference: string, detail: string, cause?: unknown): SimError {
  return new SimError('ImagePullFailed', `Pulling image '${reference}' failed: ${detail}.`, {
    status: 500,
    cause,
    details: { reference, detail },
  });
}
