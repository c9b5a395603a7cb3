import { spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { aliceScenarioYaml, privateLeaseHome, REPO, runCliAndKill, tempDir } from './helpers';

/**
 * `amlsim resume --json` prints one line for each run it drove on (its target had not started
 * when the simulator died), next to the lines for re-attached and lost runs:
 * `{"kind":"drivenOn","session":…,"runId":…,"status":…}` once the run has ended.
 */

const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);

it('amlsim resume prints a drivenOn line with the session, the run and how it ended', async () => {
  using tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const home = privateLeaseHome(tmp.dir);
  cpSync(join(REPO, 'scenarios', 'code', 'sleepy'), join(tmp.dir, 'code', 'sleepy'), { recursive: true });
  const scenario = join(tmp.dir, 'driven-on.yaml');
  writeFileSync(
    scenario,
    aliceScenarioYaml('A run driven on', '{}', [
      '  - createCompute: { workspace: ws1, name: cpu, type: AmlCompute, vmSize: STANDARD_DS2_V2, maxNodes: 1 }',
      '  - id: r1',
      '    submitRun: { workspace: ws1, experiment: exp1, compute: cpu, source: code/sleepy, script: train.js, args: [200] }',
      '  - waitForRun: { run: r1, timeout: 2m }',
      '    expect: { status: Completed }',
    ]),
  );
  let session: string | undefined;
  try {
    // Killed while the run's node is provisioning: its target never started.
    const { killedAt } = await runCliAndKill(scenario, dataDir, (e) => e.type === 'NodeProvisioningStarted', { ...process.env, TMPDIR: home });
    expect(killedAt).toBeDefined();
    session = killedAt!.meta.session;
    const runId = String(killedAt!.data.forRun);
    const resume = spawnSync(process.execPath, [BIN, 'resume', '--data-dir', dataDir, '--json'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });
    expect(resume.status, resume.stderr + resume.stdout.slice(-3000)).toBe(0);
    const lines = resume.stdout.split('\n').filter((l) => l.startsWith('{"kind":"drivenOn"'));
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([{ kind: 'drivenOn', session, runId, status: 'Completed' }]);
    expect(resume.stdout).not.toContain('"kind":"lostRun"');
  } finally {
    if (session) {
      for (const c of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', c]);
      for (const v of docker('volume', 'ls', '-q', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['volume', 'rm', '-f', v]);
    }
  }
}, 180_000);
