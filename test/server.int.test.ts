import { spawn } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, NewEvent, StoredEvent } from '@amlsim/core';
import { openSqliteEventStore } from '@amlsim/store';
import { startServer, type RunningServer } from '@amlsim/server';
import { REPO, SCENARIO_DIR, tempDir } from './helpers';

/**
 * `amlsim serve`'s server (packages/server, docs/server.md) over real HTTP on 127.0.0.1, on a
 * real SQLite log: the event stream's order and ids, a reconnect with Last-Event-ID while the
 * log grows, another process's appends, bad input, the loopback-only rule, and the CLI.
 */

const meta = { at: '2026-01-01T00:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's_test' };
const ev = (type: string, data: Record<string, unknown> = {}): NewEvent => ({ type, data, meta });
const appendN = (store: EventStore, n: number, pad = 0) =>
  store.appendMany([{ stream: 'tenant-t', expectedVersion: 'any', events: Array.from({ length: n }, (_, i) => ev('ClockAdvanced', { byMs: i, to: 'x'.repeat(pad) })) }]);

type SseMessage = { id: number; event: string; data: StoredEvent };

/** A Server-Sent Events client over node:http that keeps every message it gets. */
function openStream(url: string, headers: Record<string, string> = {}) {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const waiters: Array<() => void> = [];
  let response: IncomingMessage | undefined;
  let ended = false;
  const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      response = res;
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else {
              const at = line.indexOf(': ');
              if (at > 0) fields[line.slice(0, at)] = line.slice(at + 2);
            }
          }
          if (fields.data !== undefined) messages.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data) as StoredEvent });
        }
        for (const w of waiters.splice(0)) w();
      });
      const end = () => {
        ended = true;
        for (const w of waiters.splice(0)) w();
      };
      res.on('end', end);
      res.on('close', end);
      resolve(res);
    });
    req.on('error', reject);
  });
  req.end();
  const until = async (done: () => boolean, what: string, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${messages.length} messages (last id ${messages.at(-1)?.id})`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  };
  return {
    messages,
    comments,
    ready,
    ended: () => ended,
    waitFor: (n: number) => until(() => messages.length >= n, `${n} messages`),
    waitForEnd: () => until(() => ended, 'the stream to end'),
    pause: () => response?.pause(),
    resume: () => response?.resume(),
    close: () => req.destroy(),
  };
}

const idsOf = (messages: SseMessage[]) => messages.map((m) => m.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('amlsim serve: the server', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const serve = async (options: { pollIntervalMs?: number; maxQueuedEvents?: number; heartbeatMs?: number; webRoot?: string } = {}) => {
    const tmp = tempDir('amlsim-server-');
    const store = openSqliteEventStore({ file: join(tmp.dir, 'events.sqlite') });
    const server = await startServer({ store, dataDir: tmp.dir, port: 0, scenariosDir: SCENARIO_DIR, ...options });
    cleanups.push(() => tmp[Symbol.dispose](), () => store.close(), () => server.close());
    return { store, server, dir: tmp.dir };
  };

  it('serves the dashboard at / from its web root, looking files up when asked (a rebuilt page is served as it is now), under a CSP that allows nothing from elsewhere', async () => {
    using web = tempDir('amlsim-web-');
    writeFileSync(join(web.dir, 'index.html'), '<!doctype html><div id="app"></div><script type="module" src="/assets/a.js"></script>');
    const { server } = await serve({ webRoot: web.dir });
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<div id="app">');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-cache');
    // Written after the server started, as a rebuild does: found all the same, cached for good.
    mkdirSync(join(web.dir, 'assets'));
    writeFileSync(join(web.dir, 'assets', 'b-123.js'), 'export {};');
    const asset = await fetch(`${server.url}/assets/b-123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    // The API is not shadowed by the page's files, and an unknown path is the API's 404.
    expect((await fetch(`${server.url}/api/info`)).status).toBe(200);
    const missing = await fetch(`${server.url}/assets/none.js`);
    expect(missing.status).toBe(404);
  });

  it('without a built dashboard, / says how to build it and the API still answers', async () => {
    const { server } = await serve({ webRoot: join(REPO, 'no-such-dir') });
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('bash scripts/setup.sh');
    expect((await fetch(`${server.url}/api/info`)).status).toBe(200);
  });

  it('streams the log in order, each event with its log position as id, then the live ones', async () => {
    const { store, server } = await serve({ heartbeatMs: 50 });
    appendN(store, 5);
    const stream = openStream(`${server.url}/api/events/stream`);
    cleanups.push(() => stream.close());
    const res = await stream.ready;
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    await stream.waitFor(5);
    appendN(store, 3);
    await stream.waitFor(8);
    expect(idsOf(stream.messages)).toEqual(range(1, 8));
    expect(stream.messages.every((m) => m.event === 'fact' && m.data.position === m.id && m.data.type === 'ClockAdvanced')).toBe(true);
    expect(stream.messages.map((m) => m.data.data.byMs)).toEqual([0, 1, 2, 3, 4, 0, 1, 2]);
    await new Promise((r) => setTimeout(r, 150));
    expect(stream.comments.length, 'heartbeats are SSE comments').toBeGreaterThan(0);
  });

  it('a client that reconnects with Last-Event-ID gets exactly the rest, also what is appended while its backlog is read', async () => {
    const { store, server } = await serve();
    appendN(store, 20);
    const first = openStream(`${server.url}/api/events/stream`);
    await first.waitFor(20);
    const seen = first.messages.slice(0, 10);
    first.close();
    appendN(store, 20);

    // A backlog of a few MB: the server has to wait for the socket while the client is paused,
    // and the test appends meanwhile.
    appendN(store, 3_000, 1_000);
    const again = openStream(`${server.url}/api/events/stream`, { 'last-event-id': String(seen.at(-1)!.id) });
    cleanups.push(() => again.close());
    await again.ready;
    again.pause();
    for (let i = 0; i < 10; i++) {
      appendN(store, 7);
      await new Promise((r) => setTimeout(r, 10));
    }
    again.resume();
    for (let i = 0; i < 5; i++) {
      appendN(store, 3);
      await new Promise((r) => setImmediate(r));
    }
    const head = store.headPosition();
    await again.waitFor(head - 10);
    await new Promise((r) => setTimeout(r, 200)); // nothing more may come: a duplicate would
    expect(idsOf(again.messages)).toEqual(range(11, head));
    expect(again.messages.every((m) => m.data.position === m.id)).toBe(true);
  });

  it('sends an event once when both the backlog and the live tail hold it', async () => {
    // Appended through a second handle on the file, as another process would: the server's tail
    // learns of them only at its next poll, after the new client's backlog has sent them.
    const { store, server, dir } = await serve({ pollIntervalMs: 400 });
    const other = openSqliteEventStore({ file: join(dir, 'events.sqlite') });
    cleanups.push(() => other.close());
    appendN(store, 3);
    const early = openStream(`${server.url}/api/events/stream`);
    cleanups.push(() => early.close());
    await early.waitFor(3);
    appendN(other, 4);
    const late = openStream(`${server.url}/api/events/stream`, { 'last-event-id': '2' });
    cleanups.push(() => late.close());
    await late.waitFor(5);
    await early.waitFor(7);
    await new Promise((r) => setTimeout(r, 600));
    appendN(store, 1);
    await late.waitFor(6);
    await early.waitFor(8);
    expect(idsOf(late.messages)).toEqual(range(3, 8));
    expect(idsOf(early.messages)).toEqual(range(1, 8));
  });

  it('?from=N starts the stream after position N', async () => {
    const { store, server } = await serve();
    appendN(store, 6);
    const stream = openStream(`${server.url}/api/events/stream?from=4`);
    cleanups.push(() => stream.close());
    await stream.waitFor(2);
    appendN(store, 1);
    await stream.waitFor(3);
    expect(idsOf(stream.messages)).toEqual([5, 6, 7]);
  });

  it('closes a client too slow to take the live events, instead of queueing them without bound', async () => {
    const { store, server } = await serve({ maxQueuedEvents: 20 });
    const stream = openStream(`${server.url}/api/events/stream`);
    cleanups.push(() => stream.close());
    await stream.ready;
    stream.pause();
    for (let i = 0; i < 100 && !stream.ended(); i++) {
      appendN(store, 50, 10_000);
      await new Promise((r) => setTimeout(r, 5));
    }
    stream.resume();
    await stream.waitForEnd();
    const ids = idsOf(stream.messages);
    expect(ids).toEqual(range(1, ids.length)); // what it got is still in order, with no gap
    expect(ids.length).toBeLessThan(store.headPosition());
  });

  it("shows another process's appends to the same SQLite data dir on the stream", async () => {
    const { store, server, dir } = await serve();
    const stream = openStream(`${server.url}/api/events/stream`);
    cleanups.push(() => stream.close());
    await stream.ready;
    const child = spawn(
      process.execPath,
      [join(REPO, 'packages', 'cli', 'bin', 'amlsim.js'), 'run', join(SCENARIO_DIR, 'mfa.yaml'), '--driver', 'process', '--data-dir', dir, '--docker-socket', join(dir, 'no-docker.sock'), '--no-color'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, output).toBe(0);
    const head = store.headPosition();
    expect(head).toBeGreaterThan(0);
    await stream.waitFor(head);
    expect(idsOf(stream.messages)).toEqual(range(1, head));
    expect(stream.messages.map((m) => m.data.type)).toContain('ScenarioStarted');

    const { sessions } = (await (await fetch(`${server.url}/api/sessions`)).json()) as { sessions: Array<Record<string, unknown>> };
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ firstPosition: 1, lastPosition: head, closed: true, recovered: false, scenario: { file: expect.stringContaining('mfa.yaml') } });
  }, 120_000);

  it('GET /api/sessions follows the log as it grows: asked again, it counts what was appended since, in every session', async () => {
    const { store, server } = await serve();
    const sessions = async () => ((await (await fetch(`${server.url}/api/sessions`)).json()) as { sessions: Array<{ id: string; events: number; lastPosition: number }> }).sessions;
    appendN(store, 3);
    expect(await sessions()).toEqual([expect.objectContaining({ id: 's_test', events: 3, lastPosition: 3 })]);
    store.appendMany([{ stream: 'tenant-u', expectedVersion: 'any', events: [{ ...ev('ClockAdvanced', { byMs: 1, to: 'x' }), meta: { ...meta, session: 's_other' } }] }]);
    appendN(store, 2);
    expect(await sessions()).toEqual([
      expect.objectContaining({ id: 's_test', events: 5, lastPosition: 6 }),
      expect.objectContaining({ id: 's_other', events: 1, lastPosition: 4 }),
    ]);
  });

  it('pages the log with GET /api/events and says where the next page starts', async () => {
    const { store, server } = await serve();
    appendN(store, 5);
    const page = (await (await fetch(`${server.url}/api/events?from=1&limit=2`)).json()) as { events: StoredEvent[]; next: number | null; head: number };
    expect(page.events.map((e) => e.position)).toEqual([2, 3]);
    expect(page).toMatchObject({ next: 3, head: 5 });
    const last = (await (await fetch(`${server.url}/api/events?from=3`)).json()) as { events: StoredEvent[]; next: number | null };
    expect(last.events.map((e) => e.position)).toEqual([4, 5]);
    expect(last.next).toBeNull();
  });

  it.each([
    ['/api/events?from=abc', 'abc'],
    ['/api/events?from=-1', '-1'],
    ['/api/events?limit=0', "limit '0'"],
    ['/api/events?limit=10001', "limit '10001'"],
    ['/api/events?limit=ten', "limit 'ten'"],
    ['/api/events/stream?from=1.5', '1.5'],
  ])('GET %s is a 400 naming the offending value and what is allowed', async (path, offending) => {
    const { server } = await serve();
    const res = await fetch(`${server.url}${path}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('BadRequest');
    expect(body.error.message).toContain(offending);
    expect(body.error.message).toMatch(/whole number/);
  });

  it('a bad Last-Event-ID is a 400, an unknown route a 404 listing the routes', async () => {
    const { server } = await serve();
    const bad = await fetch(`${server.url}/api/events/stream`, { headers: { 'last-event-id': 'yesterday' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("Last-Event-ID 'yesterday'");
    const missing = await fetch(`${server.url}/api/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()) as unknown).toMatchObject({ error: { code: 'NotFound', message: expect.stringContaining('GET /api/events/stream') } });
  });

  it('serves the event catalog and the scenario files', async () => {
    const { server } = await serve();
    const catalog = (await (await fetch(`${server.url}/api/catalog`)).json()) as { types: Array<Record<string, unknown>> };
    expect(catalog.types.find((t) => t.type === 'ScenarioStarted')).toMatchObject({ lane: 'Client', from: 'Client', to: 'Platform', cites: [] });
    const { scenarios } = (await (await fetch(`${server.url}/api/scenarios`)).json()) as { scenarios: Array<Record<string, unknown>> };
    expect(scenarios.find((s) => s.file === 'workspace-creation.yaml')).toMatchObject({ name: 'Create a workspace', cites: expect.arrayContaining(['S8.1']) });
  });

  it('answers only requests addressed to its own loopback name: a page reaching it through DNS rebinding is refused', async () => {
    const tmp = tempDir('amlsim-server-');
    const store = openSqliteEventStore({ file: join(tmp.dir, 'events.sqlite') });
    const server = await startServer({ store, dataDir: tmp.dir, port: 0 });
    const get = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${server.url}/api/info`, { headers: { host } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const port = new URL(server.url).port;
      expect((await get(`127.0.0.1:${port}`)).status).toBe(200);
      expect((await get(`localhost:${port}`)).status).toBe(200);
      const rebound = await get(`attacker.example:${port}`);
      expect(rebound.status).toBe(403);
      expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: 'HostNotAllowed', message: expect.stringContaining("'attacker.example:") } });
    } finally {
      await server.close();
      store.close();
      tmp[Symbol.dispose]();
    }
  });

  it('refuses to listen anywhere but 127.0.0.1', async () => {
    const tmp = tempDir('amlsim-server-');
    const store = openSqliteEventStore({ file: join(tmp.dir, 'events.sqlite') });
    try {
      for (const host of ['0.0.0.0', '::', 'localhost', '192.168.1.10']) {
        await expect(startServer({ store, dataDir: tmp.dir, port: 0, host }), host).rejects.toThrow(`listens on 127.0.0.1 only (docs/architecture.md "Network"), not on '${host}'`);
      }
    } finally {
      store.close();
      tmp[Symbol.dispose]();
    }
  });
});

describe('amlsim serve: the command', () => {
  it('prints its URL, answers on it, and exits 130 on SIGINT', async () => {
    using tmp = tempDir('amlsim-serve-cli-');
    const child = spawn(process.execPath, [join(REPO, 'packages', 'cli', 'bin', 'amlsim.js'), 'serve', '--port', '0', '--data-dir', tmp.dir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += String(d);
        const m = /amlsim serve: (http:\/\/127\.0\.0\.1:\d+)\n/.exec(stdout);
        if (m && stdout.includes('events.sqlite')) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`amlsim serve exited ${code} before printing its URL: ${stdout}${stderr}`)));
    });
    expect(stdout).toContain(join(tmp.dir, 'events.sqlite'));
    const info = (await (await fetch(`${url}/api/info`)).json()) as { dataDir: string; head: number };
    expect(info).toEqual({ dataDir: tmp.dir, head: 0 });
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
  }, 60_000);
});
