import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markSession, sweepDeadSessions, unmarkSession } from './session-temp';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'amlsim-session-temp-test-'));
  dirs.push(d);
  return d;
};

describe('session temp entries', () => {
  it('removes every entry of a session whose process is gone, and nothing else', () => {
    const dir = temp();
    const DEAD = 999_999;
    for (const entry of ['amlsim-s_dead', 'amlsim-s_dead-vm-box', 'amlsim-s_dead-svc_1-0', 'amlsim-s_live', 'amlsim-s_live-svc_2-0', 'amlsim-s_dead2', 'amlsim-unmarked']) {
      mkdirSync(join(dir, entry));
      writeFileSync(join(dir, entry, 'replica.sock'), '');
    }
    writeFileSync(join(dir, 'amlsim-s_dead.pid'), `${DEAD}\n`);
    markSession('s_live', dir);
    expect(readFileSync(join(dir, 'amlsim-s_live.pid'), 'utf8').trim()).toBe(String(process.pid));

    expect(sweepDeadSessions(dir, (pid) => pid !== DEAD)).toEqual(['s_dead']);
    for (const gone of ['amlsim-s_dead', 'amlsim-s_dead-vm-box', 'amlsim-s_dead-svc_1-0', 'amlsim-s_dead.pid']) expect(existsSync(join(dir, gone))).toBe(false);
    // a live session, a session whose name merely starts the same, and unmarked entries stay
    for (const kept of ['amlsim-s_live', 'amlsim-s_live-svc_2-0', 'amlsim-s_live.pid', 'amlsim-s_dead2', 'amlsim-unmarked']) expect(existsSync(join(dir, kept))).toBe(true);

    unmarkSession('s_live', dir);
    expect(existsSync(join(dir, 'amlsim-s_live.pid'))).toBe(false);
  });
});
