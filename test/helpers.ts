import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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
