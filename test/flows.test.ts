import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLOWS, FLOW_DOCS_DIR, renderFlow } from '../scripts/gen-flow-docs';

/** Images and web services need containers: their flow is checked where a Docker engine answers. */
const dockerAnswers = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 10_000 }).status === 0;
const hint = (file: string) => `docs/flows/${file} is out of date with its scenario or the event catalog; run \`pnpm tsx scripts/gen-flow-docs.ts\``;

describe('docs/flows/', () => {
  it('holds exactly the flows scripts/gen-flow-docs.ts renders', () => {
    expect(readdirSync(FLOW_DOCS_DIR).sort()).toEqual(FLOWS.map((f) => f.file).sort());
  });

  it.each(FLOWS.filter((f) => f.driver === 'process').map((f) => [f.file, f] as const))('%s is what the generator renders', async (file, flow) => {
    expect(existsSync(join(FLOW_DOCS_DIR, file)), hint(file)).toBe(true);
    expect(readFileSync(join(FLOW_DOCS_DIR, file), 'utf8'), hint(file)).toBe(await renderFlow(flow));
  });

  it.skipIf(!dockerAnswers).each(FLOWS.filter((f) => f.driver === 'docker').map((f) => [f.file, f] as const))(
    '%s is what the generator renders (docker driver)',
    async (file, flow) => {
      expect(readFileSync(join(FLOW_DOCS_DIR, file), 'utf8'), hint(file)).toBe(await renderFlow(flow));
    },
    180_000,
  );

  it.each(FLOWS.map((f) => [f.file, f] as const))('%s has one mermaid sequence diagram, cites its scenario\'s ids, and names no token id', (file, flow) => {
    const text = readFileSync(join(FLOW_DOCS_DIR, file), 'utf8');
    expect(text.match(/^```mermaid\nsequenceDiagram\n/gm)).toHaveLength(1);
    const cites = /^cites:\s*\[([^\]]*)\]/m.exec(readFileSync(join(import.meta.dirname, '..', 'scenarios', flow.scenario), 'utf8'))![1]!.split(',').map((s) => s.trim());
    for (const id of cites) expect(text).toContain(id);
    expect(text).not.toMatch(/\b(r?tok|ws|cmp|ch)_[a-z0-9]{12}\b|sha256:[0-9a-f]{16}/);
  });
});
