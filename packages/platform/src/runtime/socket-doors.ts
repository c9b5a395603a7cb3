import { chmodSync, chownSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME_USER } from '@amlsim/docker';
import { sessionTempPath } from './session-temp';

/**
 * A unix-socket "door" between the platform and one compute target or replica
 * (docs/security.md, "Channels"). Two directories:
 *
 *   amlsim-<session>-<parts>/          mode 0700, the platform's: no other host user reaches inside
 *   amlsim-<session>-<parts>/door/     the one directory bind-mounted into the container
 *
 * Who owns the door depends on who listens on it:
 * - `platform` (the control plane listens, the container connects): the door is the platform's
 *   with mode 0755 and is mounted read-only, so the container can connect to the socket but
 *   cannot delete, rename or replace it, nor create a socket of its own beside it;
 * - `target` (the container's scoring server or login agent listens, the platform connects):
 *   the door belongs to the container's user (uid 1000), mode 0700, and only the platform (root)
 *   can reach it through the 0700 outer directory.
 *
 * Host paths of ancestors do not matter inside the container (a bind mount starts at the door),
 * so the outer directory can be closed to everyone but the platform.
 */
export type SocketDoor = {
  /** The outer, platform-only directory: remove it to remove everything. */
  readonly root: string;
  /** The directory to bind-mount into the container. */
  readonly dir: string;
};

export type DoorListener = 'platform' | 'target';

/** Are we root (and so able to give the door to the container's user)? */
const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

export function openSocketDoor(session: string, parts: string[], listener: DoorListener): SocketDoor {
  const root = sessionTempPath(session, ...parts);
  const dir = join(root, 'door');
  mkdirSync(dir, { recursive: true });
  // mkdir's mode is masked by the umask and does not apply to what existed: set both.
  chmodSync(root, 0o700);
  if (listener === 'platform') {
    chmodSync(dir, 0o755);
  } else if (isRoot()) {
    chownSync(dir, RUNTIME_USER.uid, RUNTIME_USER.gid);
    chmodSync(dir, 0o700);
  } else {
    // Not root: the container's user can only be let in by mode. The outer directory (0700,
    // ours) still keeps every other host user out.
    chmodSync(dir, 0o777);
  }
  return { root, dir };
}

/**
 * Let the compute target's user read `dir` (bind-mounted read-only into its container, like
 * the management code on the file share): the user's own when we are root, else readable by
 * mode. Its ancestors stay the platform's alone; inside the container they do not matter.
 */
export function grantTargetRead(dir: string): void {
  const root = isRoot();
  const visit = (path: string, isDir: boolean) => {
    if (root) chownSync(path, RUNTIME_USER.uid, RUNTIME_USER.gid);
    chmodSync(path, isDir ? (root ? 0o500 : 0o755) : root ? 0o400 : 0o644);
  };
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) visit(join(entry.parentPath, entry.name), entry.isDirectory());
  visit(dir, true);
}

export function closeSocketDoor(door: SocketDoor): void {
  rmSync(door.root, { recursive: true, force: true });
}
