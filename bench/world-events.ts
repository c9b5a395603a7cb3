import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '../packages/core/src/index';
import { parseScenario, runScenario } from '../packages/scenario/src/index';
import { createMemoryEventStore } from '../packages/store/src/index';
import type { BenchEvent } from './store-bench';

/**
 * A realistic replay workload: the events the repository's own scenarios produce (sign-ins,
 * tokens, role assignments, workspace provisioning, rejections, key rotations), tiled to any
 * length with each copy's workspace ids made distinct, so the projections do their real work.
 */
export const scenarioEventTemplate = async (): Promise<StoredEvent[]> => {
  const dir = join(import.meta.dirname, '..', 'scenarios');
  const dataDir = mkdtempSync(join(tmpdir(), 'amlsim-bench-world-'));
  const store = createMemoryEventStore();
  try {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
      const path = join(dir, file);
      await runScenario(parseScenario(readFileSync(path, 'utf8'), path), { store, dataDir });
    }
    return [...store.readAll()];
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
};

export const tiledWorldEvents = (template: readonly StoredEvent[]) => {
  const texts = template.map((e) => ({ stream: e.stream, type: e.type, data: JSON.stringify(e.data), meta: e.meta }));
  return (i: number): BenchEvent => {
    const copy = Math.floor(i / texts.length);
    const t = texts[i % texts.length]!;
    const suffix = `_${copy}`;
    return {
      stream: `${t.stream}${suffix}`,
      type: t.type,
      data: JSON.parse(t.data.replace(/"(ws_[a-z0-9]+)"/g, `"$1${suffix}"`)),
      meta: { ...t.meta, session: 'bench' },
    };
  };
};
