import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from '@amlsim/scenario';
import { openEventStore } from '@amlsim/store';
import { privateLeaseHome, REPO, runCliAndKill, sessionLeftovers, tempDir } from './helpers';

/**
 * The crash test: a simulator SIGKILLed at many points of real scenarios — after the k-th
 * appended event for k spread over the scenario, and in the middle of a container start, an
 * image push and a metric write-back — then `amlsim resume` on its data dir. After each: no
 * event lost or duplicated (positions contiguous), every global invariant holds, and nothing
 * of the killed session is left: no container, volume, image, registry process or temp dir.
 * A run whose container survived is re-attached and ends as it would have, and a run that had
 * not started is driven on; what cannot be taken back ends Failed PlatformRestarted
 * (docs/architecture.md "Crash recovery"). The killed scenario's remaining steps are played in
 * the resumed session where the log tells the step it died in done or not done; the test
 * prints at how many kill points they were played and passed.
 */

const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const cli = (home: string, ...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });

type KillAt = { label: string; when: (e: StoredEvent, n: number) => boolean };

/** Run the scenario with --json and SIGKILL the simulator when `killAt` says; the session ids it began. */
const runAndKill = async (home: string, scenario: string, dataDir: string, killAt: KillAt | undefined): Promise<{ sessions: Set<string>; events: number; killed: boolean }> => {
  const { sessions, events, killedAt } = await runCliAndKill(scenario, dataDir, killAt?.when, { ...process.env, TMPDIR: home });
  return { sessions, events, killed: killedAt !== undefined };
};


const SCENARIOS = ['train-managed-compute.yaml', 'cluster-scaling.yaml', 'train-attached-vm.yaml', 'create-image.yaml', 'webservice-aci.yaml'];
const FRACTIONS = [0.15, 0.35, 0.55, 0.75, 0.9];
/** Kill points in the middle of an effect: the fact that starts it is in, its outcome is not. */
const MIDDLE: KillAt[] = [
  { label: 'a container start (node assigned, container not started)', when: (e) => e.type === 'NodeAssigned' },
  { label: 'an image push (script checked, image not pushed)', when: (e) => e.type === 'ImageScoringScriptChecked' },
  { label: 'a metric write-back (Finalizing reported, metrics not written)', when: (e) => e.type === 'RunStatusReported' && e.data.status === 'Finalizing' },
];

const tally = { tried: 0, passed: 0, reattached: 0, continued: 0, continuedPassed: 0, continuedFailed: [] as string[] };
afterAll(() => {
  console.log(
    `crash test: ${tally.passed} of ${tally.tried} kill points passed; at ${tally.reattached} a run's container outlived the simulator and was re-attached; ` +
      `the killed scenario's remaining steps were played at ${tally.continued} and passed at ${tally.continuedPassed}` +
      (tally.continuedFailed.length ? ` (not at: ${tally.continuedFailed.join('; ')})` : ''),
  );
});

describe('crash test: SIGKILL at many points, then resume', () => {
  it.each(SCENARIOS)('%s', async (file) => {
    const scenario = join(REPO, 'scenarios', file);
    // A reference run tells how many events the scenario appends.
    let total: number;
    {
      using ref = tempDir();
      const run = await runAndKill(privateLeaseHome(ref.dir), scenario, join(ref.dir, 'data'), undefined);
      total = run.events;
      expect(total).toBeGreaterThan(10);
    }
    const points: KillAt[] = [
      ...FRACTIONS.map((f) => ({ label: `after event ${Math.round(total * f)} of ${total}`, when: (_e: StoredEvent, n: number) => n >= Math.round(total * f) })),
      ...MIDDLE,
    ];
    const failures: string[] = [];
    for (const point of points) {
      using tmp = tempDir();
      const dataDir = join(tmp.dir, 'data');
      // Its own lease home: what it kills is resumed by this test, never swept first by another's simulator.
      const home = privateLeaseHome(tmp.dir);
      const run = await runAndKill(home, scenario, dataDir, point);
      if (!run.killed) continue; // this scenario never reaches that point (no image push in training, …)
      tally.tried++;
      const problems: string[] = [];
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      // The killed scenario's remaining steps are played in the resumed session: exit 1 is a
      // continued scenario that did not pass (counted below), anything else a failure of resume.
      const continued = resume.stdout.split('\n').filter((l) => l.startsWith('{"kind":"continued"')).map((l) => JSON.parse(l) as { passed: boolean });
      for (const c of continued) {
        tally.continued++;
        if (c.passed) tally.continuedPassed++;
        else tally.continuedFailed.push(`${file} ${point.label}`);
      }
      const expectedStatus = continued.some((c) => !c.passed) ? 1 : 0;
      if (resume.status !== expectedStatus) problems.push(`resume exited ${resume.status}: ${resume.stderr.slice(-600)}`);
      if (existsSync(join(dataDir, 'events.sqlite'))) {
        const store = openEventStore('sqlite', dataDir);
        try {
          const events = [...store.readAll()];
          if (events.some((e) => e.type === 'RunReattached')) tally.reattached++;
          if (!events.every((e, i) => e.position === i + 1)) problems.push('positions are not contiguous');
          const violations = checkInvariants(events, { secrets: new SecretRegistry() }).filter((v) => v.invariant !== 'no-leftovers');
          problems.push(...violations.map((v) => `${v.invariant}: ${v.message}`));
          const replayed = cli(home, 'replay', '--data-dir', dataDir);
          if (replayed.status !== 0) problems.push(`replay exited ${replayed.status}: ${replayed.stdout.slice(-400)}`);
        } finally {
          store.close();
        }
      }
      for (const session of run.sessions) problems.push(...sessionLeftovers(home, session));
      if (problems.length === 0) tally.passed++;
      else failures.push(`${file}, killed ${point.label}: ${problems.join('; ')}`);
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it('tried at least 30 kill points across the scenarios', () => {
    expect(tally.tried).toBeGreaterThanOrEqual(30);
    expect(tally.passed).toBe(tally.tried);
    // Killed mid-run, a container runs on: resume takes it back rather than failing the run.
    expect(tally.reattached).toBeGreaterThan(0);
    // ... and the killed scenario goes on to pass where what was in flight could be taken back.
    expect(tally.continuedPassed).toBeGreaterThan(0);
  });
});
