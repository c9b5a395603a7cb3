import { randomUUID } from 'node:crypto';
import { SimError } from '@amlsim/core';
import type { Platform } from '@amlsim/platform';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The scopes a token for ARM may be asked with (the v2 `.default` and the v1 resource). */
const ARM_SCOPES = ['https://management.azure.com/.default', 'https://management.core.windows.net//.default', 'https://management.azure.com//.default'];
const ARM_RESOURCES = ['https://management.azure.com/', 'https://management.core.windows.net/', 'https://management.azure.com'];

/** Azure AD's OAuth error body (what MSAL reads: error, error_description with the AADSTS code, error_codes). */
const oauthError = (reply: FastifyReply, status: number, error: string, description: string) => {
  const code = /^AADSTS(\d+)/.exec(description)?.[1];
  return reply
    .code(status)
    .header('cache-control', 'no-store')
    .send({
      error,
      error_description: description,
      ...(code ? { error_codes: [Number(code)] } : {}),
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
    });
};

/** Which OAuth error an AADSTS code is (RFC 6749 §5.2 as Azure AD uses it). */
const oauthErrorOf = (e: SimError): { status: number; error: string } => {
  if (e.code === 'AADSTS7000215') return { status: 401, error: 'invalid_client' };
  if (e.code === 'AADSTS700016') return { status: 400, error: 'unauthorized_client' };
  if (e.code === 'AADSTS50076') return { status: 400, error: 'interaction_required' };
  return { status: 400, error: 'invalid_grant' };
};

/**
 * The simulated Azure AD's endpoints the Azure identity libraries ask for (S1.1): the OpenID
 * metadata of the tenant (v2 and v1), the instance-discovery answer, and the token endpoint
 * (v2 and v1) with the client-credentials grant (a service principal's client secret) and the
 * resource-owner password grant (a user's password, under the tenant's MFA rule). A token is
 * minted by the directory exactly as the scenario runner's signIn mints it, with the same events.
 */
export function registerAadRoutes(app: FastifyInstance, platform: Platform, authority: () => string): void {
  const tenantId = platform.directory.tenantId;
  const knownTenant = (t: string) => t === tenantId || t === 'organizations' || t === 'common';
  const metadata = (tenant: string, v2: boolean) => {
    const base = `${authority()}/${tenantId}`;
    return {
      token_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      jwks_uri: `${authority()}/${tenantId}/discovery${v2 ? '/v2.0' : ''}/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['ES256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: v2 ? `${authority()}/${tenantId}/v2.0` : platform.directory.issuer,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${authority()}/${tenantId}/openid/userinfo`,
      authorization_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/authorize`,
      device_authorization_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2${v2 ? '/v2.0' : ''}/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'name', 'oid', 'tid', 'amr'],
      tenant_region_scope: 'EU',
      cloud_instance_name: 'amlsim.local',
      cloud_graph_host_name: '127.0.0.1',
      msgraph_host: '127.0.0.1',
      ...(tenant !== tenantId ? { tenant_requested: tenant } : {}),
    };
  };
  const unknownTenant = (reply: FastifyReply, tenant: string) =>
    oauthError(reply, 400, 'invalid_tenant', `AADSTS90002: Tenant '${tenant}' not found. This authority serves the tenant '${tenantId}' only.`);

  for (const v2 of [true, false]) {
    app.get<{ Params: { tenant: string } }>(`/:tenant${v2 ? '/v2.0' : ''}/.well-known/openid-configuration`, (req, reply) =>
      knownTenant(req.params.tenant) ? reply.send(metadata(req.params.tenant, v2)) : unknownTenant(reply, req.params.tenant),
    );
    app.get<{ Params: { tenant: string } }>(`/:tenant/discovery${v2 ? '/v2.0' : ''}/keys`, (req, reply) =>
      knownTenant(req.params.tenant) ? reply.send({ keys: [platform.directory.publicJwk()] }) : unknownTenant(reply, req.params.tenant),
    );
    app.post<{ Params: { tenant: string }; Body: Record<string, string> }>(`/:tenant/oauth2${v2 ? '/v2.0' : ''}/token`, async (req, reply) => {
      if (!knownTenant(req.params.tenant)) return unknownTenant(reply, req.params.tenant);
      const form = req.body ?? {};
      // A client may put its credentials in an HTTP Basic header instead of the form.
      const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const [basicId, basicSecret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent) : [];
      const scopes = (form['scope'] ?? '').split(' ').filter(Boolean);
      const resource = form['resource'];
      const forArm = v2 ? scopes.some((s) => ARM_SCOPES.includes(s)) : resource !== undefined && ARM_RESOURCES.includes(resource);
      if (!forArm) {
        return oauthError(
          reply,
          400,
          'invalid_scope',
          `AADSTS70011: The provided request must include a 'scope' input parameter naming Azure Resource Manager (${ARM_SCOPES[0]}); got '${v2 ? scopes.join(' ') : (resource ?? '')}'. This authority issues ARM tokens only.`,
        );
      }
      try {
        const grant = form['grant_type'];
        let got: { token: string; expiresInS: number };
        if (grant === 'client_credentials') {
          const clientId = form['client_id'] ?? basicId;
          const secret = form['client_secret'] ?? basicSecret;
          if (!clientId) return oauthError(reply, 400, 'invalid_request', "AADSTS900144: The request body must contain the parameter: 'client_id'.");
          if (!secret) return oauthError(reply, 401, 'invalid_client', "AADSTS7000218: The request body must contain the parameter: 'client_assertion' or 'client_secret'.");
          got = await platform.directory.signInWithClientSecret(clientId, secret);
        } else if (grant === 'password') {
          const username = form['username'];
          const password = form['password'];
          if (!username || !password) return oauthError(reply, 400, 'invalid_request', "AADSTS900144: The request body must contain the parameters 'username' and 'password'.");
          got = await platform.directory.signInWithPassword(username, password);
        } else {
          return oauthError(reply, 400, 'unsupported_grant_type', `AADSTS70003: The app requested an unsupported grant type '${grant ?? ''}'; this authority supports client_credentials and password.`);
        }
        return reply
          .header('cache-control', 'no-store')
          .send({ token_type: 'Bearer', expires_in: got.expiresInS, ext_expires_in: got.expiresInS, access_token: got.token, ...(v2 ? {} : { resource: ARM_RESOURCES[0] }) });
      } catch (e) {
        if (!(e instanceof SimError)) throw e;
        const { status, error } = oauthErrorOf(e);
        return oauthError(reply, status, error, platform.context.secrets.redact(e.message));
      }
    });
  }
  // MSAL's instance discovery (when a client does not turn it off): this authority is its own instance.
  app.get('/common/discovery/instance', (_req, reply) =>
    reply.send({
      tenant_discovery_endpoint: `${authority()}/${tenantId}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: '127.0.0.1', preferred_cache: '127.0.0.1', aliases: ['127.0.0.1'] }],
    }),
  );
}
