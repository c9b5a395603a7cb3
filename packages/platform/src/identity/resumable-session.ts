import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open, seal } from '../crypto/sealed-box';

/**
 * What another simulator needs to go on with a session whose own simulator died while its
 * compute targets ran on (docs/architecture.md "Crash recovery"): the key that signed the
 * session's run tokens — the tokens inside those containers must still verify — the kind of
 * clock the session ran on, and each web service's keys and the key its tokens are signed with
 * (a restored service takes the same ones), and the user environment of each run that was given
 * one (a run driven on after the crash starts its target with it). Everything else is in the log.
 *
 * Sealed with the platform root key (like every vault's data key), mode 0600 in a 0700
 * directory; removed when the session closes, so only a session that died leaves one behind.
 */
export type ResumableSession = {
  clock: 'real' | 'virtual';
  runTokenKeyPem: string;
  serviceTokenKeyPem?: string;
  /** Web service name -> its current keys. */
  serviceKeys?: Record<string, { Primary: string; Secondary: string }>;
  /**
   * Run id -> the user environment it was submitted with (RunManagerDeps.userEnv). Never in the
   * log: the values may be the user's secrets; kept here only, sealed, until the session closes.
   */
  runEnv?: Record<string, Record<string, string>>;
};

const dirOf = (dataDir: string) => join(dataDir, 'platform', 'sessions');
const fileOf = (dataDir: string, session: string) => join(dirOf(dataDir), `${session}.sealed`);
const context = (session: string) => `session:${session}`;

export function saveResumableSession(dataDir: string, rootKey: Buffer, session: string, state: ResumableSession): void {
  mkdirSync(dirOf(dataDir), { recursive: true, mode: 0o700 });
  writeFileSync(fileOf(dataDir, session), seal(rootKey, Buffer.from(JSON.stringify(state), 'utf8'), context(session)), { mode: 0o600 });
}

/** The session's saved state, or undefined when it closed cleanly (or never ran a target). */
export function loadResumableSession(dataDir: string, rootKey: Buffer, session: string): ResumableSession | undefined {
  const file = fileOf(dataDir, session);
  if (!existsSync(file)) return undefined;
  return JSON.parse(open(rootKey, readFileSync(file), context(session)).toString('utf8')) as ResumableSession;
}

/** Change the saved state (a service's keys made, regenerated or gone). */
export function updateResumableSession(dataDir: string, rootKey: Buffer, session: string, change: (state: ResumableSession) => void): void {
  const state = loadResumableSession(dataDir, rootKey, session);
  if (!state) return; // closed: nothing is kept for it any more
  change(state);
  saveResumableSession(dataDir, rootKey, session, state);
}

export function isResumable(dataDir: string, session: string): boolean {
  return existsSync(fileOf(dataDir, session));
}

export function forgetResumableSession(dataDir: string, session: string): void {
  rmSync(fileOf(dataDir, session), { force: true });
}
