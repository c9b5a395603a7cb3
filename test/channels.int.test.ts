import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { replicaDir } from '../packages/platform/src/inference/webservices';
import { alicePlatform, SCENARIO_DIR, tempDir } from './helpers';

/**
 * One channel per principal (docs/security.md): a run's control-plane socket and a replica's
 * scoring socket sit in directories only the platform can enter. Another user on the host
 * cannot connect to either (so nobody scores around the gateway's auth and App Insights), and
 * a run's container sees its own socket's directory read-only.
 */

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** What another host user gets when connecting to `socketPath`: 'connected' or the error code. */
const connectAs = (uid: number, socketPath: string): string =>
  spawnSync(
    process.execPath,
    ['-e', `require('node:net').connect(process.argv[1]).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code));`, socketPath],
    { uid, gid: uid, encoding: 'utf8' },
  ).stdout.trim();

const modeOf = (path: string) => {
  const st = statSync(path);
  return { mode: (st.mode & 0o777).toString(8), uid: st.uid };
};

const platformWith = (dir: string) => alicePlatform(dir);

describe.skipIf(!isRoot)('channels are reachable by the platform only (S1.3, S1.4, S5.1)', () => {
  it("another host user cannot connect to a replica's socket: the only way to score is the gateway, with its key", async () => {
    using tmp = tempDir();
    const { store, platform, token } = await platformWith(tmp.dir);
    try {
      const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIO_DIR, 'models', 'sentiment.json') });
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'img', models: [model.modelId], scoringScript: join(SCENARIO_DIR, 'scoring', 'score.js') });
      await platform.webservices.deploy(token, { workspace: 'ws1', name: 'svc', imageId: image.imageId, target: 'ACI', authEnabled: true });
      const serviceId = String([...store.readAll()].find((e) => e.type === 'WebserviceDeploymentRequested')!.data.serviceId);
      const socket = join(replicaDir(platform.session, serviceId, 0), 'replica.sock');
      // The door's outer directory is the platform's alone; the door itself is the replica user's.
      expect(modeOf(dirname(dirname(socket)))).toEqual({ mode: '700', uid: 0 });
      expect(modeOf(dirname(socket))).toEqual({ mode: '700', uid: 1000 });
      expect(connectAs(NOBODY, socket)).toBe('EACCES');
      expect(connectAs(0, socket)).toBe('connected');
      // Through the gateway: no key, refused; the key, answered; both recorded in App Insights.
      expect((await platform.callWebservice('svc', { data: { features: [1, 1, 1] } })).httpStatus).toBe(401);
      const { primaryKey } = await platform.webservices.getKeys(token, { service: 'svc' });
      expect((await platform.callWebservice('svc', { data: { features: [1, 1, 1] }, authorization: `Bearer ${primaryKey}` })).httpStatus).toBe(200);
      expect([...store.readAll()].filter((e) => e.type === 'ScoringRequestRecorded').map((e) => e.data.StatusCode)).toEqual([401, 200]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });

  it("a run's control-plane socket is its own: another host user cannot connect, and the container mounts it read-only", async () => {
    using tmp = tempDir();
    const { store, platform, token } = await platformWith(tmp.dir);
    try {
      await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
      const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: join(SCENARIO_DIR, 'code', 'sleepy'), script: 'train.js', args: ['3000'] });
      await platform.runs.waitFor(runId, 60_000, 'Running');
      const opened = [...store.readAll()].find((e) => e.type === 'RunChannelOpened' && e.data.runId === runId)!;
      const socket = String(opened.data.socket);
      expect(modeOf(dirname(dirname(socket)))).toEqual({ mode: '700', uid: 0 });
      expect(modeOf(dirname(socket))).toEqual({ mode: '755', uid: 0 });
      expect(connectAs(NOBODY, socket)).toBe('EACCES');
      const container = String([...store.readAll()].find((e) => e.type === 'ContainerStarted' && e.data.runId === runId)!.data.container);
      const mounts = JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .Mounts}}', container], { encoding: 'utf8' })) as Array<{ Source: string; Destination: string; RW: boolean }>;
      expect(mounts.find((m) => m.Destination === '/amlsim/control')).toMatchObject({ Source: dirname(socket), RW: false });
      expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
    }
  });
});
