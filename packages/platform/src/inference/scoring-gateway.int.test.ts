import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLocalCa, type LocalCa } from './local-ca';
import { ScoringGateway, type AppInsightsRecord, type AuthorizeResult, type ScoringService } from './scoring-gateway';

// Real sockets, real HTTPS (issue 4 §2–3): fake replicas on unix sockets, the gateway on
// 127.0.0.1 with a certificate from the simulator's local CA.

const dir = mkdtempSync(join(tmpdir(), 'amlsim-gw-'));
const socketA = join(dir, 'a.sock');
const socketB = join(dir, 'b.sock');
const missingSocket = join(dir, 'gone.sock');

type Seen = { replica: string; method: string; url: string; headers: IncomingHttpHeaders };
const seen: Seen[] = [];
const replicas: Server[] = [];
const gateways: ScoringGateway[] = [];
const gatewayErrors: Error[] = [];

let ca: LocalCa;
let gateway: ScoringGateway;

/** A stand-in for packages/agent/scoring/server.mjs: GET / liveness, POST /score echoing. */
async function startReplica(name: string, socketPath: string): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push({ replica: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': String(req.headers['x-ms-request-id'] ?? '') });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/' && req.method === 'GET') return reply(200, { status: 'Healthy', replica: name });
      if (req.url !== '/score' || req.method !== 'POST') return reply(404, { error: { code: 'NotFound', message: 'no route' } });
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as { sleepMs?: number; fail?: boolean } | null;
      if (input?.fail) return reply(500, { error: { code: 'ScoringError', message: 'run() threw' } });
      setTimeout(() => reply(200, { replica: name, requestId: req.headers['x-ms-request-id'], input }), input?.sleepMs ?? 0);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  replicas.push(server);
  return server;
}

const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

async function startGateway(options: ConstructorParameters<typeof ScoringGateway>[0] = {}, tls: boolean = true): Promise<ScoringGateway> {
  const g = new ScoringGateway({ onError: (e) => gatewayErrors.push(e), ...options });
  await g.start(tls ? { tls: { cert: ca.serverChainPem, key: ca.serverKeyPem } } : {});
  gateways.push(g);
  return g;
}

/** A service whose records land in the returned list; key auth with `Bearer good` unless open. */
function service(replicaSockets: string[], options: { open?: boolean; computeType?: 'ACI' | 'AKS' } = {}): { service: ScoringService; records: AppInsightsRecord[] } {
  const records: AppInsightsRecord[] = [];
  const authorize = (header: string | undefined): AuthorizeResult => {
    if (options.open || header === 'Bearer good') return { ok: true };
    return { ok: false, status: 401, code: 'Unauthorized', message: header ? 'the key is not valid' : 'no Authorization header' };
  };
  return { service: { replicas: replicaSockets, authorize, computeType: options.computeType ?? 'AKS', onRequest: (r) => records.push(r) }, records };
}

type Reply = { status: number; headers: IncomingHttpHeaders; text: string; json: any };
type CallOptions = { method?: string; body?: unknown; rawBody?: Buffer; headers?: Record<string, string>; trust?: boolean };

/** One request through the gateway (HTTPS trusting the local CA unless `trust: false`). */
function call(g: ScoringGateway, path: string, options: CallOptions = {}): Promise<Reply> {
  const url = new URL(path, g.url);
  const payload = options.rawBody ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
  const headers: Record<string, string> = { 'user-agent': 'amlsim-test/1.0', ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...options.headers };
  const base = { host: url.hostname, port: Number(url.port), path: url.pathname, method: options.method ?? (payload ? 'POST' : 'GET'), headers, agent: false as const };
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    };
    const req = url.protocol === 'https:' ? httpsRequest({ ...base, ...(options.trust === false ? {} : { ca: ca.caCertPem }) }, onResponse) : httpRequest(base, onResponse);
    req.on('error', reject);
    req.end(payload);
  });
}

const score = (g: ScoringGateway, name: string, body: unknown, options: CallOptions = {}) =>
  call(g, `/api/v1/service/${name}/score`, { ...options, body, headers: { authorization: 'Bearer good', ...options.headers } });

beforeAll(async () => {
  ca = ensureLocalCa(join(dir, 'tls'));
  await startReplica('a', socketA);
  await startReplica('b', socketB);
  gateway = await startGateway();
});

afterAll(async () => {
  for (const g of gateways) await g.stop();
  for (const r of replicas) if (r.listening) await closeServer(r);
  rmSync(dir, { recursive: true, force: true });
  expect(gatewayErrors).toEqual([]);
});

describe('ScoringGateway over HTTPS', () => {
  it('listens on 127.0.0.1 with an https URL', () => {
    const url = new URL(gateway.url);
    expect(url.protocol).toBe('https:');
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBeGreaterThan(0);
    expect(gateway.scoringUri('svc')).toBe(`${gateway.url}/api/v1/service/svc/score`);
  });

  it('answers from the replicas in turn, through a client that trusts the local CA, and records each call', async () => {
    const { service: svc, records } = service([socketA, socketB]);
    gateway.register('rr', svc);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await score(gateway, 'rr', { x: i }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((a) => a.json.replica)).toEqual(['a', 'b', 'a', 'b']);
    expect(answers.map((a) => a.json.input)).toEqual([{ x: 0 }, { x: 1 }, { x: 2 }, { x: 3 }]);
    expect(answers[0]!.headers['content-type']).toMatch(/application\/json/);

    expect(records).toHaveLength(4);
    const record = records[0]!;
    expect(record).toEqual({
      HTTPMethod: 'POST',
      UserAgent: 'amlsim-test/1.0',
      ComputeType: 'AKS',
      RequestUrl: `${gateway.url}/api/v1/service/rr/score`,
      StatusCode: 200,
      RequestId: answers[0]!.headers['x-ms-request-id'],
      DurationMs: expect.any(Number),
      Timestamp: expect.any(String),
    });
    expect(record.DurationMs).toBeGreaterThanOrEqual(0);
    expect(new Date(record.Timestamp).toISOString()).toBe(record.Timestamp);
    // The generated id reached the replica too.
    expect(answers.map((a) => a.json.requestId)).toEqual(records.map((r) => r.RequestId));
  });

  it('has made the record by the time the client in this process sees the answer, accepted or refused', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('seen', svc);
    const url = new URL('/api/v1/service/seen/score', gateway.url);
    const seenAtResponse = await Promise.all(
      ['Bearer good', 'Bearer bad'].map(
        (authorization) =>
          new Promise<string[]>((resolve, reject) => {
            const req = httpsRequest(
              { host: url.hostname, port: Number(url.port), path: url.pathname, method: 'POST', ca: ca.caCertPem, agent: false, headers: { authorization, 'content-type': 'application/json' } },
              (res) => {
                // The first moment this process can know the answer: the record is already there.
                resolve(records.filter((r) => r.RequestId === res.headers['x-ms-request-id']).map((r) => String(r.StatusCode)));
                res.resume();
              },
            );
            req.on('error', reject);
            req.end('{"x":1}');
          }),
      ),
    );
    expect(seenAtResponse).toEqual([['200'], ['401']]);
  });

  it('passes liveness through to GET / on a replica', async () => {
    const { service: svc, records } = service([socketA], { computeType: 'ACI' });
    gateway.register('live', svc);
    const answer = await call(gateway, '/api/v1/service/live', { headers: { authorization: 'Bearer good' } });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ status: 'Healthy', replica: 'a' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ HTTPMethod: 'GET', StatusCode: 200, ComputeType: 'ACI', RequestUrl: `${gateway.url}/api/v1/service/live` });
  });

  it('fails the TLS handshake for a client that does not trust the CA', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('untrusted', svc);
    await expect(score(gateway, 'untrusted', { x: 1 }, { trust: false })).rejects.toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    // No HTTP request got through, so there is nothing to record.
    expect(records).toEqual([]);
  });

  it('refuses a missing or wrong credential with 401, records it, and never forwards it', async () => {
    const { service: svc, records } = service([socketA, socketB]);
    gateway.register('keyed', svc);
    const before = seen.length;
    const missing = await call(gateway, '/api/v1/service/keyed/score', { body: { x: 1 } });
    const wrong = await call(gateway, '/api/v1/service/keyed/score', { body: { x: 1 }, headers: { authorization: 'Bearer bad' } });
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({ error: { code: 'Unauthorized', message: 'no Authorization header' } });
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.message).toBe('the key is not valid');
    expect(seen.length).toBe(before);
    expect(records.map((r) => r.StatusCode)).toEqual([401, 401]);
    expect(records[1]!.RequestId).toBe(wrong.headers['x-ms-request-id']);

    const ok = await score(gateway, 'keyed', { x: 2 });
    expect(ok.status).toBe(200);
    // The replica does not see the credential.
    expect(seen.at(-1)!.headers.authorization).toBeUndefined();
    expect(records.map((r) => r.StatusCode)).toEqual([401, 401, 200]);
  });

  it('answers 404 for an unknown service or path, and 404 again after unregister', async () => {
    const unknown = await score(gateway, 'nope', { x: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('ServiceNotFound');
    const other = await call(gateway, '/score', { body: { x: 1 } });
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('NotFound');

    const { service: svc, records } = service([socketA]);
    gateway.register('short-lived', svc);
    expect((await score(gateway, 'short-lived', { x: 1 })).status).toBe(200);
    gateway.unregister('short-lived');
    expect((await score(gateway, 'short-lived', { x: 1 })).status).toBe(404);
    expect(records).toHaveLength(1);
  });

  it('keeps an incoming x-ms-request-id, passes it to the replica and records it; replaces an invalid one', async () => {
    const { service: svc, records } = service([socketB]);
    gateway.register('ids', svc);
    const answer = await score(gateway, 'ids', { x: 1 }, { headers: { 'x-ms-request-id': 'client-req-42' } });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-ms-request-id']).toBe('client-req-42');
    expect(answer.json.requestId).toBe('client-req-42');
    expect(seen.at(-1)!.headers['x-ms-request-id']).toBe('client-req-42');
    expect(records[0]!.RequestId).toBe('client-req-42');

    const bad = await score(gateway, 'ids', { x: 1 }, { headers: { 'x-ms-request-id': 'has spaces and <tags>' } });
    expect(bad.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(bad.json.requestId).toBe(bad.headers['x-ms-request-id']);
    expect(records[1]!.RequestId).toBe(bad.headers['x-ms-request-id']);
  });

  it('answers from the other replica when one is down, and 502 only when both are', async () => {
    const { service: svc, records } = service([missingSocket, socketB]);
    gateway.register('half', svc);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await score(gateway, 'half', { x: i }));
    expect(answers.map((a) => [a.status, a.json.replica])).toEqual([
      [200, 'b'],
      [200, 'b'],
      [200, 'b'],
      [200, 'b'],
    ]);
    expect(records.map((r) => r.StatusCode)).toEqual([200, 200, 200, 200]);

    const down = service([missingSocket, join(dir, 'also-gone.sock')]);
    gateway.register('down', down.service);
    const failed = await score(gateway, 'down', { x: 1 });
    expect(failed.status).toBe(502);
    expect(failed.json.error.code).toBe('BadGateway');
    // Socket paths are internal: not in the answer.
    expect(failed.text).not.toContain(dir);
    expect(down.records.map((r) => r.StatusCode)).toEqual([502]);
  });

  it('survives a replica that stops: its pooled connections are dropped and the other answers', async () => {
    const socketC = join(dir, 'c.sock');
    const c = await startReplica('c', socketC);
    const { service: svc, records } = service([socketC, socketA]);
    gateway.register('restart', svc);
    expect((await score(gateway, 'restart', { x: 1 })).json.replica).toBe('c');
    expect((await score(gateway, 'restart', { x: 2 })).json.replica).toBe('a');
    await closeServer(c);
    const after = [await score(gateway, 'restart', { x: 3 }), await score(gateway, 'restart', { x: 4 })];
    expect(after.map((a) => [a.status, a.json.replica])).toEqual([
      [200, 'a'],
      [200, 'a'],
    ]);
    expect(records).toHaveLength(4);
  });

  it('skips a replica whose socket file is left but nobody listens (ECONNREFUSED)', async () => {
    const stale = join(dir, 'stale.sock');
    // A replica process killed outright leaves its socket file behind.
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(existsSync(stale)).toBe(true);
    const { service: svc, records } = service([stale, socketA]);
    gateway.register('stale', svc);
    const answers = [await score(gateway, 'stale', { x: 1 }), await score(gateway, 'stale', { x: 2 })];
    expect(answers.map((a) => [a.status, a.json.replica])).toEqual([
      [200, 'a'],
      [200, 'a'],
    ]);
    expect(records).toHaveLength(2);
  });

  it('records a request whose client went away before the answer (499), once', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('gone', svc);
    const url = new URL('/api/v1/service/gone/score', gateway.url);
    const payload = JSON.stringify({ sleepMs: 300 });
    await new Promise<void>((resolve) => {
      const req = httpsRequest(
        { host: url.hostname, port: Number(url.port), path: url.pathname, method: 'POST', ca: ca.caCertPem, agent: false, headers: { authorization: 'Bearer good', 'content-type': 'application/json', 'x-ms-request-id': 'gone-1' } },
        () => {},
      );
      req.on('error', () => resolve());
      req.end(payload);
      setTimeout(() => req.destroy(), 50);
    });
    const deadline = Date.now() + 2_000;
    while (records.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 400));
    expect(records.map((r) => [r.RequestId, r.StatusCode])).toEqual([['gone-1', 499]]);
  });

  it('passes a replica error status and body back', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('errs', svc);
    const answer = await score(gateway, 'errs', { fail: true });
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({ error: { code: 'ScoringError', message: 'run() threw' } });
    expect(records[0]!.StatusCode).toBe(500);
  });

  it('answers 405 to a wrong method and records it', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('methods', svc);
    const answer = await call(gateway, '/api/v1/service/methods/score', { headers: { authorization: 'Bearer good' } });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('POST');
    expect(records.map((r) => [r.HTTPMethod, r.StatusCode])).toEqual([['GET', 405]]);
  });

  it('records exactly one request per call over 20 concurrent calls, accepted or refused', async () => {
    const { service: svc, records } = service([socketA, socketB]);
    gateway.register('busy', svc);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        score(gateway, 'busy', { i, sleepMs: 20 }, { headers: { authorization: i % 4 === 0 ? 'Bearer bad' : 'Bearer good', 'x-ms-request-id': `busy-${i}` } }),
      ),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(15);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(5);
    expect(records).toHaveLength(20);
    const ids = records.map((r) => r.RequestId).sort();
    expect(new Set(ids).size).toBe(20);
    expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => `busy-${i}`).sort());
    for (const [i, a] of answers.entries()) {
      expect(records.find((r) => r.RequestId === `busy-${i}`)!.StatusCode).toBe(a.status);
    }
    const served = answers.filter((a) => a.status === 200).map((a) => a.json.replica);
    expect(new Set(served)).toEqual(new Set(['a', 'b']));
  });

  it('logs neither bodies nor credentials, and records neither', async () => {
    const { service: svc, records } = service([socketA]);
    gateway.register('quiet', svc);
    const written: string[] = [];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (written.push(String(chunk)), out(chunk as string, ...(rest as [])))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (written.push(String(chunk)), err(chunk as string, ...(rest as [])))) as typeof process.stderr.write;
    try {
      await score(gateway, 'quiet', { secret: 'BODY-SECRET-1' });
      await call(gateway, '/api/v1/service/quiet/score?q=QUERY-SECRET', { body: { x: 1 }, headers: { authorization: 'Bearer KEY-SECRET-2' } });
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
    const text = written.join('') + JSON.stringify(records);
    for (const secret of ['BODY-SECRET-1', 'KEY-SECRET-2', 'QUERY-SECRET']) expect(text).not.toContain(secret);
    expect(records.map((r) => r.StatusCode)).toEqual([200, 401]);
    expect(records[1]!.RequestUrl).toBe(`${gateway.url}/api/v1/service/quiet/score`);
  });

  it('is not reachable on any other address than 127.0.0.1', async () => {
    const port = Number(new URL(gateway.url).port);
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal)
      .map((a) => a!.address);
    for (const host of ['::1', ...others]) {
      const result = await new Promise<string>((resolve) => {
        const socket = connect({ host, port, timeout: 2_000 });
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('timeout', () => {
          socket.destroy();
          resolve('timeout');
        });
        socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(result, `connecting to ${host}:${port}`).not.toBe('connected');
    }
  });
});

describe('ScoringGateway limits and modes', () => {
  it('answers 504 when the replica takes longer than the scoring timeout', async () => {
    const g = await startGateway({ scoringTimeoutMs: 200 });
    const { service: svc, records } = service([socketA]);
    g.register('slow', svc);
    const answer = await score(g, 'slow', { sleepMs: 1_000 });
    expect(answer.status).toBe(504);
    expect(answer.json.error.code).toBe('GatewayTimeout');
    expect(records.map((r) => r.StatusCode)).toEqual([504]);
    expect(records[0]!.DurationMs).toBeGreaterThanOrEqual(150);
    // The next request goes through (the timed-out connection was not reused).
    expect((await score(g, 'slow', { x: 1 })).status).toBe(200);
  });

  it('answers 413 to a body over the limit and records it', async () => {
    const g = await startGateway({ maxBodyBytes: 1024 });
    const { service: svc, records } = service([socketA]);
    g.register('small', svc);
    const before = seen.length;
    const answer = await score(g, 'small', { pad: 'x'.repeat(2_000) });
    expect(answer.status).toBe(413);
    expect(answer.json.error.code).toBe('PayloadTooLarge');
    expect(seen.length).toBe(before);
    expect((await score(g, 'small', { pad: 'x'.repeat(500) })).status).toBe(200);
    expect(records.map((r) => r.StatusCode)).toEqual([413, 200]);
  });

  it('streams a body sent in pieces, with or without a length, whole to the replica; over the limit midway is 413', async () => {
    const g = await startGateway({ maxBodyBytes: 3 * 1024 * 1024 });
    const { service: svc, records } = service([socketA]);
    g.register('stream', svc);
    const url = new URL('/api/v1/service/stream/score', g.url);
    /** Sends `{"pad":"xxx…"}` of about `bytes` in 64 KiB pieces, a tick apart. */
    const sendInPieces = (bytes: number, declareLength: boolean) =>
      new Promise<Reply>((resolve, reject) => {
        const payload = Buffer.from(JSON.stringify({ pad: 'x'.repeat(bytes) }));
        const headers: Record<string, string> = { authorization: 'Bearer good', 'content-type': 'application/json', ...(declareLength ? { 'content-length': String(payload.length) } : {}) };
        const req = httpsRequest({ host: url.hostname, port: Number(url.port), path: url.pathname, method: 'POST', ca: ca.caCertPem, agent: false, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) });
          });
        });
        req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
        let offset = 0;
        const next = () => {
          if (offset >= payload.length || req.destroyed) return void req.end();
          req.write(payload.subarray(offset, (offset += 64 * 1024)));
          setImmediate(next);
        };
        next();
      });
    for (const declareLength of [true, false]) {
      const answer = await sendInPieces(2 * 1024 * 1024, declareLength);
      expect(answer.status).toBe(200);
      expect(answer.json.input.pad).toHaveLength(2 * 1024 * 1024);
    }
    const tooLarge = await sendInPieces(4 * 1024 * 1024, false);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error.code).toBe('PayloadTooLarge');
    expect(records.map((r) => r.StatusCode)).toEqual([200, 200, 413]);
  });

  it('forwards a request to the replica before its body has finished arriving', async () => {
    const { service: svc } = service([socketA]);
    gateway.register('early', svc);
    const url = new URL('/api/v1/service/early/score', gateway.url);
    const before = seen.length;
    let answer: Promise<number> | undefined;
    const req = httpsRequest({ host: url.hostname, port: Number(url.port), path: url.pathname, method: 'POST', ca: ca.caCertPem, agent: false, headers: { authorization: 'Bearer good', 'content-type': 'application/json' } }, (res) => {
      res.resume();
      answer = new Promise((resolve) => res.on('end', () => resolve(res.statusCode ?? 0)));
    });
    req.write('{"first":"half",');
    const deadline = Date.now() + 5_000;
    while (seen.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(seen.length).toBe(before + 1); // the replica has the request while the client is still sending
    req.end('"second":"half"}');
    while (!answer) await new Promise((r) => setTimeout(r, 10));
    expect(await answer).toBe(200);
  });

  it('serves plain HTTP when started without tls', async () => {
    const g = await startGateway({}, false);
    expect(g.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { service: svc, records } = service([socketA, socketB], { open: true, computeType: 'ACI' });
    g.register('plain', svc);
    const answers = [await call(g, '/api/v1/service/plain/score', { body: { x: 1 } }), await call(g, '/api/v1/service/plain/score', { body: { x: 2 } })];
    expect(answers.map((a) => [a.status, a.json.replica])).toEqual([
      [200, 'a'],
      [200, 'b'],
    ]);
    expect(records.map((r) => [r.ComputeType, r.StatusCode, r.RequestUrl])).toEqual([
      ['ACI', 200, `${g.url}/api/v1/service/plain/score`],
      ['ACI', 200, `${g.url}/api/v1/service/plain/score`],
    ]);
  });

  it('stops listening on stop()', async () => {
    const g = await startGateway({}, false);
    const url = g.url;
    await g.stop();
    expect(g.listening).toBe(false);
    expect(() => g.url).toThrow(/not started/);
    await expect(
      new Promise((resolve, reject) => {
        const req = httpRequest(`${url}/api/v1/service/x/score`, { method: 'POST', agent: false }, resolve);
        req.on('error', reject);
        req.end('{}');
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a name that cannot be a path segment', () => {
    const g = new ScoringGateway();
    expect(() => g.register('a/b', service([socketA]).service)).toThrow(/name/);
    expect(() => g.register('ok-name', { ...service([socketA]).service, computeType: 'VM' as 'ACI' })).toThrow(/computeType/);
  });
});
