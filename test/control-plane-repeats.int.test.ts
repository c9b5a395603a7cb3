import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { alicePlatform, tempDir } from './helpers';

/**
 * A call sent again (its answer was lost: docs/control-plane.md "When the platform restarts")
 * records its fact once, however often it comes, and is answered as the first one was. The
 * script sends each of its calls twice with the run's own token, as a management code that
 * retries would.
 */
const REPEATER = `
const http = require('node:http');
const socketPath = process.env.AZUREML_SERVICE_ENDPOINT.replace('unix://', '');
const base = '/workspaces/ws1/runs/' + process.env.AZUREML_RUN_ID;
const call = (method, route, body) => new Promise((resolve, reject) => {
  const req = http.request({ socketPath, path: base + route, method, headers: { authorization: 'Bearer ' + process.env.AZUREML_RUN_TOKEN, 'content-type': 'application/json' } }, (res) => {
    let text = '';
    res.on('data', (c) => (text += c));
    res.on('end', () => resolve(res.statusCode + ' ' + text));
  });
  req.on('error', reject);
  req.end(JSON.stringify(body));
});
(async () => {
  const rows = [{ kind: 'scalar', name: 'loss', value: 0.5, step: 0, at: new Date().toISOString() }];
  const calls = [
    ['POST', '/metrics', { batch: 7, rows }],
    ['POST', '/status', { status: 'Running', detail: 'epoch 1' }],
    ['PUT', '/outputs', { path: 'model.txt', content: Buffer.from('weights').toString('base64') }],
  ];
  for (const [method, route, body] of calls) {
    const first = await call(method, route, body);
    const again = await call(method, route, body);
    console.log(route + ': ' + first + ' | ' + again);
    if (first !== again) process.exit(3);
  }
})();
`;

const events = (store: EventStore, type: string): StoredEvent[] => [...store.readAll()].filter((e) => e.type === type);

it('a control-plane call sent twice records its fact once and gets the same answer both times', async () => {
  using tmp = tempDir();
  const code = join(tmp.dir, 'code');
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'train.js'), REPEATER);
  const { platform, store, token } = await alicePlatform(join(tmp.dir, 'data'), 'process');
  try {
    await platform.ml.createCompute(token, { workspace: 'ws1', name: 'cpu', type: 'AmlCompute', maxNodes: 1 });
    const { runId } = await platform.ml.submitRun(token, { workspace: 'ws1', experiment: 'exp', compute: 'cpu', source: code, script: 'train.js' });
    expect(await platform.ml.waitForRun(token, { runId, timeoutMs: 60_000 })).toMatchObject({ status: 'Completed' });
    const ofRun = (type: string) => events(store, type).filter((e) => e.data.runId === runId);
    expect(ofRun('MetricsWrittenBack').filter((e) => e.data.batch === 7)).toHaveLength(1);
    expect(ofRun('RunStatusReported').filter((e) => e.data.step === 'epoch 1')).toHaveLength(1);
    expect(ofRun('OutputUploaded').filter((e) => e.data.path === 'model.txt')).toHaveLength(1);
    // The management code's own end and logs still count once each.
    expect(ofRun('RunScriptEnded')).toHaveLength(1);
    expect(ofRun('RunLogsUploaded')).toHaveLength(1);
  } finally {
    expect((await platform.close()).leftovers).toEqual([]);
  }
}, 120_000);
