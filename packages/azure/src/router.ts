import { errors } from '@amlsim/core';
import type { Platform } from '@amlsim/platform';
import { checkApiVersion, type Provider } from './api-versions';
import { ArmHttpError } from './http-errors';

/** What an ARM handler gets: the path's parts, the query, the body, the caller's bearer token. */
export type ArmRequest = {
  method: string;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: Record<string, unknown>;
  token: string | undefined;
  /** The request URL's path (to build Location and operation URLs from). */
  path: string;
};

/** A handler's answer: a status, a JSON body, and headers (an LRO's Azure-AsyncOperation, Location, Retry-After). */
export type ArmResponse = { status: number; body?: unknown; headers?: Record<string, string> };

export type ArmRoute = {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  /** The path, `{name}` for a segment, `{scope*}` for a scope (a subscription, resource group or workspace). */
  path: string;
  provider: Provider;
  /** The resource type named in api-version errors. */
  type: string;
  handle: (req: ArmRequest, platform: Platform) => Promise<ArmResponse>;
};

type Compiled = ArmRoute & { regex: RegExp; names: string[] };

/** ARM paths are case-insensitive; so are their fixed segments here. */
const compile = (route: ArmRoute): Compiled => {
  const names: string[] = [];
  const source = route.path.replace(/[.]/g, '\\.').replace(/\{(\w+)(\*?)\}/g, (_m, name: string, star: string) => {
    names.push(name);
    return star ? '(/subscriptions/[^/]+(?:/resourceGroups/[^/]+(?:/providers/[^/]+/[^/]+/[^/]+)?)?)' : '([^/]+)';
  });
  return { ...route, regex: new RegExp(`^${source}/?$`, 'i'), names };
};

/**
 * The ARM routes, matched in order on method and path; `?api-version=` is checked against the
 * route's provider before the handler runs (a path no route knows is 404 as ARM answers it:
 * InvalidResourceType / NoRegisteredProviderFound).
 */
export class ArmRouter {
  private readonly routes: Compiled[];

  constructor(routes: ArmRoute[]) {
    this.routes = routes.map(compile);
  }

  match(method: string, path: string): { route: Compiled; params: Record<string, string> } | { allowed: string[] } {
    const allowed: string[] = [];
    for (const route of this.routes) {
      const m = route.regex.exec(path);
      if (!m) continue;
      if (route.method !== method) {
        allowed.push(route.method);
        continue;
      }
      const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      return { route, params };
    }
    return { allowed };
  }

  async dispatch(platform: Platform, req: Omit<ArmRequest, 'params'>): Promise<ArmResponse> {
    const found = this.match(req.method, req.path);
    if ('allowed' in found) {
      if (found.allowed.length > 0) {
        throw new ArmHttpError(405, 'MethodNotAllowed', `The method '${req.method}' is not allowed on '${req.path}'; it answers ${[...new Set(found.allowed)].join(', ')}.`);
      }
      throw new ArmHttpError(
        404,
        'InvalidResourceType',
        `The resource type of '${req.path}' is not served by this emulator (docs/azure.md lists the operations it models).`,
      );
    }
    checkApiVersion(found.route.provider, found.route.type, req.query['api-version']);
    // ARM authenticates before it looks anything up: no token is 401 whatever the path names.
    // (The token itself is checked by the platform's command bus, on the call the handler makes.)
    if (!req.token) throw errors.authenticationFailed(`${req.method} ${found.route.type}`);
    return found.route.handle({ ...req, params: found.params }, platform);
  }
}
