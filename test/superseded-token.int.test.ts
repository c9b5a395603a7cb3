import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { alicePlatform, callControlPlane, tempDir } from './helpers';

/**
 * A run's token is replaced when a resumed session drives the run on (RunResumed, then a second
 * RunTokenIssued: docs/control-plane.md "When the platform restarts"). From then on only the new
 * token acts: the one it replaced — genuine, alive, scoped to the run and bound to its channel —
 * is refused as a revoked one is (InvalidAuthenticationToken), and the refusal is the run's fact.
 */

const events = (store: EventStore, type: string): StoredEvent[] => [...store.readAll()].filter((e) => e.type === type);

const waitFor = async <T>(what: string, get: () => T | undefined): Promise<T> => {
  for (let i = 0; i < 800; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
};

it('a run token a later RunTokenIssued replaced no longer verifies: InvalidAuthenticationToken, recorded as RunCallRefused', async () => {
  using tmp = tempDir();
  const code = join(tmp.dir, 'code');
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'train.js'), 'setTimeout(() => {}, 60_000);\n');
  const { platform, store, token } = await alicePlatform(join(tmp.dir, 'data'), 'process');
  try {
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
    const submit = () => platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: code, script: 'train.js' });
    await submit();
    // The second run waits in the queue for the only node: its target has not started, its token is issued.
    const { runId } = await submit();
    await waitFor('the second run queued', () => events(store, 'RunQueued').find((e) => e.data.runId === runId));
    const old = platform.runs.tokenOf(runId).token!;
    expect(old).toBeDefined();
    const issued = events(store, 'RunTokenIssued').find((e) => e.data.runId === runId)!;
    const socket = String(events(store, 'RunChannelOpened').find((e) => e.data.runId === runId)!.data.socket);
    const path = `/workspaces/ws1/runs/${runId}/metrics`;
    // While it is the run's token, it acts.
    expect((await callControlPlane(socket, path, old)).status).toBe(200);

    // The token is replaced, as driveOn replaces it.
    const { workspaceId } = platform.runs.load(runId).snapshot.context;
    await platform.runs.record(runId, [
      {
        type: 'RunTokenIssued',
        data: { runId, workspaceId, workspace: 'ws1', tokenId: 'rtok_replacement', fingerprint: 'sha256:replacement', expiresAt: String(issued.data.expiresAt), channel: String(issued.data.channel) },
      },
    ]);
    expect(platform.runs.load(runId).snapshot.context.tokenId).toBe('rtok_replacement');

    // The refusal goes to the run as every refusal does (a Queued run's machine notes none of them:
    // packages/core/src/run/run.machine.ts takes RunCallRefused once its target is up).
    const record = vi.spyOn(platform.runs, 'record');
    const refused = await callControlPlane(socket, path, old);
    expect(refused.status).toBe(401);
    expect(refused.body.error?.code).toBe('InvalidAuthenticationToken');
    expect(refused.body.error?.message).toContain('replaced');
    const recorded = record.mock.calls.flatMap(([id, facts]) => facts.map((f) => ({ id, ...f }))).filter((f) => f.type === 'RunCallRefused');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ id: runId, data: { runId, code: 'InvalidAuthenticationToken', tokenRun: runId, call: 'POST metrics' } });
    expect(String((recorded[0]!.data as { reason: string }).reason)).toContain(String(issued.data.tokenId));
    record.mockRestore();
  } finally {
    expect((await platform.close()).leftovers).toEqual([]);
  }
}, 120_000);
