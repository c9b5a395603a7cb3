import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '@amlsim/scenario';
import { openEventStore } from '@amlsim/store';
import { SCENARIO_DIR, tempDir } from './helpers';

/**
 * The data dir holds the event log, the key vaults, the blob storage (models, snapshots,
 * outputs), the registries' image layers and the platform's root key: none of it is readable
 * by another host user (docs/security.md, "Data dir"). The exceptions are the simulator's CA
 * and gateway certificates (public by nature: clients are meant to trust them; their keys are 0600).
 */
const PUBLIC = new Set(['tls', 'tls/ca.crt', 'tls/server.crt']);

const entriesOf = (root: string): Array<{ path: string; mode: number; kind: string }> => {
  const out: Array<{ path: string; mode: number; kind: string }> = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      out.push({ path: relative(root, path), mode: st.mode & 0o777, kind: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file' });
      if (st.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
};

describe('data dir file modes (docs/security.md)', () => {
  it('after training and an inference deployment, nothing under the data dir is open to group or others', async () => {
    using tmp = tempDir();
    const dataDir = join(tmp.dir, 'data');
    for (const file of ['train-managed-compute.yaml', 'webservice-aci.yaml']) {
      const path = join(SCENARIO_DIR, file);
      const store = openEventStore('sqlite', dataDir);
      try {
        const result = await runScenario(parseScenario(readFileSync(path, 'utf8'), path), { store, dataDir, driver: 'docker' });
        expect(result.failures).toEqual([]);
      } finally {
        store.close();
      }
    }
    const entries = entriesOf(dataDir);
    // What the run left that this test is about: the log, vaults, blobs, registry layers, the root key.
    for (const expected of ['events.sqlite', 'platform/root.key', 'keyvaults', 'storage', 'registries']) expect(entries.map((e) => e.path)).toContain(expected);
    expect(entries.some((e) => e.path.startsWith('registries/') && e.path.includes('/storage/docker/registry/'))).toBe(true);
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700);
    const open = entries.filter((e) => e.kind !== 'link' && e.mode & 0o077 && !PUBLIC.has(e.path));
    expect(open.map((e) => `${e.mode.toString(8)} ${e.path}`)).toEqual([]);
  }, 300_000);
});
