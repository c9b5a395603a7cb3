import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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

describe('amlsim exit codes and usage', () => {
  it('--version prints the version of the CLI package', () => {
    const r = amlsim(['--version']);
    expect(r.code).toBe(0);
    const { version } = JSON.parse(readFileSync(join(REPO, 'packages', 'cli', 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout.trim()).toBe(version);
  });

  it('--help lists every exit code', () => {
    for (const args of [['--help'], ['run', '--help']]) {
      const r = amlsim(args);
      expect(r.code).toBe(0);
      for (const line of [/^ {2}0 +all expectations held/m, /^ {2}1 +an expectation/m, /^ {2}2 +a scenario file is invalid/m, /^ {2}64 +usage error/m, /^ {2}69 +no Docker engine/m, /^ {2}70 +internal error/m]) {
        expect(r.stdout).toMatch(line);
      }
    }
  });

  it.each([
    ['an unknown option', ['run', '--frobnicate', 'x.yaml'], "unknown option '--frobnicate'"],
    ['an unknown command', ['frobnicate'], "unknown command 'frobnicate'"],
    ['a missing argument', ['run'], "missing required argument 'files'"],
    ['a bad option value', ['run', 'x.yaml', '--store', 'cloud'], "'cloud' is not a store"],
    ['an --allow-path that is no directory', ['run', 'x.yaml', '--allow-path', '/no/such/dir'], "no directory at '/no/such/dir'"],
    ['no command at all', [], 'Usage: amlsim'],
  ])('a usage error (%s) exits 64 and says what was wrong', (_, args, says) => {
    const r = amlsim(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(says);
  });

  it('an unreadable scenario file or a missing event log exits 2', () => {
    using tmp = tempDir();
    const missing = amlsim(['run', join(tmp.dir, 'nope.yaml'), '--store', 'memory']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the scenario file (ENOENT)');
    const events = amlsim(['events', '--data-dir', tmp.dir]);
    expect(events.code).toBe(2);
    expect(events.stderr).toContain('no event log at');
  });

  it('a YAML syntax error exits 2 pointing at the opening bracket; two problems on one line are both reported', () => {
    using tmp = tempDir();
    const unclosed = join(tmp.dir, 'unclosed.yaml');
    writeFileSync(unclosed, 'name: t\ntenant:\n  principals:\n    alice: { kind: user }\nsteps:\n  - signIn: alice\n  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus\n');
    const r = amlsim(['run', unclosed, '--store', 'memory']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${unclosed}:7:22: YAML syntax error: the '{' here is never closed`);
    const two = join(tmp.dir, 'two.yaml');
    writeFileSync(two, 'name: t\ntenant:\n  principals:\n    alice: { kind: user }\nsteps:\n  - signIn: alice\n  - createWorkspace: { name: ws1, resourceGroup: rg1 }\n  - createWorkspace: { name: ws2, resourceGroup: rg1, region: eastu, edition: pro }\n');
    const r2 = amlsim(['run', two, '--store', 'memory']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${two}:7:5: missing key 'region' in createWorkspace`);
    expect(r2.stderr).toContain(`${two}:8:63: bad value 'eastu' for 'region'`);
    expect(r2.stderr).toContain(`${two}:8:79: bad value 'pro' for 'edition'`);
  });

  it('a duration past the documented maximum exits 2 at file:line:col', () => {
    using tmp = tempDir();
    const file = join(tmp.dir, 'long.yaml');
    writeFileSync(file, 'name: t\noptions: { runTokenTtl: 600h }\ntenant:\n  principals:\n    alice: { kind: user }\nsteps:\n  - signIn: alice\n  - sleep: 600h\n');
    const r = amlsim(['run', file, '--store', 'memory']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:2:25: bad value '600h' for 'runTokenTtl' in options; a duration may be at most 576h (24 days)`);
    expect(r.stderr).toContain(`${file}:8:12: bad value '600h' for 'sleep'`);
    expect(r.stdout).toBe('');
  });
});

describe('amlsim run: paths stay inside the scenario directory', () => {
  const modelScenario = (path: string) =>
    `name: paths\ntenant:\n  principals:\n    alice: { kind: user }\nsteps:\n  - signIn: alice\n  - createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }\n  - registerModel: { workspace: ws1, name: m, path: ${path} }\n`;

  it('refuses an absolute path, a .. that leaves, and a symlink that leads out (exit 2), and --allow-path widens the root', () => {
    using tmp = tempDir();
    const dir = join(tmp.dir, 'scenarios');
    const secret = join(tmp.dir, 'private');
    mkdirSync(dir);
    mkdirSync(secret);
    writeFileSync(join(secret, 'model.bin'), 'not for you');
    symlinkSync(secret, join(dir, 'link'));
    const files = {
      absolute: [modelScenario(join(secret, 'model.bin')), 'is an absolute path outside'],
      dotdot: [modelScenario('../private/model.bin'), "(through '..')"],
      symlink: [modelScenario('link/model.bin'), 'leads through a symbolic link to'],
    } as const;
    for (const [name, [text, says]] of Object.entries(files)) {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, text);
      const r = amlsim(['run', file, '--store', 'memory']);
      expect(r.code, name).toBe(2);
      expect(r.stderr).toContain(`${file}:8:53: 'path' in registerModel`);
      expect(r.stderr).toContain(says);
      expect(r.stderr).toContain('--allow-path');
      expect(r.stdout).toBe('');
      const widened = amlsim(['run', file, '--store', 'memory', '--allow-path', secret]);
      expect(widened.stderr, name).toBe('');
      expect(widened.code, name).toBe(0);
    }
  });
});

describe('amlsim CLI without a Docker engine', () => {
  it('says so plainly, tells how to choose the process driver, and records no half-started run', () => {
    using tmp = tempDir();
    const r = amlsim(['run', scenario('metric-writeback.yaml'), '--data-dir', tmp.dir, '--docker-socket', join(tmp.dir, 'no-docker.sock')]);
    expect(r.code).toBe(69);
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
