import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadResumableSession, saveResumableSession, updateResumableSession, type ResumableSession } from '../packages/platform/src/identity/resumable-session';
import { tempDir } from './helpers';

/**
 * The user environment of a run (which may hold the user's secrets) is kept for a resumed session
 * in the sealed resume file only: a typed field of what the session saves, sealed with the root
 * key, mode 0600 — never readable in the clear on disk.
 */
describe('the sealed resume file keeps each run’s user environment', () => {
  it('round-trips runEnv as a field of ResumableSession, sealed, mode 0600', () => {
    using tmp = tempDir();
    const rootKey = randomBytes(32);
    const session = 's_envtest';
    saveResumableSession(tmp.dir, rootKey, session, { clock: 'virtual', runTokenKeyPem: 'pem' });
    const secret = `hunter-${randomBytes(8).toString('hex')}`;
    updateResumableSession(tmp.dir, rootKey, session, (state) => {
      (state.runEnv ??= {})['run_1'] = { API_KEY: secret };
    });
    const saved: ResumableSession | undefined = loadResumableSession(tmp.dir, rootKey, session);
    expect(saved?.runEnv).toEqual({ run_1: { API_KEY: secret } });
    const dir = join(tmp.dir, 'platform', 'sessions');
    const [file] = readdirSync(dir);
    const path = join(dir, file!);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(path).includes(Buffer.from(secret))).toBe(false);
    // Another key does not open it.
    expect(() => loadResumableSession(tmp.dir, randomBytes(32), session)).toThrow();
  });
});
