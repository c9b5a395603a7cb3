import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tempDir } from './helpers';

/**
 * Issue 8 §2 "big inputs", end to end: a model file over the platform's limit (a sparse
 * 3 GiB file: no disk used) is refused with ModelTooLarge and recorded as a CommandRejected;
 * the CLI does not crash, finishes that scenario and plays the next file.
 */
const amlsim = (args: string[], cwd: string) => {
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
};

const HEAD = 'tenant:\n  principals:\n    alice: { kind: user }\nsubscriptions:\n  sub-1: { owners: [alice] }\n';

describe('big inputs through the CLI (issue 8 §2)', () => {
  it('a 3 GiB model file: refused with ModelTooLarge and a CommandRejected, the later steps and the next scenario file still run', () => {
    using tmp = tempDir();
    const fd = openSync(join(tmp.dir, 'huge.bin'), 'w');
    ftruncateSync(fd, 3 * 1024 * 1024 * 1024);
    closeSync(fd);
    writeFileSync(join(tmp.dir, 'small.json'), '{"w":[1,2]}');
    writeFileSync(
      join(tmp.dir, 'a-big-model.yaml'),
      `name: A model too big\n${HEAD}steps:\n  - signIn: alice\n  - as: alice\n    createWorkspace: { name: ws1, resourceGroup: rg1, region: eastus }\n` +
        '  - as: alice\n    registerModel: { workspace: ws1, name: huge, path: huge.bin }\n    expect: { error: ModelTooLarge }\n' +
        '  - as: alice\n    registerModel: { workspace: ws1, name: huge, path: small.json }\n' +
        'expect:\n  order:\n    - { type: CommandRejected, command: RegisterModel, code: ModelTooLarge }\n    - { type: ModelRegistered, model: huge, version: 1 }\n',
    );
    writeFileSync(join(tmp.dir, 'b-next.yaml'), `name: The next file\n${HEAD}steps:\n  - signIn: alice\n`);

    const r = amlsim(['run', 'a-big-model.yaml', 'b-next.yaml', '--store', 'memory', '--driver', 'process'], tmp.dir);
    expect(r.stderr).not.toMatch(/greater than 2 GiB|ERR_FS_FILE_TOO_LARGE|RangeError/);
    expect(r.signal).toBeNull();
    expect(r.stdout).toMatch(/CommandRejected.*command=RegisterModel code=ModelTooLarge/);
    expect(r.stdout).toContain('✓ A model too big');
    expect(r.stdout).toContain('✓ The next file');
    expect(r.code).toBe(0);
  });
});
