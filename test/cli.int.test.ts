import { spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, SCENARIO_DIR, tempDir } from './helpers';

const require = createRequire(join(REPO, 'packages', 'store', 'package.json'));
const Database = require('better-sqlite3') as typeof import('better-sqlite3');

const amlsim = (args: string[], cwd = REPO) => {
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const JWT = /eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/;
const scenario = (name: string) => join(SCENARIO_DIR, name);

describe('amlsim CLI', () => {
  it('run: prints a timeline with lanes, marks refusals, exits 0, and shows no secret', () => {
    using tmp = tempDir();
    const r = amlsim(['run', scenario('role-matrix.yaml'), '--data-dir', tmp.dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/AAD\s+ SignInSucceeded\s+olivia/);
    expect(r.stdout).toMatch(/ARM\s+✗ CommandRejected\s+rita\s+command=CreateWorkspace code=AuthorizationFailed/);
    expect(r.stdout).toMatch(/RP\s+ WorkspaceCreated/);
    expect(r.stdout).toContain('✓ Role matrix of S2.2');
    expect(r.stdout).not.toMatch(JWT);
    expect(r.stdout).not.toContain('AccountKey=');
  });

  it('run --json: one JSON object per line, events, steps and the result', () => {
    const r = amlsim(['run', scenario('mfa.yaml'), '--store', 'memory', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.kind === 'event').map((l) => l.type)).toContain('SignInFailed');
    expect(lines.filter((l) => l.kind === 'step')).toHaveLength(6);
    expect(lines.at(-1)).toMatchObject({ kind: 'scenario', passed: true });
    expect(r.stdout).not.toMatch(JWT);
  });

  it('run: an invalid file exits 2 with file:line:col, the offending key and the nearest valid name', () => {
    using tmp = tempDir();
    const file = join(tmp.dir, 'typo.yaml');
    writeFileSync(file, 'name: t\ntenant:\n  principals:\n    alice: { kind: user }\nsteps:\n  - signIn: alice\n  - createWorkspace: { name: ws1, resourceGrup: rg1, region: eastus }\n');
    const r = amlsim(['run', file, '--store', 'memory']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:7:35: unknown key`);
    expect(r.stderr).toContain("'resourceGrup'");
    expect(r.stderr).toContain("did you mean 'resourceGroup'?");
    expect(r.stdout).toBe('');
  });

  it('run: a failed expectation exits 1 naming the step, what was expected, what came, and the events around it', () => {
    using tmp = tempDir();
    const file = join(tmp.dir, 'wrong.yaml');
    writeFileSync(
      file,
      'name: wrong\ntenant:\n  principals:\n    alice: { kind: user }\n    bob: { kind: user }\nsteps:\n  - signIn: alice\n  - signIn: bob\n  - as: bob\n    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }\n',
    );
    const r = amlsim(['run', file, '--store', 'memory']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`step 3 (createWorkspace, line 10) at ${file}:10:5`);
    expect(r.stderr).toContain('expected: success');
    expect(r.stderr).toMatch(/got: +AuthorizationFailed: The client 'bob'/);
    expect(r.stderr).toMatch(/events around it:\n(.*\n)*.*CommandRejected\s+bob/);
  });

  it('events and replay read the data dir; replay reports a divergence when saved state disagrees with the log', () => {
    using tmp = tempDir();
    expect(amlsim(['run', scenario('identity-revoke-resync.yaml'), scenario('support-app-per-region.yaml'), '--data-dir', tmp.dir]).code).toBe(0);

    const events = amlsim(['events', '--data-dir', tmp.dir, '--type', 'KeysResynced', '--json']);
    expect(events.code).toBe(0);
    expect(events.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['KeysResynced']);

    const ok = amlsim(['replay', '--data-dir', tmp.dir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.match(/read models and aggregates match/g)).toHaveLength(2);

    const db = new Database(join(tmp.dir, 'events.sqlite'));
    const row = db.prepare('SELECT name, state FROM checkpoints LIMIT 1').get() as { name: string; state: string };
    const state = JSON.parse(row.state);
    state.world.workspaceMetrics = { tampered: { runs: 99, deployments: 0, registrations: 0 } };
    db.prepare('UPDATE checkpoints SET state = ? WHERE name = ?').run(JSON.stringify(state), row.name);
    db.close();
    const bad = amlsim(['replay', '--data-dir', tmp.dir]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('$.world.workspaceMetrics');
  });

  it('a corrupt event log is refused with the file named, and left as it was', () => {
    using tmp = tempDir();
    const file = join(tmp.dir, 'events.sqlite');
    writeFileSync(file, 'this is not a database, it is a shopping list');
    const r = amlsim(['events', '--data-dir', tmp.dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(file);
    expect(readFileSync(file, 'utf8')).toBe('this is not a database, it is a shopping list');
  });

  it.each(['run', 'events', 'replay'])('%s --help describes the command', (cmd) => {
    const r = amlsim([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--data-dir');
  });
});

describe('amlsim CLI without a Docker engine', () => {
  it('says so plainly, tells how to choose the process driver, and records no half-started run', () => {
    using tmp = tempDir();
    const r = amlsim(['run', scenario('metric-writeback.yaml'), '--data-dir', tmp.dir, '--docker-socket', join(tmp.dir, 'no-docker.sock')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DockerUnavailable: No Docker engine answered at');
    expect(r.stderr).toContain('--driver process');
    const events = amlsim(['events', '--data-dir', tmp.dir, '--json']);
    const types = events.stdout.trim().split('\n').map((l) => JSON.parse(l).type);
    expect(types).toContain('WorkspaceCreated');
    for (const t of ['ComputeCreated', 'RunSubmitted', 'RunTokenIssued', 'ContainerStarted']) expect(types).not.toContain(t);
  });

  it('--driver process runs the same scenario without Docker', () => {
    using tmp = tempDir();
    const r = amlsim(['run', scenario('metric-writeback.yaml'), '--store', 'memory', '--driver', 'process', '--docker-socket', join(tmp.dir, 'no-docker.sock')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ContainerStarted .* driver=process/);
  });
});
