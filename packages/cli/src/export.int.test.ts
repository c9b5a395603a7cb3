import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openEventStore } from '@amlsim/store';
import { EXIT_CODES, main, sessionsOf } from './main';

const SCENARIOS = join(import.meta.dirname, '..', '..', '..', 'scenarios');
const dirs: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'amlsim-export-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Run the CLI, keeping what it writes to stdout and stderr. */
const amlsim = async (...args: string[]) => {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (stdout.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (stderr.push(String(chunk)), true));
  const code = await main(['node', 'amlsim', ...args]);
  vi.restoreAllMocks();
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
};

describe('amlsim export', () => {
  it('plays a scenario on the process driver and writes its Mermaid sequence diagram', async () => {
    const out = join(temp(), 'train.mmd');
    const r = await amlsim('export', join(SCENARIOS, 'train-managed-compute.yaml'), '--stable', '--out', out);
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    const text = readFileSync(out, 'utf8');
    expect(text.startsWith('sequenceDiagram\n')).toBe(true);
    expect(text).toContain('  Compute->>RP: RunStatusReported run=r1 status=Running');
    expect(text).toContain('  AAD->>Compute: RunTokenIssued run=r1 fp=fp');
    expect(text).toContain('  Client-xARM: rita: CommandRejected ✗ AuthorizationFailed command=SubmitRun');
    expect(text).not.toMatch(/rtok_|tok_[a-z0-9]{12}/);
  });

  it("draws a session of the data dir's log as an HTML page that needs no network", async () => {
    const dataDir = temp();
    const run = await amlsim('run', join(SCENARIOS, 'snapshot.yaml'), '--data-dir', dataDir, '--no-color');
    expect(run.code, run.stderr).toBe(EXIT_CODES.ok);
    const store = openEventStore('sqlite', dataDir);
    const [session] = sessionsOf(store);
    store.close();
    const r = await amlsim('export', session!, '--data-dir', dataDir, '--format', 'html');
    expect(r.code, r.stderr).toBe(EXIT_CODES.ok);
    expect(r.stdout.startsWith('<!doctype html>')).toBe(true);
    expect(r.stdout).toContain('SnapshotCreated');
    expect(r.stdout).toContain(`session ${session}`);
    expect(r.stdout).not.toMatch(/<script|<link|url\(|https?:\/\//i);
  });

  it('says which sessions there are when the one given is not in the log (usage error)', async () => {
    const dataDir = temp();
    await amlsim('run', join(SCENARIOS, 'snapshot.yaml'), '--data-dir', dataDir, '--no-color');
    const r = await amlsim('export', 's_nosuchsession', '--data-dir', dataDir);
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toMatch(/no session 's_nosuchsession' in the event log at .*events\.sqlite; its sessions are: s_/);
  });

  it('refuses an unknown format, naming the ones it takes (usage error)', async () => {
    const r = await amlsim('export', join(SCENARIOS, 'snapshot.yaml'), '--format', 'svg');
    expect(r.code).toBe(EXIT_CODES.usage);
    expect(r.stderr).toContain("argument 'svg' is invalid. Allowed choices are mermaid, html.");
  });

  it('says so when the scenario file does not exist', async () => {
    const r = await amlsim('export', join(SCENARIOS, 'no-such.yaml'));
    expect(r.code).toBe(EXIT_CODES.invalidFile);
    expect(r.stderr).toContain('no such scenario file');
  });
});
