import { startAzureEndpoint, type AzureEndpoint, type AzureEndpointOptions } from '@amlsim/azure';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyReply } from 'fastify';
import { errors, isSimError, type EventStore, type StoredEvent } from '@amlsim/core';
import { streamEvents, type EventStreamOptions } from './event-stream';
import { SessionSummaries, catalogDocument, listScenarios } from './log-summaries';
import { createLogTail } from './log-tail';
import { createPlayer, ScenarioRejected, type PlayRequest, type ScenarioPlayerPort } from './player';

/** The port `amlsim serve` listens on unless told otherwise (docs/server.md). */
export const DEFAULT_PORT = 7350;
/** The only address the server binds (docs/architecture.md "Network": only loopback). */
export const LOOPBACK = '127.0.0.1';
/** The most events one `GET /api/events` returns. */
export const MAX_PAGE = 10_000;
const DEFAULT_PAGE = 1_000;

export type ServerOptions = {
  /** The log to serve; the server reads it and never appends. */
  store: EventStore;
  /** Where the state is kept, reported by `GET /api/info`. */
  dataDir: string;
  /** The scenario files `GET /api/scenarios` lists (none when missing). */
  scenariosDir?: string;
  /** Default DEFAULT_PORT; 0 for any free port. */
  port?: number;
  /** Must be 127.0.0.1, the default: anything else is refused. */
  host?: string;
  /** How often the head of the log is checked for what another process appended (default 100 ms). */
  pollIntervalMs?: number;
  /**
   * Plays scenarios against this store (`POST /api/play` and the routes under it, docs/server.md
   * "Playing a scenario"); without it the server only reads. Uploaded files are parsed as if they
   * were in `scenariosDir` (their relative paths lead there).
   */
  player?: ScenarioPlayerPort;
  /**
   * The built dashboard (packages/web, `pnpm build`): served at `/`. Without it, `/` answers a
   * page that says how to build it; the API works either way.
   */
  webRoot?: string;
  /**
   * Also serve Azure AD and ARM over HTTPS for the official Azure SDKs (docs/azure.md) on a live
   * platform session: started after the log's port listens, closed with it.
   */
  azure?: AzureEndpointOptions;
  /** Told of a request that failed inside the server (a 500), whose detail is not sent to the client. */
  onInternalError?: (error: unknown, route: string) => void;
} & Partial<EventStreamOptions>;

export type RunningServer = {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The Azure AD and ARM endpoint, when `azure` was given: `https://127.0.0.1:<port>`. */
  azure?: { url: string; port: number };
  /** Ends every open stream and stops listening; the store stays open (the caller's). */
  close(): Promise<void>;
};

const READ_ROUTES = ['GET /api/info', 'GET /api/events', 'GET /api/events/stream', 'GET /api/sessions', 'GET /api/catalog', 'GET /api/scenarios'];
const PLAY_ROUTES = ['GET /api/play', 'POST /api/play', 'POST /api/play/step', 'POST /api/play/pause', 'POST /api/play/resume', 'POST /api/play/reset'];

/** A log position from a query value or header: a whole number, 0 meaning "from the start". */
function parsePosition(name: string, value: unknown): number {
  if (value === undefined || value === '') return 0;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw errors.badRequest(`${name} '${text}' is not a log position; give a whole number >= 0 (0: from the start of the log)`, { [name]: text });
  }
  return n;
}

function parseLimit(value: unknown): number {
  if (value === undefined || value === '') return DEFAULT_PAGE;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE)) throw errors.badRequest(`limit '${text}' is out of range; give a whole number from 1 to ${MAX_PAGE}`, { limit: text });
  return n;
}

const sendError = (reply: FastifyReply, status: number, code: string, message: string) =>
  reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message } });

/**
 * Serves a data dir's event log over HTTP on 127.0.0.1 (docs/server.md): pages of the log for
 * time travel, a Server-Sent Events stream of it, its sessions, the event catalog and the
 * scenario files. Read-only unless given a `player`: then it plays one scenario at a time
 * against the store, in run or step mode (./player.ts).
 *
 * @throws SimError BadRequest when `host` is not 127.0.0.1 or `port` is not a port number.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? LOOPBACK;
  if (host !== LOOPBACK) {
    throw errors.badRequest(`the server listens on ${LOOPBACK} only (docs/architecture.md "Network"), not on '${host}'`, { host });
  }
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw errors.badRequest(`port ${port} is not a TCP port; give 0 (any free port) to 65535`, { port });

  const { store } = options;
  const streamOptions: EventStreamOptions = {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    maxQueuedEvents: options.maxQueuedEvents ?? 10_000,
    retryMs: options.retryMs ?? 1_000,
  };
  const tail = createLogTail(store, { pollIntervalMs: options.pollIntervalMs ?? 100 });
  // forceCloseConnections: open event streams never end by themselves, and close() must not wait for them.
  const app = Fastify({ logger: false, forceCloseConnections: true });

  const ROUTES = options.player ? [...READ_ROUTES, ...PLAY_ROUTES] : READ_ROUTES;
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ScenarioRejected) {
      return reply.code(400).type('application/json; charset=utf-8').send({ error: { code: error.code, message: error.message, issues: error.issues } });
    }
    if (isSimError(error)) return sendError(reply, error.status ?? 400, error.code, error.message);
    if (typeof error.statusCode === 'number' && error.statusCode < 500) return sendError(reply, error.statusCode, error.code ?? 'BadRequest', error.message);
    // No stack or internal detail goes over the wire.
    options.onInternalError?.(error, `${request.method} ${request.url}`);
    return sendError(reply, 500, 'Internal', 'the server failed to answer this request; see the terminal running amlsim serve');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'NotFound', `no route ${request.method} ${request.url.split('?')[0]}; the server answers ${ROUTES.join(', ')}`),
  );

  // Only loopback is bound, but a web page the user opens elsewhere could still reach it by DNS
  // rebinding (its own host name made to resolve to 127.0.0.1, then same-origin requests —
  // POST /api/play included). Such a request carries that host name: only the server's own
  // loopback names are answered.
  let bound = 0;
  app.addHook('onRequest', async (request, reply) => {
    const host = request.headers.host ?? '';
    if (host !== `${LOOPBACK}:${bound}` && host !== `localhost:${bound}`) {
      return sendError(reply, 403, 'HostNotAllowed', `requests must be addressed to ${LOOPBACK}:${bound} or localhost:${bound}, not '${host.slice(0, 200)}' (a page of another site reaching this server through DNS rebinding is refused)`);
    }
  });

  // The dashboard: a page that loads nothing from anywhere else. Its scripts, styles and data
  // come from this server only (the CSP says so to the browser, too); hashed assets are cached.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Content-Security-Policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  });
  if (options.webRoot && existsSync(join(options.webRoot, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: options.webRoot,
      prefix: '/',
      index: 'index.html',
      // Files are looked up when asked for, not listed once at start: a page rebuilt while the
      // server runs (new hashed asset names) is served as it is now.
      wildcard: true,
      setHeaders: (res, path) => res.header('Cache-Control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'),
    });
  } else {
    app.get('/', async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .send('<!doctype html><title>amlsim</title><p>The dashboard is not built. Run <code>bash scripts/setup.sh</code> (or <code>pnpm build</code>) and reload; the API under <code>/api/</code> works meanwhile (docs/server.md).</p>'),
    );
  }

  app.get('/api/info', async () => ({ dataDir: options.dataDir, head: store.headPosition() }));

  app.get<{ Querystring: Record<string, unknown> }>('/api/events', async (request) => {
    const from = parsePosition('from', request.query.from);
    const limit = parseLimit(request.query.limit);
    const events: StoredEvent[] = [];
    for (const event of store.readAll(from)) {
      events.push(event);
      if (events.length === limit) break;
    }
    const head = store.headPosition();
    const last = events.at(-1)?.position ?? from;
    return { events, head, next: last < head ? last : null };
  });

  app.get<{ Querystring: Record<string, unknown> }>('/api/events/stream', (request, reply) => {
    // The browser's EventSource sends Last-Event-ID when it reconnects, and keeps the URL it
    // began with: the header, when there is one, is where the client really stopped.
    const header = request.headers['last-event-id'];
    const after = header !== undefined ? parsePosition('Last-Event-ID', header) : parsePosition('from', request.query.from);
    reply.hijack();
    streamEvents(reply.raw, store, tail, after, streamOptions);
  });

  const sessions = new SessionSummaries(store);
  app.get('/api/sessions', async () => ({ sessions: sessions.list() }));
  app.get('/api/catalog', async () => catalogDocument());
  app.get('/api/scenarios', async () => ({ scenarios: options.scenariosDir ? listScenarios(options.scenariosDir) : [] }));

  const player = options.player ? createPlayer(options.player, { ...(options.scenariosDir ? { scenariosDir: options.scenariosDir } : {}), uploadDir: options.scenariosDir ?? options.dataDir }) : undefined;
  if (player) {
    app.get('/api/play', async () => player.view());
    app.post<{ Body: PlayRequest | null }>('/api/play', async (request) => player.play(request.body && typeof request.body === 'object' ? request.body : {}));
    app.post('/api/play/step', async () => player.step());
    app.post('/api/play/pause', async () => player.pause());
    app.post('/api/play/resume', async () => player.resume());
    app.post('/api/play/reset', async () => player.reset());
  }

  try {
    await app.listen({ host: LOOPBACK, port });
  } catch (err) {
    tail.close();
    throw err;
  }
  const address = app.server.address();
  bound = typeof address === 'object' && address ? address.port : port;
  let azure: AzureEndpoint | undefined;
  if (options.azure) {
    try {
      azure = await startAzureEndpoint(options.azure);
    } catch (err) {
      tail.close();
      await app.close();
      throw err;
    }
  }
  return {
    url: `http://${LOOPBACK}:${bound}`,
    port: bound,
    ...(azure ? { azure: { url: azure.url, port: azure.port } } : {}),
    close: async () => {
      await azure?.close();
      await player?.close();
      tail.close();
      await app.close();
    },
  };
}
