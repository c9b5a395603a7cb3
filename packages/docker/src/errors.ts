import { SimError } from '@amlsim/core';

/**
 * Errors of the Docker driver. Built here (not ad hoc) so codes and wording stay consistent
 * (ARCHITECTURE.md "Errors"); each message says what was expected and what came instead.
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
      `The image is built from files on this machine (ENVIRONMENT.md); \`bash scripts/setup.sh\` installs what is needed.`,
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
