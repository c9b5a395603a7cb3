import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '@amlsim/scenario';
import { STORAGE_CONNECTION_SECRET } from '@amlsim/platform';
import { allFiles, SCENARIO_DIR, tempDir, testPlatform } from './helpers';
import { openEventStore } from '@amlsim/store';

/** Needles to look for in raw bytes: the value as text, and base64 of it (a lazy "encryption"). */
const needles = (value: string): Buffer[] => [Buffer.from(value), Buffer.from(Buffer.from(value).toString('base64'))];

describe('encryption at rest (S4.1, S6.1)', () => {
  it('no blob, secret, key or token is plaintext anywhere under the data dir', async () => {
    using tmp = tempDir();
    const store = openEventStore('sqlite', tmp.dir);
    const { platform } = await testPlatform(tmp.dir, { store });
    const token = await platform.directory.signIn('alice', { mfa: false });
    for (const [name, customerManagedKey] of [['ws-pmk', false], ['ws-cmk', true]] as const) {
      const ws = await platform.arm.createWorkspace(token, { name, resourceGroup: 'rg1', region: 'eastus', customerManagedKey });
      await platform.arm.attachDatastore(token, { workspace: name, name: 'ds1', container: 'data1' });
      await platform.arm.regenerateStorageKey(token, { workspace: name, key: 'key1' });
      // A blob with recognisable content, written with the current key.
      const key = platform.context.storage.listKeys(ws.storageAccount!).key1;
      platform.context.storage.putBlob({ kind: 'accountKey', key }, ws.storageAccount!, ws.blobContainer!, 'train.py', Buffer.from('PLAINTEXT-TRAINING-SCRIPT-do-not-leak'));
      expect(platform.context.storage.encryptionOf(ws.storageAccount!)).toBe(customerManagedKey ? 'customer-managed' : 'platform-managed');
    }
    store.close();
    const secrets = platform.context.secrets.all();
    // tokens, key1/key2 (old and new), connection strings, datastore connection strings
    expect(new Set(secrets.map((s) => s.kind))).toEqual(new Set(['ARM token', 'storage account key', 'storage connection string', 'datastore connection string']));
    const files = allFiles(tmp.dir);
    expect(files.some((f) => f.path.endsWith('events.sqlite'))).toBe(true);
    for (const file of files) {
      for (const { value, kind } of [...secrets, { value: 'PLAINTEXT-TRAINING-SCRIPT-do-not-leak', kind: 'blob' }]) {
        for (const needle of needles(value)) expect(file.bytes.includes(needle), `${kind} found in ${file.path}`).toBe(false);
      }
      expect(file.bytes.includes(Buffer.from('AccountKey=')), `connection string in ${file.path}`).toBe(false);
    }
  });

  it('only a principal with a grant reads the key vault; the connection string is there', async () => {
    using tmp = tempDir();
    const { platform } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    const alice = platform.world.directory.byName.alice!;
    // alice is Owner of the subscription, yet holds no vault access policy (S6.3: the workspace identity does).
    expect(() => platform.context.vaults.getSecret({ principalId: alice.principalId, name: 'alice' }, ws.keyVault!, STORAGE_CONNECTION_SECRET)).toThrow(/refused principal 'alice'/);
    const identity = { principalId: ws.identity!.principalId, name: 'ws1' };
    expect(platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET)).toMatch(/^DefaultEndpointsProtocol=https;AccountName=/);
  });

  it('the scenarios leave nothing plaintext either', async () => {
    using tmp = tempDir();
    const store = openEventStore('sqlite', tmp.dir);
    const file = join(SCENARIO_DIR, 'storage-key-regeneration.yaml');
    const result = await runScenario(parseScenario(readFileSync(file, 'utf8'), file), { store, dataDir: tmp.dir });
    store.close();
    expect(result.passed).toBe(true);
    const secrets = result.platform.context.secrets.all();
    expect(secrets.length).toBeGreaterThan(4);
    for (const f of allFiles(tmp.dir)) for (const s of secrets) expect(f.bytes.includes(Buffer.from(s.value)), `${s.kind} in ${f.path}`).toBe(false);
  });
});

describe('registered models at rest (S8.5, S4.1)', () => {
  it('a model file is kept encrypted, read back intact, and versions add up', async () => {
    using tmp = tempDir();
    const { platform } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const ws = await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
    const modelFile = join(tmp.dir, 'model.bin');
    const content = 'PLAINTEXT-MODEL-WEIGHTS-do-not-leak';
    writeFileSync(modelFile, content);
    const v1 = await platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: modelFile });
    const v2 = await platform.models.registerModel(token, { workspace: 'ws1', name: 'm', path: modelFile, tags: { stage: 'prod' } });
    expect([v1.modelId, v2.modelId]).toEqual(['m:1', 'm:2']);
    expect(platform.models.files(ws, v2)).toEqual([{ path: 'model.bin', content: Buffer.from(content) }]);
    for (const f of allFiles(tmp.dir).filter((x) => x.path !== modelFile)) expect(f.bytes.includes(Buffer.from(content)), f.path).toBe(false);
  });
});
