import fastify from 'fastify';
import type { Platform } from '@amlsim/platform';
import { registerAadRoutes } from './aad';
import { authorizationRoutes } from './authorization-routes';
import { armErrorBody } from './http-errors';
import { mlRoutes } from './ml-routes';
import { Operations } from './operations';
import { ArmRouter } from './router';
import { storageRoutes } from './storage-routes';

export type AzureEndpointOptions = {
  /** The live platform session every call goes into (the same command pipeline as a scenario step). */
  platform: Platform;
  /** TLS: a certificate for 127.0.0.1 from the simulator's CA (docs/security.md), and its key. */
  tls: { cert: string; key: string };
  /** Default 0 (any free port). */
  port?: number;
  /** Must be 127.0.0.1 (docs/architecture.md "Network"). */
  host?: string;
  /** Directories a `file://` codeUri or modelUri may name. */
  allowedRoots: string[];
  /** One line per request (method, path, status, ms), for the terminal; never a header or a body. */
  onRequest?: (line: string) => void;
};

export type AzureEndpoint = { url: string; port: number; close(): Promise<void> };

/**
 * Azure AD and ARM on one HTTPS port of 127.0.0.1 (docs/azure.md): what the official Azure
 * SDKs need to drive the simulator unchanged. Every ARM call is a call of the platform's
 * client-facing API with the caller's bearer token, so authentication, RBAC, statecharts and
 * the event log are the scenario runner's own.
 */
export async function startAzureEndpoint(o: AzureEndpointOptions): Promise<AzureEndpoint> {
  const host = o.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new Error(`the Azure endpoint listens on 127.0.0.1 only, not '${host}'`);
  const app = fastify({ https: { cert: o.tls.cert, key: o.tls.key }, logger: false, bodyLimit: 1 << 20, routerOptions: { caseSensitive: false },
    // ARM accepts `//subscriptions/...` (what clients send for a scope given with its leading slash).
    rewriteUrl: (req) => (req.url ?? '/').replace(/^\/{2,}/, '/'),
  });
  let url = '';
  const redact = (s: string) => o.platform.context.secrets.redact(s);
  const operations = new Operations(() => o.platform.context.clock.now(), redact);
  const router = new ArmRouter([
    ...mlRoutes({
      operations,
      operationUrl: (sub, location, op, apiVersion) => `${url}/subscriptions/${sub}/providers/Microsoft.MachineLearningServices/locations/${location}/operationsStatus/${op}?api-version=${apiVersion}`,
      allowedRoots: o.allowedRoots,
    }),
    ...authorizationRoutes(),
    ...storageRoutes(),
  ]);

  // A page of another site that reaches this port by DNS rebinding names its own host.
  app.addHook('onRequest', async (req, reply) => {
    const port = url ? new URL(url).port : '';
    if (req.headers.host !== `127.0.0.1:${port}` && req.headers.host !== `localhost:${port}`) {
      return reply.code(403).send({ error: { code: 'HostNotAllowed', message: `Host '${req.headers.host ?? ''}' is not this endpoint (127.0.0.1:${port}).` } });
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    o.onRequest?.(`${req.method} ${req.url.split('?')[0]} ${reply.statusCode} ${Math.round(reply.elapsedTime)}ms`);
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  registerAadRoutes(app, o.platform, () => url);

  const arm = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const [path] = req.url.split('?');
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    try {
      const res = await router.dispatch(o.platform, {
        method: req.method,
        path: path!,
        query: req.query as Record<string, string | undefined>,
        body: (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>,
        token,
      });
      for (const [k, v] of Object.entries(res.headers ?? {})) reply.header(k, v);
      reply.header('x-ms-request-id', crypto.randomUUID());
      return reply.code(res.status).send(res.body ?? (res.status === 200 ? {} : undefined));
    } catch (e) {
      const { status, body } = armErrorBody(e, redact);
      if (status === 500) o.onRequest?.(`internal error on ${req.method} ${path}: ${redact(e instanceof Error ? (e.stack ?? e.message) : String(e))}`);
      return reply.code(status).header('x-ms-failure-cause', 'gateway').send(body);
    }
  };
  app.route({ method: ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'], url: '/subscriptions/*', handler: arm });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'NotFound', message: `'${req.method} ${req.url.split('?')[0]}' is neither an ARM path (/subscriptions/...) nor an Azure AD one (/<tenant>/oauth2/v2.0/token); docs/azure.md lists what this endpoint serves.` } }),
  );

  await app.listen({ host, port: o.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  url = `https://127.0.0.1:${port}`;
  return { url, port, close: () => app.close() };
}
