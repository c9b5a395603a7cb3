/**
 * Host-side view of the code that runs inside compute targets (S8.3) and web-service replicas
 * (S8.5): where it lives on this machine, and which files to put into an image or onto a
 * workspace file share.
 *
 * The in-container code itself (management/management.cjs, run/, scoring/) is plain
 * JavaScript with no dependencies; this module only locates it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of packages/agent. */
export const AGENT_DIR: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Absolute path of the management code: run it with `node MANAGEMENT_SCRIPT` (env per docs/control-plane.md). */
export const MANAGEMENT_SCRIPT: string = path.join(AGENT_DIR, 'management', 'management.cjs');

/** Absolute path of the @amlsim/run module the management code copies into the work dir. */
export const RUN_MODULE_DIR: string = path.join(AGENT_DIR, 'run');

/** Where agentFiles() puts the agent in an image or on a file share. */
export const AGENT_IMAGE_DIR = '/amlsim/agent';

/** The management code's path in an image: the container's command is `node AGENT_IMAGE_MANAGEMENT_SCRIPT`. */
export const AGENT_IMAGE_MANAGEMENT_SCRIPT = `${AGENT_IMAGE_DIR}/management/management.cjs`;

/** The login agent of a simulated user-owned VM (S8.3 unmanaged compute): `node VM_LOGIN_AGENT`, env AMLSIM_VM_*. */
export const VM_LOGIN_AGENT: string = path.join(AGENT_DIR, 'vm', 'login-agent.mjs');

/** The login agent's path on a VM that has the agent directory mounted at AGENT_IMAGE_DIR. */
export const AGENT_IMAGE_VM_LOGIN_AGENT = `${AGENT_IMAGE_DIR}/vm/login-agent.mjs`;

/**
 * The scoring server of a web-service replica (S8.5): `node SCORING_SERVER`, env
 * AMLSIM_SCORING_SCRIPT, AMLSIM_SCORING_SOCKET, AZUREML_MODEL_DIR (see scoring/server.mjs).
 */
export const SCORING_SERVER: string = path.join(AGENT_DIR, 'scoring', 'server.mjs');

/**
 * The scoring-script check an image build runs (S8.5): `node SCORING_CHECK_SCRIPT <script>`
 * exits 0, or 1 with `amlsim scoring: <code>: <message>` as the last line of stderr.
 */
export const SCORING_CHECK_SCRIPT: string = path.join(AGENT_DIR, 'scoring', 'check-script.mjs');

/** The scoring server's path in an image built with scoringFiles(): the replica's command is `node AGENT_IMAGE_SCORING_SERVER`. */
export const AGENT_IMAGE_SCORING_SERVER = `${AGENT_IMAGE_DIR}/scoring/server.mjs`;

/** The scoring-script check's path in an image built with scoringFiles(). */
export const AGENT_IMAGE_SCORING_CHECK_SCRIPT = `${AGENT_IMAGE_DIR}/scoring/check-script.mjs`;

/** The files of the agent, relative to AGENT_DIR, that must travel with it (runtime only). */
const FILES = [
  'management/management.cjs',
  'management/script-host.cjs',
  'run/package.json',
  'run/index.cjs',
  'run/index.mjs',
] as const;

/** The files of the scoring server and the scoring-script check (they share scoring/load.mjs). */
const SCORING_FILES = [
  'scoring/server.mjs',
  'scoring/check-script.mjs',
  'scoring/load.mjs',
] as const;

export interface AgentFile {
  /** Absolute path in the image (under /amlsim/agent), or relative to a share's root after stripping '/'. */
  path: string;
  /** The file on this machine. */
  hostPath: string;
  /** 0o644: readable by the non-root runtime user; in images the files are root-owned, so not theirs to change. */
  mode: number;
}

/**
 * The management code and the run module with their in-image paths under `/amlsim/agent/`.
 * The layout mirrors packages/agent (management/ next to run/) because the management code
 * finds the run module at `../run` relative to itself. Compatible with @amlsim/docker's
 * `ImageFile` (`{ path, hostPath, mode }`).
 */
export function agentFiles(): AgentFile[] {
  return located(FILES);
}

/**
 * The scoring server and the scoring-script check with their in-image paths under
 * `/amlsim/agent/scoring/`, for an inference image (S8.5). Kept apart from agentFiles(),
 * which also goes onto every training run's file share: a replica needs none of the
 * training agent, and a training run none of this.
 */
export function scoringFiles(): AgentFile[] {
  return located(SCORING_FILES);
}

function located(files: readonly string[]): AgentFile[] {
  return files.map((rel) => {
    const hostPath = path.join(AGENT_DIR, ...rel.split('/'));
    if (!existsSync(hostPath)) throw new Error(`agent file '${hostPath}' is missing`);
    return { path: `${AGENT_IMAGE_DIR}/${rel}`, hostPath, mode: 0o644 };
  });
}
