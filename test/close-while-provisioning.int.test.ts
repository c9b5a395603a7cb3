import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { alicePlatform, tempDir } from './helpers';

/**
 * A session that closes while a cluster node's disks are being made (its volumes' creation in
 * flight) leaves nothing: close waits for the cluster work under way before it sweeps the
 * session's objects, so a volume created late is not left behind (the crash test's
 * "cluster-scaling.yaml, killed after event 40" flake: node volumes left after resume).
 */

const events = (store: EventStore, type: string): StoredEvent[] => [...store.readAll()].filter((e) => e.type === type);
const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
const volumesOf = (session: string) => docker('volume', 'ls', '-q', '--filter', `label=dev.amlsim.session=${session}`);
const containersOf = (session: string) => docker('ps', '-aq', '--filter', `label=dev.amlsim.session=${session}`);

const waitFor = async <T>(what: string, get: () => T | undefined, ms = 60_000): Promise<T> => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
};

it('closing while a node is provisioning waits for its volumes, then removes them: no leftovers, no volume of the session in Docker', async () => {
  using tmp = tempDir();
  const code = join(tmp.dir, 'code');
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'train.js'), 'console.log("done");\n');
  const { platform, store, token } = await alicePlatform(join(tmp.dir, 'data'));
  const session = platform.session;
  let closed = false;
  try {
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'warm', type: 'AmlCompute', maxNodes: 1 });
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cold', type: 'AmlCompute', maxNodes: 1 });
    // A first run starts the driver.
    const first = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'warm', source: code, script: 'train.js' });
    expect(await platform.ml.waitForRun(token, { runId: first.runId, timeoutMs: 120_000 })).toMatchObject({ status: 'Completed' });

    // The next node's disks take a while: its volumes are created only after close has begun.
    const driver = platform.driverIfStarted()!;
    const provisionNode = driver.provisionNode.bind(driver);
    let provisioned = false;
    driver.provisionNode = async (options) => {
      await new Promise((r) => setTimeout(r, 1_500));
      const disks = await provisionNode(options);
      provisioned = true;
      return disks;
    };
    await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cold', source: code, script: 'train.js' });
    await waitFor('the cold node provisioning', () => events(store, 'NodeProvisioningStarted').find((e) => e.data.compute === 'cold'));
    expect(provisioned).toBe(false);

    const { leftovers } = await platform.close();
    closed = true;
    // Close waited for the node's volumes to be made, and removed them.
    expect(provisioned).toBe(true);
    expect(leftovers).toEqual([]);
    // Past when a late creation would have landed, still nothing of the session is in Docker.
    await new Promise((r) => setTimeout(r, 500));
    expect(volumesOf(session)).toEqual([]);
    expect(containersOf(session)).toEqual([]);
  } finally {
    if (!closed) await platform.close().catch(() => {});
    await new Promise((r) => setTimeout(r, 2_000));
    for (const c of containersOf(session)) spawnSync('docker', ['rm', '-f', c]);
    for (const v of volumesOf(session)) spawnSync('docker', ['volume', 'rm', '-f', v]);
  }
}, 180_000);
