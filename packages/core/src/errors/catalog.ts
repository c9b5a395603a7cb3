import { SimError } from './sim-error';
import type { AuthorizationEvaluation } from '../rbac/authorize';

/**
 * The error catalog: every SimError the simulator raises is built here, so codes and
 * wording stay consistent and a message always says what was expected and what came.
 * Codes copy Azure's where Azure has one (docs/scenarios.md lists those a step may expect).
 */
export const errors = {
  // ---- S1.1 / S1.2 authentication -------------------------------------------------------
  mfaRequired: (principal: string) =>
    new SimError(
      'AADSTS50076',
      `AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, ` +
        `you must use multi-factor authentication to access this resource. Principal '${principal}' signed in without a second factor; ` +
        `the directory requires one (S1.1).`,
      { status: 400, details: { principal } },
    ),
  unknownPrincipal: (principal: string, known: readonly string[]) =>
    new SimError(
      'AADSTS50034',
      `AADSTS50034: The user account '${principal}' does not exist in the directory. Known principals: ${known.join(', ') || '(none)'}.`,
      { status: 400, details: { principal } },
    ),
  unknownClient: (clientId: string, tenantId: string) =>
    new SimError(
      'AADSTS700016',
      `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenantId}'. A client id is a service principal's appId, or its name when the tenant file gives none.`,
      { status: 400, details: { clientId } },
    ),
  invalidClientSecret: (clientId: string) =>
    new SimError('AADSTS7000215', `AADSTS7000215: Invalid client secret provided for application '${clientId}'.`, { status: 401, details: { clientId } }),
  invalidUserCredentials: (username: string) =>
    new SimError('AADSTS50126', `AADSTS50126: Error validating credentials due to invalid username or password (user '${username}').`, {
      status: 400,
      details: { principal: username },
    }),
  authenticationFailed: (what: string) =>
    new SimError('AuthenticationFailed', `Authentication failed: no access token was presented for ${what}. Sign in first (S1.2).`, {
      status: 401,
    }),
  invalidToken: (why: string) =>
    new SimError('InvalidAuthenticationToken', `The access token is invalid: ${why}.`, { status: 401, details: { why } }),
  expiredToken: (expiredAt: string, now: string) =>
    new SimError(
      'ExpiredAuthenticationToken',
      `The access token expired at ${expiredAt}; the time is now ${now}. Request a new token.`,
      { status: 401, details: { expiredAt, now } },
    ),

  // ---- S2 authorization -------------------------------------------------------------------
  authorizationFailed: (principal: string, action: string, scope: string, why: string, evaluation?: AuthorizationEvaluation) =>
    new SimError(
      'AuthorizationFailed',
      `The client '${principal}' does not have authorization to perform action '${action}' over scope '${scope}': ${why}.`,
      { status: 403, details: { principal, action, scope, why, ...(evaluation ? { evaluation } : {}) } },
    ),
  managedIdentityAccessDenied: (workspace: string, resource: string, operation: string) =>
    new SimError(
      'ManagedIdentityAccessDenied',
      `The managed identity of workspace '${workspace}' has no access to its ${resource} (the grant was revoked), so '${operation}' ` +
        `cannot proceed. Run resyncKeys on the workspace to restore the identity's access (S2.5).`,
      { status: 403, details: { workspace, resource, operation } },
    ),

  forbidden: (service: string, resource: string, principal: string) =>
    new SimError('Forbidden', `${service} '${resource}' refused principal '${principal}': it holds no grant there.`, {
      status: 403,
      details: { service, resource, principal },
    }),

  // ---- resources ----------------------------------------------------------------------------
  notFound: (kind: string, name: string, where?: string) =>
    new SimError('ResourceNotFound', `The ${kind} '${name}' was not found${where ? ` in ${where}` : ''}.`, {
      status: 404,
      details: { kind, name },
    }),
  conflict: (message: string, details: Record<string, unknown> = {}) =>
    new SimError('Conflict', message, { status: 409, details }),
  badRequest: (message: string, details: Record<string, unknown> = {}) =>
    new SimError('BadRequest', message, { status: 400, details }),
  deploymentFailed: (resource: string, reason: string) =>
    new SimError(
      'DeploymentFailed',
      `The deployment failed: provisioning the ${resource} failed (${reason}); every resource created before it was removed.`,
      { status: 409, details: { resource, reason } },
    ),
  webserviceFailed: (service: string, reason: string) =>
    new SimError(
      'DeploymentFailed',
      `Web service '${service}' failed to deploy (status Failed): ${reason}. Its replicas were removed; deploy it again, or delete it.`,
      { status: 409, details: { service, reason } },
    ),
  serviceUnavailable: (service: string, region: string) =>
    new SimError('ServiceUnavailable', `${service} in region '${region}' is unavailable.`, {
      status: 503,
      retryable: true,
      details: { service, region },
    }),
  storageAuthenticationFailed: (account: string) =>
    new SimError(
      'AuthenticationFailed',
      `Server failed to authenticate the request to storage account '${account}': the account key presented is not one of its current keys (S4.3).`,
      { status: 403, details: { account } },
    ),

  vmLoginFailed: (vm: string, username: string, why: string) =>
    new SimError(
      'AuthenticationFailed',
      `The VM '${vm}' refused the password login as '${username}': ${why}. Attaching a VM needs its admin username and password, ` +
        `used once to authorize the platform's own key and kept nowhere (S6.2).`,
      { status: 401, details: { vm, username } },
    ),
  // ---- S3.1 virtual networks -------------------------------------------------------------------
  invalidVnetName: (vnet: string, why: string) =>
    new SimError(
      'InvalidResourceName',
      `The virtual network name '${vnet}' is invalid: ${why}. A VNet name has 2 to 64 characters: letters, digits, '_', '.' and '-', beginning with a letter or digit and ending with a letter, digit or '_'.`,
      { status: 400, details: { vnet, why } },
    ),
  vnetMismatch: (vnet: string, member: string, what: 'subscription' | 'region', vnetHas: string, memberHas: string) =>
    new SimError(
      'InvalidVirtualNetwork',
      `${member} cannot join virtual network '${vnet}': the VNet is in ${what} '${vnetHas}', ${member} in '${memberHas}'. Compute joins only a VNet of its own subscription and region (S3.1).`,
      { status: 400, details: { vnet, member, [what]: memberHas } },
    ),
  vnetUnavailable: (vnet: string, why: string) =>
    new SimError('VnetUnavailable', `The virtual network '${vnet}' cannot be joined: ${why}.`, { status: 409, details: { vnet, why } }),
  vmStartFailed: (vm: string, why: string) =>
    new SimError('VmStartFailed', `The VM '${vm}' could not be started: ${why}.`, { status: 500, details: { vm, why } }),

  imageCreationFailed: (image: string, reason: string) =>
    new SimError('ImageBuildFailed', `Image '${image}' failed: ${reason}.`, { status: 400, details: { image, reason } }),
  // S8.3 managed step 1 / S8.5: an environment's dependencies are npm package specs, installed when the image is built.
  invalidDependency: (spec: string, why: string) =>
    new SimError('BadRequest', `The environment dependency '${spec}' is not an npm package spec: ${why}. Dependencies are installed from the npm registry: name, name@version or name@range (e.g. ms@2.1.3).`, {
      status: 400,
      details: { spec, why },
    }),
  environmentBuildFailed: (reason: string, packageName?: string) =>
    new SimError('EnvironmentBuildFailed', `EnvironmentBuildFailed: installing the environment's dependencies failed: ${reason}`, {
      status: 400,
      details: { reason, ...(packageName ? { package: packageName } : {}) },
    }),
  timeout: (what: string, ms: number, state: string) =>
    new SimError('Timeout', `${what} did not finish within ${ms} ms; it is ${state}.`, { status: 408, retryable: true, details: { what, ms, state } }),

  // ---- event store --------------------------------------------------------------------------
  wrongExpectedVersion: (stream: string, expected: number | string, actual: number) =>
    new SimError(
      'WrongExpectedVersion',
      `Append to stream '${stream}' expected version ${expected} but the stream is at version ${actual}; nothing was written.`,
      { status: 409, retryable: true, details: { stream, expected, actual } },
    ),
  storeUnreadable: (file: string, why: string) =>
    new SimError('StoreUnreadable', `The event store '${file}' cannot be opened: ${why}. Nothing was changed.`, {
      status: 500,
      details: { file, why },
    }),
  storeSchemaTooNew: (file: string, found: number, supported: number) =>
    new SimError(
      'StoreSchemaTooNew',
      `The event store '${file}' was written by a newer amlsim (schema ${found}; this version reads up to ${supported}). ` +
        `Upgrade amlsim or choose another --data-dir. Nothing was changed.`,
      { status: 500, details: { file, found, supported } },
    ),
} as const;
