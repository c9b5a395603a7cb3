import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, type StoredEvent } from '@amlsim/core';
import { connectDocker } from '@amlsim/docker';
import { createPlatform, fingerprint } from '@amlsim/platform';
import { openEventStore } from '@amlsim/store';
import { aliceScenarioYaml, privateLeaseHome, REPO, runCliAndKill, tempDir } from './helpers';

/**
 * A web service whose replicas outlived their simulator (SIGKILL after it became Healthy) comes
 * back in the session that goes on with it (S8.5, S5.1, S1.5): behind a new gateway — a new
 * scoring URI — with the same keys and the same CA; the old scoring URI is gone, a call without
 * a key is still refused, and `WebserviceRestored` says so.
 */

const scenarioIn = (dir: string): string => {
  cpSync(join(REPO, 'scenarios', 'models'), join(dir, 'models'), { recursive: true });
  cpSync(join(REPO, 'scenarios', 'scoring'), join(dir, 'scoring'), { recursive: true });
  const file = join(dir, 'keyed-service.yaml');
  writeFileSync(
    file,
    aliceScenarioYaml('A keyed service', '{ driver: docker }', [
      '  - id: m1',
      '    registerModel: { workspace: ws1, name: sentiment, path: models/sentiment.json }',
      '  - id: img',
      '    createImage: { workspace: ws1, name: sentiment-img, models: [m1], scoringScript: scoring/score.js }',
      '  - deployWebservice: { workspace: ws1, name: keyed-svc, image: img, target: ACI, authEnabled: true }',
      '  - sleep: 60s',
    ]),
  );
  return file;
};

describe('a web service whose replicas outlived the simulator', () => {
  const tmp = tempDir();
  const home = privateLeaseHome(tmp.dir);
  const dataDir = join(tmp.dir, 'data');
  const previousTmp = process.env.TMPDIR;
  let session = '';

  beforeAll(() => {
    // The resumed session below runs in this process: it finds the killed one's doors and lease where that one kept them.
    process.env.TMPDIR = home;
  });
  afterAll(async () => {
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
    if (session) {
      const engine = await connectDocker();
      await engine.sweep({ session });
      await engine.close();
    }
    tmp[Symbol.dispose]();
  });

  it('is served again by the resumed session with the same keys and CA, behind a new gateway', async () => {
    const killed = await runCliAndKill(scenarioIn(tmp.dir), dataDir, (e) => e.type === 'WebserviceHealthy', { ...process.env, TMPDIR: home });
    expect(killed.killedAt).toBeDefined();
    session = killed.killedAt!.meta.session;
    const oldUri = String(killed.killedAt!.data.scoringUri);

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      expect(await platform.restoreWebservices()).toEqual(['keyed-svc']);
      const record = platform.world.webservices['keyed-svc']!;
      expect(record.status).toBe('Healthy');
      expect(record.scoringUri).not.toBe(oldUri);
      const events = store.readStream(STREAMS.service(record.serviceId));
      const generated = events.find((e) => e.type === 'ServiceKeysGenerated')!;
      const restored = events.at(-1) as StoredEvent;
      expect(restored.type).toBe('WebserviceRestored');
      expect(restored.meta.session).toBe(session);
      expect(restored.data).toMatchObject({ service: 'keyed-svc', replicas: 1, scoringUri: record.scoringUri, caCert: killed.killedAt!.data.caCert });

      // The same keys: alice (signed in again, in the same session) lists them; their fingerprints are those generated before the crash.
      const token = await platform.directory.signIn('alice', { mfa: false });
      const keys = await platform.webservices.getKeys(token, { service: 'keyed-svc' });
      expect(fingerprint(keys.primaryKey)).toBe(generated.data.primary);
      expect(fingerprint(keys.secondaryKey)).toBe(generated.data.secondary);
      // Scored through the new gateway, over the same CA (callWebservice trusts the data dir's CA).
      const scored = await platform.callWebservice('keyed-svc', { data: { features: [1, 0, 1] }, authorization: `Bearer ${keys.secondaryKey}` });
      expect(scored).toEqual({ httpStatus: 200, body: { score: 2.6, label: 'positive' } });
      expect((await platform.callWebservice('keyed-svc', { data: { features: [1, 0, 1] } })).httpStatus).toBe(401);
      // Nothing listens where the dead simulator's gateway was.
      await expect(fetch(oldUri.replace('https:', 'http:'), { method: 'POST' })).rejects.toThrow();
    } finally {
      await platform.close();
      store.close();
    }
  }, 240_000);
});
