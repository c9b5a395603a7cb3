import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '@amlsim/docker';

/**
 * The temp-dir entries of a session: `amlsim-<session>` (the control plane's socket dir),
 * `amlsim-<session>-vm-<name>` and `amlsim-<session>-<service>-<i>` (VM and replica sockets).
 * They live in the temp dir because unix socket paths are limited to 108 bytes.
 *
 * A session marks itself with `amlsim-<session>.pid` (its process id) while it runs. A
 * simulator that dies cannot remove its entries; the next one to start removes those of every
 * session whose marked process is gone.
 */
const MARKER = /^amlsim-(.+)\.pid$/;

const markerPath = (dir: string, session: string) => join(dir, `amlsim-${session}.pid`);

/**
 * A session's entry in the temp dir: `amlsim-<session>` with no parts, else
 * `amlsim-<session>-<part>-…` (every entry of a session is named here, so the sweep finds it).
 */
export const sessionTempPath = (session: string, ...parts: string[]): string => join(tmpdir(), [`amlsim-${session}`, ...parts].join('-'));

/** Marks `session` as owned by this process. */
export function markSession(session: string, dir = tmpdir()): void {
  writeFileSync(markerPath(dir, session), `${process.pid}\n`, { mode: 0o644 });
}

/** Removes `session`'s marker (at close, after its entries are gone). */
export function unmarkSession(session: string, dir = tmpdir()): void {
  rmSync(markerPath(dir, session), { force: true });
}

/**
 * Removes the temp-dir entries and marker of every session whose process is gone; returns the
 * sessions swept. Entries of live sessions, and anything without a marker, are left alone.
 */
export function sweepDeadSessions(dir = tmpdir(), isAlive: (pid: number) => boolean = isProcessAlive): string[] {
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir);
  const swept: string[] = [];
  for (const name of names) {
    const session = MARKER.exec(name)?.[1];
    if (!session) continue;
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, name), 'utf8').trim());
    } catch {
      continue; // gone meanwhile: its owner closed, or another simulator swept it
    }
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    const prefix = `amlsim-${session}`;
    for (const entry of names) {
      if (entry === prefix || entry.startsWith(`${prefix}-`)) rmSync(join(dir, entry), { recursive: true, force: true });
    }
    rmSync(join(dir, name), { force: true });
    swept.push(session);
  }
  return swept;
}
