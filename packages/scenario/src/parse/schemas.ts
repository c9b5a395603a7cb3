import { z } from 'zod';
import { positiveDurationSchema } from './durations';
import { isRecord, nonEmpty, vocabulary, type CustomIssueParams } from './rules';
import { nearest } from './suggest';

/** Regions a workspace or compute may be placed in (a typo is caught, with a suggestion). */
export const KNOWN_REGIONS = [
  'eastus',
  'eastus2',
  'westus',
  'westus2',
  'centralus',
  'northeurope',
  'westeurope',
  'uksouth',
  'francecentral',
  'germanywestcentral',
  'japaneast',
  'australiaeast',
  'southeastasia',
  'canadacentral',
  'brazilsouth',
] as const;

/**
 * Error codes docs/scenarios.md promises a step may expect, plus those the core error catalog
 * raises. Other well-shaped codes are accepted; a near-miss of one of these is a typo.
 */
export const KNOWN_ERROR_CODES = [
  'AADSTS50076',
  'AuthenticationFailed',
  'InvalidAuthenticationToken',
  'ExpiredAuthenticationToken',
  'AuthorizationFailed',
  'ResourceNotFound',
  'Conflict',
  'BadRequest',
  'DeploymentFailed',
  'ServiceUnavailable',
  'SnapshotTooLarge',
  // From packages/core's error catalog:
  'AADSTS50034',
  'ManagedIdentityAccessDenied',
] as const;

/** Run statuses of the platform, for near-miss detection in `getRunStatusHistory` expectations. */
export const KNOWN_RUN_STATUSES = [
  'NotStarted',
  'Queued',
  'Preparing',
  'Provisioning',
  'Starting',
  'Running',
  'Finalizing',
  'CancelRequested',
  'NotResponding',
  'Completed',
  'Failed',
  'Canceled',
] as const;

/** Built-in RBAC roles; any other role name is a custom role (see `defineRole`). */
export const BUILT_IN_ROLES = ['Owner', 'Contributor', 'Reader'] as const;

export const PASCAL_CASE = /^[A-Z][A-Za-z0-9]*$/;

const NAME_HINT = "names start with a letter and use letters, digits, '-' and '_'";

/** A principal declared in `tenant.principals`. */
export const principalNameSchema = z.string().regex(/^[a-z][a-z0-9-_]*$/i, { error: NAME_HINT });

/** A step `id`: other steps refer to what the step made by it. */
export const stepIdSchema = z.string().regex(/^[a-z][a-z0-9-_]*$/i, { error: NAME_HINT });

/** Names of Azure resources (workspace, resource group, compute, model, service, …). */
export const resourceNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-_.]*$/i, { error: "expected a name of letters, digits, '-', '_' and '.'" });

/** A name that refers to something declared or made elsewhere; checked by `references.ts`. */
export const referenceSchema = z.string().min(1);

export const regionSchema = z.enum(KNOWN_REGIONS);

export const scalarSchema = z.union([z.string(), z.number(), z.boolean()]);

export const errorCodeSchema = vocabulary({
  known: KNOWN_ERROR_CODES,
  noun: 'error code',
  shape: /^(?:[A-Z][A-Za-z0-9]*|AADSTS\d+)$/,
  shapeHint: 'expected a PascalCase error code such as AuthorizationFailed, or AADSTS<number>',
  // AADSTS codes are numbers: 50079 next to 50076 is a different code, not a typo.
  typoExempt: /^AADSTS\d+$/,
});

export const runStatusSchema = vocabulary({
  known: KNOWN_RUN_STATUSES,
  noun: 'run status',
  shape: PASCAL_CASE,
  shapeHint: 'expected a PascalCase run status such as Running',
});

/**
 * A principal: its kind, and for the token endpoint of `amlsim serve` (docs/azure.md) a service
 * principal's client secret and client id (`appId`, default its name), or a user's password.
 */
const tenantPrincipalSchema = z
  .strictObject({
    kind: z.enum(['user', 'servicePrincipal']),
    appId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected a client id: letters, digits, ".", "_" or "-" (e.g. a GUID)' }).optional(),
    clientSecret: z.string().min(8, { error: 'a client secret has at least 8 characters' }).optional(),
    password: z.string().min(8, { error: 'a password has at least 8 characters' }).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.kind === 'user' && (p.clientSecret !== undefined || p.appId !== undefined)) {
      ctx.addIssue({ code: 'custom', path: [p.clientSecret !== undefined ? 'clientSecret' : 'appId'], message: 'only a servicePrincipal has a client secret and an appId; a user signs in with a password' });
    }
    if (p.kind === 'servicePrincipal' && p.password !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'a servicePrincipal signs in with a clientSecret, not a password' });
    }
  });

export const tenantSchema = z.strictObject({
  mfa: z.enum(['required', 'optional']).default('optional'),
  principals: nonEmpty(z.record(principalNameSchema, tenantPrincipalSchema), 'alice: { kind: user }'),
});

export const subscriptionsSchema = nonEmpty(
  z.record(resourceNameSchema, z.strictObject({ owners: z.array(referenceSchema).min(1) })),
  "sub-1: { owners: [alice] }",
);

export const optionsSchema = z.strictObject({
  runTokenTtl: positiveDurationSchema.default(10 * 60_000),
  clock: z.enum(['real', 'virtual']).default('real'),
  rbac: z.enum(['enforce', 'soft', 'off']).default('enforce'),
  driver: z.enum(['docker', 'process']).optional(),
});

/** Matches an event whose `type` equals and whose data has each other key with that value. */
export const eventMatcherSchema = z
  .object({ type: z.string().regex(PASCAL_CASE, { error: 'expected a PascalCase event type such as RunCompleted' }) })
  .catchall(scalarSchema)
  .superRefine(
    (matcher, ctx) => {
      // Data keys are free, so `typ:` is not "unknown"; without `type` it is surely a typo.
      if ('type' in matcher) return;
      for (const key of Object.keys(matcher).filter((k) => nearest(k, ['type']) !== undefined)) {
        const params: CustomIssueParams = { kind: 'misspelledKey', suggestion: 'type' };
        ctx.addIssue({ code: 'custom', message: 'misspelled', path: [key], input: matcher, params });
      }
    },
    { when: (payload) => isRecord(payload.value) },
  );

/** A tenant file of `amlsim serve --tenant` (docs/azure.md): a scenario's tenant and subscriptions alone. */
export const tenantFileSchema = z.strictObject({
  tenant: tenantSchema,
  subscriptions: subscriptionsSchema.optional(),
});

/** Checked after the last step. */
export const scenarioExpectSchema = z.strictObject({
  order: z.array(eventMatcherSchema).default([]),
  never: z.array(eventMatcherSchema).default([]),
  count: z.array(z.strictObject({ event: eventMatcherSchema, times: z.int().min(0) })).default([]),
});

/**
 * The file's top level. Steps are only checked to be a non-empty list here: each is validated
 * on its own (`steps.ts`), because "exactly one verb key" is not something a zod union can
 * report well.
 */
export const scenarioFileSchema = z.strictObject({
  name: z.string().min(1),
  cites: z.array(z.string().regex(/^S\d+\.\d+$/, { error: 'expected a requirement id such as S8.3' })).default([]),
  tenant: tenantSchema,
  subscriptions: subscriptionsSchema.optional(),
  options: optionsSchema.prefault({}),
  steps: z.array(z.unknown()).min(1),
  expect: scenarioExpectSchema.prefault({}),
});
