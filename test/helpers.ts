import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryEventStore, openEventStore } from '@amlsim/store';
import { createPlatform, virtualClock, type Platform, type RbacMode } from '@amlsim/platform';
import type { EventStore } from '@amlsim/core';
import { onTestFinished } from 'vitest';

export const REPO = join(import.meta.dirname, '..');
export const SCENARIO_DIR = join(REPO, 'scenarios');

/** A temporary directory removed by the returned disposer. */
export const tempDir = (prefix = 'amlsim-test-'): { dir: string; [Symbol.dispose](): void } => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
};

export const storeOf = (kind: 'memory' | 'sqlite', dir: string): EventStore =>
  kind === 'memory' ? createMemoryEventStore() : openEventStore('sqlite', dir);

/** A platform with alice (Owner of sub-1) and bob, on a virtual clock; closed when the test ends. */
export const testPlatform = async (
  dir: string,
  options: { store?: EventStore; mfa?: 'required' | 'optional'; rbacMode?: RbacMode } = {},
): Promise<{ platform: Platform; store: EventStore }> => {
  const store = options.store ?? createMemoryEventStore();
  const platform = await createPlatform({
    store,
    dataDir: dir,
    clock: virtualClock(),
    rbacMode: options.rbacMode ?? 'enforce',
    tenant: {
      mfa: options.mfa ?? 'optional',
      principals: { alice: { kind: 'user' }, bob: { kind: 'user' } },
      subscriptions: { 'sub-1': { owners: ['alice'] } },
    },
  });
  onTestFinished(async () => {
    await platform.close();
  });
  return { platform, store };
};

/** Every file below `dir`, recursively, with its bytes. */
export const allFiles = (dir: string): Array<{ path: string; bytes: Buffer }> =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => {
      const path = join(d.parentPath, d.name);
      return { path, bytes: readFileSync(path) };
    });

export const scenarioFiles = (): string[] =>
  readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(SCENARIO_DIR, f));

/**
 * alice (Owner of sub-1) signed in, with workspace ws1, on the given compute driver: the set-up
 * most end-to-end tests start from. Close the platform when done (`platform.close()`).
 */
export const alicePlatform = async (dir: string, driver: 'docker' | 'process' = 'docker', store: EventStore = createMemoryEventStore()) => {
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver,
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  return { platform, store, token };
};

/** The amlsim CLI, run to its end (tsx, as `pnpm amlsim` would): status, stdout, stderr. */
export const amlsim = (...args: string[]) =>
  spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'packages', 'cli', 'src', 'main.ts'), ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });

/** Call a control-plane socket as a compute target would (POST, a metrics body), with any token. */
export const callControlPlane = (socketPath: string, path: string, token: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ batch: 9, rows: [] }));
  });

/** Running, that is: a killed process that init has not reaped yet (a zombie) is not. */
export const isRunning = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
};
