import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform, type Platform } from '@amlsim/platform';
import { runInputsDir } from '../packages/platform/src/training/datastores';
import { SCENARIO_DIR, tempDir } from './helpers';

// S4.2: training data in a datastore (a blob container of the workspace storage account, sealed
// at rest) is mounted into the run's container as a file system, read with the workspace
// identity: the script reads it at AZUREML_DATAREFERENCE_data, cannot write it, and the code
// snapshot holds none of it; with the identity's storage grant revoked the run fails saying so
// and no container starts. On the docker driver: containers carry the session's labels and the
// platform's close removes them (no leftovers).

const READ_DATA = join(SCENARIO_DIR, 'code', 'read-data');
const IRIS = join(SCENARIO_DIR, 'datasets', 'iris');

const setUp = async (dir: string, store: EventStore = createMemoryEventStore()) => {
  const platform = await createPlatform({
    store,
    dataDir: dir,
    driver: 'docker',
    tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } },
  });
  const token = await platform.directory.signIn('alice', { mfa: false });
  await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
  await platform.arm.attachDatastore(token, { workspace: 'ws1', name: 'training', container: 'training-data' });
  await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1, idleSecondsBeforeScaledown: 60 });
  const submit = (mode: 'mount' | 'download' = 'mount', path = 'iris') =>
    platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'iris', compute: 'cpu', source: READ_DATA, script: 'train.js', inputs: { data: { datastore: 'training', path, mode } } });
  return { platform, store, token, submit };
};

const eventsOf = (store: EventStore, type: string, runId?: string): StoredEvent[] =>
  [...store.readAll()].filter((e) => e.type === type && (runId === undefined || e.data.runId === runId));

const closeClean = async (platform: Platform) => expect((await platform.close()).leftovers).toEqual([]);

describe('training data mounted from a datastore (S4.2, docker driver)', () => {
  it('a script reads its input read-only at AZUREML_DATAREFERENCE_data; nothing of it is in the snapshot; the decrypted copy goes with the run', async () => {
    using tmp = tempDir();
    const { platform, store, token, submit } = await setUp(tmp.dir);
    try {
      const uploaded = await platform.ml.uploadToDatastore(token, { workspace: 'ws1', datastore: 'training', source: IRIS, path: 'iris' });
      expect(uploaded).toMatchObject({ files: 2, fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) });
      // S4.1: sealed at rest: no byte of the data is in the storage account's files.
      const storage = join(tmp.dir, 'storage');
      const onDisk = readdirSync(storage, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => readFileSync(join(d.parentPath, d.name)));
      expect(onDisk.some((bytes) => bytes.includes('sepal_length') || bytes.includes('virginica'))).toBe(false);

      const { runId } = await submit('mount');
      expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 120_000 })).toEqual({ status: 'Completed' });
      const { metrics } = await platform.ml.getMetrics(token, { runId });
      // Derived from the mounted file; the write to it was refused (a read-only bind: EROFS).
      expect(metrics).toMatchObject({ rows: 12, classes: 3, mean_sepal_length: 5.883, data_in_snapshot: 0, input_writable: 0 });
      const [logs] = eventsOf(store, 'RunLogsUploaded', runId);
      expect(String(logs!.data.tail)).toContain('writing to the input was refused: EROFS');
      expect(String(logs!.data.tail)).toContain('from /mnt/azureml/inputs/data');

      // RunInputMounted before ContainerStarted, with what was mounted: the upload's own fingerprint.
      const [mounted] = eventsOf(store, 'RunInputMounted', runId);
      expect(mounted!.data).toMatchObject({ input: 'data', datastore: 'training', container: 'training-data', path: 'iris', mode: 'mount', mountPath: '/mnt/azureml/inputs/data', files: 2, fingerprint: uploaded.fingerprint });
      const [started] = eventsOf(store, 'ContainerStarted', runId);
      expect(mounted!.position).toBeLessThan(started!.position);

      // The snapshot is the code alone: one file, the same id as a snapshot of the directory taken without inputs.
      const [submitted] = eventsOf(store, 'RunSubmitted', runId);
      const alone = await platform.ml.snapshot(token, { workspace: 'ws1', experiment: 'iris', source: READ_DATA });
      expect(alone).toMatchObject({ snapshotId: submitted!.data.snapshotId, fileCount: 1, files: ['train.js'] });

      // The decrypted copy went with the run.
      expect(existsSync(runInputsDir(platform.session, runId))).toBe(false);

      // download: the run's own writable copy; the datastore keeps the data as it was.
      const { runId: copy } = await submit('download');
      expect(await platform.ml.waitForRun(token, { runId: copy, timeoutMs: 120_000 })).toEqual({ status: 'Completed' });
      expect((await platform.ml.getMetrics(token, { runId: copy })).metrics).toMatchObject({ rows: 12, input_writable: 1 });
      const { runId: again } = await submit('mount');
      expect(await platform.ml.waitForRun(token, { runId: again, timeoutMs: 120_000 })).toEqual({ status: 'Completed' });
      expect((await platform.ml.getMetrics(token, { runId: again })).metrics).toMatchObject({ rows: 12, input_writable: 0 });

      // No credential in the log: the datastore's connection string stays in the key vault.
      const log = JSON.stringify([...store.readAll()]);
      expect(log).not.toMatch(/AccountKey=|DefaultEndpointsProtocol/);
    } finally {
      await closeClean(platform);
    }
  }, 300_000);

  it('with the identity storage grant revoked while the run waits for its node, the run fails with the reason and no container sees the data', async () => {
    using tmp = tempDir();
    const { platform, store, token, submit } = await setUp(tmp.dir);
    try {
      await platform.ml.uploadToDatastore(token, { workspace: 'ws1', datastore: 'training', source: IRIS, path: 'iris' });
      // A busy run holds the cluster's one node; it has fetched its code once it reports Running.
      const { runId: busy } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'hold', compute: 'cpu', source: join(SCENARIO_DIR, 'code', 'sleepy'), script: 'train.js', args: ['60000'] });
      await platform.runs.waitFor(busy, 120_000, 'Running');
      await waitForEvent(store, (e) => e.type === 'RunStatusReported' && e.data.runId === busy && e.data.status === 'Running');
      const { runId } = await submit('mount');
      await platform.runs.waitFor(runId, 60_000, 'Queued');
      await platform.arm.revokeIdentityAccess(token, { workspace: 'ws1', resource: 'storage' });
      await platform.ml.cancelRun(token, { runId: busy });
      const ended = await platform.ml.waitForRun(token, { runId, timeoutMs: 120_000 });
      expect(ended.status).toBe('Failed');
      expect(ended.reason).toMatch(/^the workspace identity has no access to datastore 'training' \(storage account ws1st[a-z0-9]+, container training-data\): AuthorizationFailure: /);
      expect(ended.reason).toContain("Input 'data' was not mounted");
      // No container was started for it, nothing was mounted, nothing decrypted is left.
      expect(eventsOf(store, 'ContainerStarted', runId)).toEqual([]);
      expect(eventsOf(store, 'RunInputMounted')).toEqual([]);
      expect(eventsOf(store, 'NodeReleased', runId)).toHaveLength(1);
      expect(existsSync(runInputsDir(platform.session, runId))).toBe(false);
      // And a new submit is refused before any run exists (S2.5).
      await expect(submit('mount')).rejects.toMatchObject({ code: 'ManagedIdentityAccessDenied' });
    } finally {
      await closeClean(platform);
    }
  }, 300_000);
});

/** Resolves once the log holds an event `matches` takes (woken by the store, not by polling). */
const waitForEvent = (store: EventStore, matches: (e: StoredEvent) => boolean, timeoutMs = 60_000): Promise<void> =>
  new Promise((resolve, reject) => {
    if ([...store.readAll()].some(matches)) return resolve();
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error('timed out waiting for an event'));
    }, timeoutMs);
    const unsubscribe = store.subscribe((events) => {
      if (!events.some(matches)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
