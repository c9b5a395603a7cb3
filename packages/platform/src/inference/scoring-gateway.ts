import { randomUUID } from 'node:crypto';
import { Agent, createServer as createHttpServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SimError, errors } from '@amlsim/core';

/**
 * The platform's scoring gateway (issue 4 §2, S8.5, S5.1, S1.4, S7.3): the one network
 * endpoint of every web service. Scoring containers have no network; the gateway listens on
 * 127.0.0.1 (HTTPS with the simulator's local CA, plain HTTP only when asked) and forwards
 * each request to a replica's unix socket (packages/agent/scoring/server.mjs):
 *
 *   POST /api/v1/service/<name>/score   -> POST /score on a replica (round-robin)
 *   GET|HEAD /api/v1/service/<name>     -> GET|HEAD / on a replica (liveness)
 *
 * Per request: a RequestId (an incoming valid `x-ms-request-id` is kept), the service's
 * `authorize` on the Authorization header (refused: 401 `{ error: { code, message } }`), the
 * body streamed to the replica as it arrives (over `maxBodyBytes`, declared or counted: 413),
 * the replica's status and body passed back. A replica that cannot be reached (or resets a
 * reused keep-alive connection before answering) is skipped for the next one, once; then 502.
 * No answer within `scoringTimeoutMs`: 504.
 *
 * App Insights (S7.3): every request to a registered service — accepted, refused or failed —
 * gives exactly one `onRequest` record, made right after the answer is written, in the same
 * turn of the event loop (so whoever asks this process afterwards finds it); a client that
 * goes away before any answer gives a record with StatusCode 499. Requests naming no
 * registered service are answered 404 and recorded nowhere (they belong to no workspace).
 *
 * The gateway logs nothing itself: no body, no Authorization header; the record's RequestUrl
 * has no query string. Internal failures (an `onRequest` or `authorize` that throws, a server
 * error) go to `onError`.
 */

export type ComputeType = 'ACI' | 'AKS';

/** One App Insights request record (S7.3). */
export type AppInsightsRecord = {
  HTTPMethod: string;
  UserAgent: string;
  ComputeType: ComputeType;
  /** The gateway's URL and the request's path, without query string. */
  RequestUrl: string;
  StatusCode: number;
  RequestId: string;
  DurationMs: number;
  /** When the request arrived (ISO), on the gateway's clock (`now`). */
  Timestamp: string;
};

export type AuthorizeResult = { ok: true } | { ok: false; status: 401; code: string; message: string };

export type ScoringService = {
  /** Unix socket paths of the service's replicas, tried round-robin. */
  replicas: string[];
  /** Decides on the raw Authorization header (S1.4–S1.6); must not throw (a throw is a 500). */
  authorize: (header: string | undefined) => AuthorizeResult;
  computeType: ComputeType;
  /** Called exactly once per request to this service. */
  onRequest: (record: AppInsightsRecord) => void;
};

export type ScoringGatewayOptions = {
  /** From forwarding to the replica's full answer, retries included (default 60 s): then 504. */
  scoringTimeoutMs?: number;
  /** Request body limit (default 10 MiB, as the replica's): over it, 413. */
  maxBodyBytes?: number;
  /** A replica's answer over this (default 64 MiB) is a 502. */
  maxResponseBytes?: number;
  /** Concurrent connections to one replica (default 32; more requests queue). */
  maxSocketsPerReplica?: number;
  /** The clock of the records' Timestamp (default Date.now; the platform passes its SimClock). */
  now?: () => number;
  /** Internal failures; default: one line on stderr (the error's message only). */
  onError?: (error: Error) => void;
};

export type ScoringGatewayStartOptions = {
  /** PEM certificate (chain) and key: HTTPS. Without: plain HTTP. */
  tls?: { cert: string; key: string };
  /** Default 0: a free port. */
  port?: number;
};

const HOST = '127.0.0.1';
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_BODY = 10 * 1024 * 1024;
const DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024;
const DEFAULT_MAX_SOCKETS = 32;
/** Idle pooled connections are dropped before the replica's own 60 s keep-alive does. */
const POOL_IDLE_MS = 30_000;
/** stop(): in-flight requests get this long before their connections are cut. */
const STOP_GRACE_MS = 5_000;
/** Attempts per request: the replica picked, then the next one. */
const MAX_ATTEMPTS = 2;
/** Recorded when the client went away before any answer (as nginx logs it). */
const CLIENT_CLOSED_REQUEST = 499;

const ROUTE = /^\/api\/v1\/service\/([^/]+)(\/score)?\/?$/;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Errors that mean the request never reached a replica process. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ENOTSOCK', 'ENOTDIR', 'EAGAIN']);
/** Passed back from the replica's answer; the rest (connection, date, …) is ours. */
const PASSED_HEADERS = ['content-type', 'retry-after', 'allow'] as const;

type Kind = 'score' | 'liveness';

type Outcome =
  | { kind: 'response'; status: number; headers: OutgoingHttpHeaders; body: Buffer }
  | { kind: 'unreachable'; code: string }
  | { kind: 'failed'; code: string }
  | { kind: 'timeout' }
  | { kind: 'too-large' }
  | { kind: 'aborted' };

/** A registered service: its replicas' connection pools and round-robin position. */
class Route {
  counter = 0;
  inFlight = 0;
  closed = false;
  readonly agents = new Map<string, Agent>();

  constructor(
    readonly name: string,
    readonly service: ScoringService,
    private readonly maxSockets: number,
  ) {}

  agentFor(socketPath: string): Agent {
    let agent = this.agents.get(socketPath);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: this.maxSockets, timeout: POOL_IDLE_MS });
      this.agents.set(socketPath, agent);
    }
    return agent;
  }

  /** Takes over `previous`'s pools for the replicas both have (a re-registration keeps its connections). */
  adopt(previous: Route): void {
    for (const socketPath of this.service.replicas) {
      const agent = previous.agents.get(socketPath);
      if (agent && !this.agents.has(socketPath)) {
        this.agents.set(socketPath, agent);
        previous.agents.delete(socketPath);
      }
    }
  }

  destroyAgents(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

export class ScoringGateway {
  private server?: Server;
  private port?: number;
  private tlsEnabled = false;
  /** The URL of the current (or last) listener: kept while stop() lets requests finish. */
  private origin = '';
  private readonly routes = new Map<string, Route>();
  /** Unregistered or replaced routes with requests still running. */
  private readonly retired = new Set<Route>();
  private inFlight = 0;
  /** Requests to a deployed service that have ended (answered or dropped): each owes one record. */
  private ended = 0;

  /** How many requests to deployed services have ended (an invariant compares it with App Insights). */
  get requestsEnded(): number {
    return this.ended;
  }

  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly maxResponseBytes: number;
  private readonly maxSockets: number;
  private readonly now: () => number;
  private readonly reportError: (error: Error) => void;

  constructor(options: ScoringGatewayOptions = {}) {
    this.timeoutMs = options.scoringTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    this.maxSockets = options.maxSocketsPerReplica ?? DEFAULT_MAX_SOCKETS;
    this.now = options.now ?? Date.now;
    this.reportError = options.onError ?? ((error) => process.stderr.write(`[amlsim gateway] ${error.message.split('\n')[0]}\n`));
  }

  /** `https://127.0.0.1:PORT` (or `http://…`). */
  get url(): string {
    if (this.port === undefined) throw errors.conflict('the scoring gateway is not started');
    return `${this.tlsEnabled ? 'https' : 'http'}://${HOST}:${this.port}`;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** The scoring URI of a service (S8.5), e.g. `https://127.0.0.1:PORT/api/v1/service/svc/score`. */
  scoringUri(name: string): string {
    return `${this.url}/api/v1/service/${encodeURIComponent(name)}/score`;
  }

  /**
   * Listens on 127.0.0.1 (only), on a free port unless `port` is given; HTTPS with `tls`.
   * Calling it again while listening does nothing.
   * @throws SimError `ScoringGatewayStartFailed`
   */
  async start(options: ScoringGatewayStartOptions = {}): Promise<void> {
    if (this.server) return;
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    let server: Server;
    try {
      server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, handler) : createHttpServer(handler);
    } catch (error) {
      throw startFailed(`the TLS certificate or key is not usable: ${messageOf(error)}`);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(startFailed(messageOf(error))));
      server.listen({ host: HOST, port: options.port ?? 0 }, () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', (error) => this.reportError(error));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.tlsEnabled = options.tls !== undefined;
    this.origin = this.url;
  }

  /**
   * Stops listening; in-flight requests get a few seconds to finish, then their connections
   * are cut (each still gets its record). Registrations are kept for a later start().
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.port = undefined;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    const deadline = performance.now() + graceMs;
    while (this.inFlight > 0 && performance.now() < deadline) await delay(20);
    server.closeAllConnections();
    await closed;
    for (const route of [...this.routes.values(), ...this.retired]) route.destroyAgents();
    this.retired.clear();
  }

  /**
   * Routes `/api/v1/service/<name>` to `service`. Registering a name again replaces its
   * service (new replicas, auth, sink) from the next request on; pooled connections to the
   * replicas both have are kept.
   * @throws SimError BadRequest on a name that cannot be a URL path segment or a bad service.
   */
  register(name: string, service: ScoringService): void {
    if (!SERVICE_NAME.test(name)) {
      throw errors.badRequest(`a scoring service name must be 1-255 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(name)}`);
    }
    if (!Array.isArray(service.replicas) || !service.replicas.every((r) => typeof r === 'string' && r.length > 0)) {
      throw errors.badRequest(`service '${name}': replicas must be a list of unix socket paths`);
    }
    if (service.computeType !== 'ACI' && service.computeType !== 'AKS') {
      throw errors.badRequest(`service '${name}': computeType must be ACI or AKS, not ${JSON.stringify(service.computeType)}`);
    }
    if (typeof service.authorize !== 'function' || typeof service.onRequest !== 'function') {
      throw errors.badRequest(`service '${name}': authorize and onRequest must be functions`);
    }
    const route = new Route(name, { ...service, replicas: [...service.replicas] }, this.maxSockets);
    const previous = this.routes.get(name);
    if (previous) {
      route.adopt(previous);
      this.retire(previous);
    }
    this.routes.set(name, route);
  }

  /** From the next request on, `name` is 404; requests already running finish. */
  unregister(name: string): void {
    const route = this.routes.get(name);
    if (!route) return;
    this.routes.delete(name);
    this.retire(route);
  }

  /** Names of the registered services. */
  services(): string[] {
    return [...this.routes.keys()];
  }

  private retire(route: Route): void {
    route.closed = true;
    if (route.inFlight === 0) route.destroyAgents();
    else this.retired.add(route);
  }

  // -------------------------------------------------------------------------------------------
  // Requests
  // -------------------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const timestamp = new Date(this.now()).toISOString();
    const requestId = requestIdOf(req);
    res.setHeader('x-ms-request-id', requestId);
    const pathname = pathOf(req.url);
    const match = ROUTE.exec(pathname);
    const route = match ? this.routes.get(match[1]!) : undefined;
    if (!match || !route) {
      const message = match ? `no web service '${printable(match[1]!)}' is deployed on this gateway` : `no route ${printable(pathname)}; use POST /api/v1/service/<name>/score`;
      sendError({ req, res, onAnswered: () => {} }, 404, match ? 'ServiceNotFound' : 'NotFound', message);
      return;
    }
    const kind: Kind = match[2] ? 'score' : 'liveness';
    const requestUrl = `${this.origin}${pathname}`;

    route.inFlight += 1;
    this.inFlight += 1;
    const abort = new AbortController();
    // The record is made right after the answer is written, in the same turn of the event loop:
    // the answer is on its way without waiting for the record, yet nothing that asks this
    // process afterwards (queryAppInsights, a client in this process) can have the answer
    // without the record. A client that goes away before any answer gets CLIENT_CLOSED_REQUEST.
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      const entry: AppInsightsRecord = {
        HTTPMethod: req.method ?? '',
        UserAgent: printable(headerOf(req, 'user-agent') ?? '', 512),
        ComputeType: route.service.computeType,
        RequestUrl: requestUrl,
        StatusCode: status,
        RequestId: requestId,
        DurationMs: Math.round((performance.now() - started) * 1000) / 1000,
        Timestamp: timestamp,
      };
      try {
        route.service.onRequest(entry);
      } catch (error) {
        this.reportError(new Error(`onRequest of service '${route.name}' threw: ${messageOf(error)}`));
      }
    };
    let ended = false;
    const done = () => {
      if (ended) return;
      ended = true;
      if (!res.writableFinished) abort.abort();
      record(exchange.answered ?? CLIENT_CLOSED_REQUEST);
      this.ended += 1;
      route.inFlight -= 1;
      this.inFlight -= 1;
      if (route.closed && route.inFlight === 0) {
        route.destroyAgents();
        this.retired.delete(route);
      }
    };
    const exchange: Exchange = { req, res, onAnswered: record };
    res.once('finish', done);
    res.once('close', done);

    this.serve(route, kind, exchange, requestId, abort.signal).catch((error: unknown) => {
      if (abort.signal.aborted) return;
      this.reportError(new Error(`request ${requestId} to service '${route.name}' failed: ${messageOf(error)}`));
      if (!res.headersSent) sendError(exchange, 500, 'InternalServerError', 'the scoring gateway failed to handle the request', { connection: 'close' });
      else res.destroy();
    });
  }

  private async serve(route: Route, kind: Kind, x: Exchange, requestId: string, signal: AbortSignal): Promise<void> {
    const { req, res } = x;
    const method = req.method ?? '';
    if (kind === 'score' && method !== 'POST') {
      return sendError(x, 405, 'MethodNotAllowed', `${method} is not allowed on a scoring URI; use POST`, { allow: 'POST' });
    }
    if (kind === 'liveness' && method !== 'GET' && method !== 'HEAD') {
      return sendError(x, 405, 'MethodNotAllowed', `${method} is not allowed on a service's root; use GET`, { allow: 'GET, HEAD' });
    }

    let verdict: AuthorizeResult;
    try {
      verdict = route.service.authorize(headerOf(req, 'authorization'));
    } catch (error) {
      this.reportError(new Error(`authorize of service '${route.name}' threw: ${messageOf(error)}`));
      return sendError(x, 500, 'InternalServerError', 'the authorization check failed');
    }
    if (!verdict.ok) {
      // Whatever body came with it is discarded by the HTTP server after this answer.
      return sendError(x, 401, verdict.code, verdict.message, { 'www-authenticate': 'Bearer' });
    }

    // The body streams to the replica as it arrives (a large one is not first read whole),
    // and is kept, so that the next replica can be given all of it if the first is unreachable.
    let body: RequestBody | undefined;
    if (kind === 'score') {
      const declared = declaredLengthOf(req);
      if (declared !== undefined && declared > this.maxBodyBytes) return this.tooLarge(x);
      body = new RequestBody(req, this.maxBodyBytes);
    }

    const replicas = route.service.replicas;
    if (replicas.length === 0) {
      return sendError(x, 503, 'ServiceUnavailable', `web service '${route.name}' has no running replica`, { 'retry-after': '1' });
    }
    const outcome = await this.forward(route, kind, method, body, requestId, req, signal);
    if (signal.aborted || res.headersSent) return;
    switch (outcome.kind) {
      case 'response': {
        return send(x, outcome.status, outcome.headers, outcome.body);
      }
      case 'unreachable':
        return sendError(x, 502, 'BadGateway', `no replica of web service '${route.name}' could be reached (${outcome.code})`);
      case 'failed':
        return sendError(x, 502, 'BadGateway', `the replica of web service '${route.name}' failed while answering (${outcome.code})`);
      case 'timeout':
        return sendError(x, 504, 'GatewayTimeout', `web service '${route.name}' did not answer within ${this.timeoutMs} ms`);
      case 'too-large':
        return this.tooLarge(x);
      case 'aborted':
        return;
    }
  }

  /** 413; the rest of the body is not read: the connection closes. */
  private tooLarge(x: Exchange): void {
    sendError(x, 413, 'PayloadTooLarge', `the request body exceeds ${this.maxBodyBytes} bytes`, { connection: 'close' });
  }

  /** The picked replica, then (if it could not be reached) the next one. */
  private async forward(route: Route, kind: Kind, method: string, body: RequestBody | undefined, requestId: string, req: IncomingMessage, signal: AbortSignal): Promise<Outcome> {
    const replicas = route.service.replicas;
    const first = route.counter;
    route.counter = (route.counter + 1) % Number.MAX_SAFE_INTEGER;
    const deadline = performance.now() + this.timeoutMs;
    let outcome: Outcome = { kind: 'unreachable', code: 'ENOENT' };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const socketPath = replicas[(first + attempt) % replicas.length]!;
      outcome = await this.attempt(route.agentFor(socketPath), socketPath, kind, method, body, requestId, req, deadline, signal);
      if (outcome.kind !== 'unreachable') return outcome;
    }
    return outcome;
  }

  private attempt(
    agent: Agent,
    socketPath: string,
    kind: Kind,
    method: string,
    body: RequestBody | undefined,
    requestId: string,
    req: IncomingMessage,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const remaining = deadline - performance.now();
      if (remaining <= 0) return resolve({ kind: 'timeout' });
      if (signal.aborted) return resolve({ kind: 'aborted' });
      let settled = false;
      let answered = false;
      const headers: OutgoingHttpHeaders = { 'x-ms-request-id': requestId };
      if (body) {
        headers['content-type'] = headerOf(req, 'content-type') ?? 'application/json';
        // Without a declared length the body goes on chunked, as it came.
        if (body.declaredLength !== undefined) headers['content-length'] = String(body.declaredLength);
      }
      const upstream = request(
        { socketPath, agent, method: kind === 'score' ? 'POST' : method, path: kind === 'score' ? '/score' : '/', headers },
        (response) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxResponseBytes) {
              settle({ kind: 'failed', code: `answer over ${this.maxResponseBytes} bytes` });
              upstream.destroy();
            } else chunks.push(chunk);
          });
          response.on('end', () => {
            const passed: OutgoingHttpHeaders = {};
            for (const name of PASSED_HEADERS) {
              const value = response.headers[name];
              if (value !== undefined) passed[name] = value;
            }
            settle({ kind: 'response', status: response.statusCode ?? 502, headers: passed, body: Buffer.concat(chunks) });
          });
          response.on('error', (error: NodeJS.ErrnoException) => settle({ kind: 'failed', code: error.code ?? 'ECONNRESET' }));
          response.on('aborted', () => settle({ kind: 'failed', code: 'ECONNRESET' }));
        },
      );
      const onAbort = () => {
        settle({ kind: 'aborted' });
        upstream.destroy();
      };
      const timer = setTimeout(() => {
        settle({ kind: 'timeout' });
        upstream.destroy();
      }, remaining);
      let detach = () => {};
      const settle = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        detach();
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      upstream.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? 'ECONNRESET';
        // A pooled connection the replica closed as we reused it: the request never got there.
        const stale = upstream.reusedSocket && !answered && (code === 'ECONNRESET' || code === 'EPIPE');
        settle(UNREACHABLE.has(code) || stale ? { kind: 'unreachable', code } : { kind: 'failed', code });
      });
      if (!body) upstream.end();
      else {
        detach = body.attach({
          write: (chunk) => void upstream.write(chunk),
          end: () => void upstream.end(),
          tooLarge: () => {
            settle({ kind: 'too-large' });
            upstream.destroy();
          },
        });
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** One request being answered; `onAnswered` makes its record (once), `answered` is the status sent. */
type Exchange = { req: IncomingMessage; res: ServerResponse; answered?: number; onAnswered: (status: number) => void };

/** Writes the whole answer at once, then records it. Nothing when the client is gone. */
function send(x: Exchange, status: number, headers: OutgoingHttpHeaders, body: Buffer): void {
  const { req, res } = x;
  if (res.headersSent || res.destroyed) return;
  x.answered = status;
  res.writeHead(status, { ...headers, 'content-length': String(body.length) });
  res.end(req.method === 'HEAD' ? undefined : body);
  x.onAnswered(status);
}

function sendError(x: Exchange, status: number, code: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  send(x, status, { ...headers, 'content-type': 'application/json; charset=utf-8' }, Buffer.from(JSON.stringify({ error: { code, message } })));
}

type BodySink = { write(chunk: Buffer): void; end(): void; tooLarge(): void };

/**
 * A request body being read: every chunk is kept (up to `limit` bytes: then 'too large' and
 * the rest is not read) and handed to the attached sink, the current forwarding attempt.
 * Attaching replays what came so far, so a second attempt gets the whole body.
 */
class RequestBody {
  /** The client's Content-Length, when it sent a valid one. */
  readonly declaredLength: number | undefined;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private state: 'reading' | 'ended' | 'too-large' = 'reading';
  private sink: BodySink | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
  ) {
    this.declaredLength = declaredLengthOf(req);
    req.on('data', this.onData);
    req.once('end', this.onEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.size += chunk.length;
    if (this.size > this.limit) {
      this.state = 'too-large';
      this.req.off('data', this.onData);
      this.req.off('end', this.onEnd);
      this.req.pause();
      this.chunks.length = 0;
      this.sink?.tooLarge();
      return;
    }
    this.chunks.push(chunk);
    this.sink?.write(chunk);
  };

  private readonly onEnd = (): void => {
    this.state = 'ended';
    this.sink?.end();
  };

  /** Replays the body so far into `sink`, then streams the rest; returns a detach function. */
  attach(sink: BodySink): () => void {
    this.sink = sink;
    if (this.state === 'too-large') {
      sink.tooLarge();
    } else {
      for (const chunk of this.chunks) sink.write(chunk);
      if (this.state === 'ended') sink.end();
    }
    return () => {
      if (this.sink === sink) this.sink = undefined;
    };
  }
}

/** The request's valid Content-Length, if it sent one. */
function declaredLengthOf(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  const declared = Number(value);
  return value !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
}

function requestIdOf(req: IncomingMessage): string {
  const value = headerOf(req, 'x-ms-request-id');
  return value !== undefined && REQUEST_ID.test(value) ? value : randomUUID();
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The path without its query string (it may carry data). */
function pathOf(url: string | undefined): string {
  return String(url ?? '').split('?')[0] || '/';
}

/** Printable ASCII only, bounded: for messages and records built from what a client sent. */
function printable(text: string, max = 200): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function startFailed(detail: string): SimError {
  return new SimError('ScoringGatewayStartFailed', `The scoring gateway could not listen on ${HOST}: ${detail}.`, { status: 500, details: { detail } });
}
