import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform, EnvironmentStore, type Platform } from '@amlsim/platform';
import { SCENARIO_DIR, tempDir } from './helpers';

/**
 * S8.3 managed step 1 for real: a run's environment dependencies are installed with npm on the
 * host (the registry this machine reaches) into the image's /node_modules, so the script's
 * require() finds them in a container with no network; the installed tree is kept in the data
 * dir by digest, so a later session does not run npm. Docker objects carry the session's
 * labels and go with platform.close() (its leftovers are checked).
 */
const DEPS = ['ms@2.1.3', 'is-number@7.0.0'];
const SOURCE = join(SCENARIO_DIR, 'code', 'environment');

const trainingPlatform = async (dataDir: string) => {
  const store = createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir,
    driver: 'docker',
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
  const run = async (dependencies?: string[], script = 'train.js') => {
    const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'env', compute: 'cpu', source: SOURCE, script, ...(dependencies ? { dependencies } : {}) });
    const result = await platform.ml.waitForRun(token, { runId, timeoutMs: 180_000 });
    const prepared = [...store.readAll()].find((e) => e.type === 'RunImagePrepared' && e.data.runId === runId);
    return { runId, result, prepared: prepared?.data as Record<string, any> | undefined };
  };
  return { platform, store, token, run };
};

/** The run's build log, read back from the workspace storage as the workspace identity. */
const buildLogOf = (platform: Platform, blob: string): string => {
  const ws = Object.values(platform.world.workspaces.byId).find((w) => w.workspace === 'ws1')!;
  const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
  return platform.context.storage.getBlob(identity, ws.storageAccount!, ws.blobContainer!, blob).toString('utf8');
};

const sessionImages = (session: string): string[] =>
  execFileSync('docker', ['images', '-q', '--filter', `label=dev.amlsim.session=${session}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
const npmTempDirs = (session: string): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith(`amlsim-${session}-npm-`));

describe('environment dependencies installed with npm into the run image (S8.3 step 1)', () => {
  it('a declared dependency is required in the container, an undeclared one fails ModuleNotFoundError, and a second session takes the tree from the data dir without npm', async () => {
    using tmp = tempDir();
    const first = await trainingPlatform(tmp.dir);
    try {
      // Declared: installed from the registry, required inside the container (no network), metrics written back.
      const declared = await first.run(DEPS);
      expect(declared.result).toMatchObject({ status: 'Completed' });
      expect((await first.platform.ml.getMetrics(first.token, { runId: declared.runId })).metrics).toMatchObject({ two_hours_ms: 7_200_000, is_number: 1 });
      expect(declared.prepared).toMatchObject({ reused: false, environment: { source: 'registry', packages: ['is-number@7.0.0', 'ms@2.1.3'] } });
      const log = buildLogOf(first.platform, declared.prepared!.environment.buildLog);
      expect(log).toContain('npm install --ignore-scripts');
      expect(log).toContain('installed 2 packages: is-number@7.0.0, ms@2.1.3');
      expect(log).not.toContain(tmpdir() + '/amlsim-'); // no host temp path

      // The same list in another order, as an ES module: the same image, reused, and npm not run again.
      const esm = await first.run([...DEPS].reverse(), 'train.mjs');
      expect(esm.result).toMatchObject({ status: 'Completed' });
      expect(esm.prepared).toMatchObject({ reused: true, image: declared.prepared!.image, environment: { source: 'cache', digest: declared.prepared!.environment.digest } });

      // Undeclared: the platform's kind of user error, naming the module and what to do.
      const undeclared = await first.run(undefined);
      expect(undeclared.result).toMatchObject({ status: 'Failed' });
      expect(undeclared.result.reason).toMatch(/^ModuleNotFoundError: No module named 'ms'.*add it to the run's environment dependencies/);
    } finally {
      expect((await first.platform.close()).leftovers).toEqual([]);
    }

    // A second session on the same data dir: the tree is in <data dir>/environments, so the registry is not asked.
    expect(readdirSync(join(tmp.dir, 'environments')).filter((n) => !n.startsWith('.'))).toHaveLength(1);
    const second = await trainingPlatform(tmp.dir);
    try {
      const again = await second.run(DEPS);
      expect(again.result).toMatchObject({ status: 'Completed' });
      expect(again.prepared).toMatchObject({ environment: { source: 'cache' } });
      expect(buildLogOf(second.platform, again.prepared!.environment.buildLog)).toContain("taken from the data dir's cache (npm is not run)");
    } finally {
      expect((await second.platform.close()).leftovers).toEqual([]);
    }
    // And without any npm at all, the cached tree still serves: the store never runs it.
    const offline = new EnvironmentStore(join(tmp.dir, 'environments'), { npm: '/nonexistent/npm' });
    expect(await offline.prepare('s_offline', DEPS)).toMatchObject({ source: 'cache' });
    expect(offline.npmRuns).toBe(0);
  }, 400_000);

  it('a package the registry does not have fails the image step naming it, leaving no image, temp dir or cached tree', async () => {
    using tmp = tempDir();
    const { platform, store, run } = await trainingPlatform(tmp.dir);
    try {
      const bad = await run(['ms@2.1.3', 'amlsim-no-such-package-4f7c1e@1.0.0']);
      expect(bad.result).toMatchObject({ status: 'Failed' });
      expect(bad.result.reason).toMatch(/^EnvironmentBuildFailed: .*the npm package 'amlsim-no-such-package-4f7c1e' .*does not exist on the registry/);
      expect(bad.prepared).toBeUndefined();
      const facts = [...store.readAll()].filter((e) => e.data.runId === bad.runId).map((e) => e.type);
      expect(facts).not.toContain('ContainerStarted');
      expect(buildLogOf(platform, `ExperimentRun/dcid.${bad.runId}/azureml-logs/20_image_build_log.txt`)).toMatch(/E404/);
      // Nothing half-made: no layer image of the session, no npm temp dir, nothing kept in the cache.
      expect(sessionImages(platform.session)).toEqual([]);
      expect(npmTempDirs(platform.session)).toEqual([]);
      expect(existsSync(join(tmp.dir, 'environments')) ? readdirSync(join(tmp.dir, 'environments')) : []).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  }, 300_000);

  it('the same list asked for twice at once is installed by one npm run', async () => {
    using tmp = tempDir();
    const store = new EnvironmentStore(join(tmp.dir, 'environments'));
    const [a, b] = await Promise.all([store.prepare('s_envconc', ['ms@2.1.3']), store.prepare('s_envconc', ['ms@2.1.3', 'ms@2.1.3'])]);
    expect(store.npmRuns).toBe(1);
    expect(b.digest).toBe(a.digest);
    expect(b.dir).toBe(a.dir);
    expect(a.packages).toEqual(['ms@2.1.3']);
    // Everything kept in the data dir is the owner's only (docs/security.md "Data dir").
    const modes = execFileSync('find', [join(tmp.dir, 'environments'), '-perm', '/077'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(modes).toEqual([]);
  }, 120_000);

  it('a version the registry does not have, or no npm to run, fails naming why; nothing is kept', async () => {
    using tmp = tempDir();
    const root = join(tmp.dir, 'environments');
    const session = `s_envtest${process.pid}`;
    const logs: string[] = [];
    await expect(new EnvironmentStore(root).prepare(session, ['ms@99.0.0'], (l) => logs.push(l))).rejects.toMatchObject({
      code: 'EnvironmentBuildFailed',
      message: expect.stringContaining("no version of the npm package 'ms' matches '99.0.0' (npm ETARGET)"),
    });
    expect(logs.join('')).toContain('ETARGET');
    await expect(new EnvironmentStore(root, { npm: '/nonexistent/npm' }).prepare(session, ['ms@2.1.3'])).rejects.toMatchObject({
      code: 'EnvironmentBuildFailed',
      message: expect.stringContaining('npm could not be run (is it installed and on PATH?)'),
    });
    expect(npmTempDirs(session)).toEqual([]);
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  }, 120_000);
});
