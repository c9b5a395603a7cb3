import { spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { aliceScenarioYaml, docker, logOf, privateLeaseHome, REPO, runCliAndKill, sessionLeftovers, tempDir } from './helpers';

/**
 * S3.1 and docs/architecture.md "Crash recovery": a VNet's holder container outlives a killed
 * simulator like the session's other containers. On resume the session takes it back when it
 * still runs (a new member joins the same namespace); with it gone, a new member is refused
 * VnetUnavailable. Either way the session's close removes it.
 */
const BIN = join(REPO, 'packages', 'cli', 'bin', 'amlsim.js');
const PASSWORD = 'Correct-Horse-42';
const cli = (home: string, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TMPDIR: home } });

/** A run on a VM in vnet-a (killed while it runs), then a second VM that names vnet-a. */
const writeScenario = (dir: string, secondVm: string[]): string => {
  cpSync(join(REPO, 'scenarios', 'code', 'sleepy'), join(dir, 'code', 'sleepy'), { recursive: true });
  const file = join(dir, 'vnet-run.yaml');
  writeFileSync(
    file,
    aliceScenarioYaml('A run in a VNet', '{}', [
      `  - createVm: { name: dsvm, password: ${PASSWORD}, vnet: vnet-a, region: eastus, subscription: sub-1 }`,
      `  - attachCompute: { workspace: ws1, name: vm1, type: VirtualMachine, vm: dsvm, username: azureuser, password: ${PASSWORD} }`,
      '  - id: r1',
      '    submitRun: { workspace: ws1, experiment: exp1, compute: vm1, source: code/sleepy, script: train.js, args: [3000] }',
      '  - waitForRun: { run: r1, timeout: 2m }',
      '    expect: { status: Completed }',
      ...secondVm,
    ]),
  );
  return file;
};

const RUNNING = (e: StoredEvent) => e.type === 'RunStatusReported' && e.data.status === 'Running';
const holders = (session: string): string[] => docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`, '--filter', 'label=dev.amlsim.role=vnet-holder');

const killMidRun = async (home: string, file: string, dataDir: string): Promise<string> => {
  const { killedAt } = await runCliAndKill(file, dataDir, RUNNING, { ...process.env, TMPDIR: home });
  if (!killedAt) throw new Error('the run never reached Running');
  return killedAt.meta.session;
};

describe('a VNet whose simulator was killed (S3.1)', () => {
  it('is taken back on resume: its holder ran on, a new VM joins it, and it goes when the session closes', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const file = writeScenario(tmp.dir, [`  - createVm: { name: vm2, password: ${PASSWORD}, vnet: vnet-a }`]);
    const session = await killMidRun(home, file, dataDir);
    try {
      expect(holders(session)).toHaveLength(1);
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr).toBe(0);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${file}","passed":true`);
      const events = logOf(dataDir);
      expect(events.filter((e) => e.type === 'VnetCreated')).toHaveLength(1);
      expect(events.find((e) => e.type === 'VmCreated' && e.data.vm === 'vm2')?.data).toMatchObject({ vnet: 'vnet-a', region: 'eastus', subscription: 'sub-1' });
      expect(events.some((e) => e.type === 'VmReattached' && e.data.vm === 'dsvm')).toBe(true);
      expect(events.find((e) => e.type === 'RunCompleted')).toBeDefined();
      expect(holders(session)).toEqual([]);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);

  it('with its holder gone, refuses a new member VnetUnavailable; what ran on in it goes on', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    const home = privateLeaseHome(tmp.dir);
    const file = writeScenario(tmp.dir, [`  - createVm: { name: vm2, password: ${PASSWORD}, vnet: vnet-a }`, '    expect: { error: VnetUnavailable }']);
    const session = await killMidRun(home, file, dataDir);
    try {
      const [holder] = holders(session);
      expect(holder).toBeDefined();
      spawnSync('docker', ['rm', '-f', holder!]);
      const resume = cli(home, 'resume', '--data-dir', dataDir, '--json');
      expect(resume.status, resume.stderr).toBe(0);
      expect(resume.stdout).toContain(`"kind":"continued","session":"${session}","file":"${file}","passed":true`);
      const events = logOf(dataDir);
      const refused = events.find((e) => e.type === 'CommandRejected' && e.data.command === 'CreateVm');
      expect(refused?.data).toMatchObject({ code: 'VnetUnavailable', reason: expect.stringContaining('is no longer running') });
      expect(events.find((e) => e.type === 'RunCompleted')).toBeDefined();
      expect(events.some((e) => e.type === 'VmCreated' && e.data.vm === 'vm2')).toBe(false);
      expect(sessionLeftovers(home, session)).toEqual([]);
    } finally {
      for (const id of docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`)) spawnSync('docker', ['rm', '-f', id]);
    }
  }, 180_000);
});
