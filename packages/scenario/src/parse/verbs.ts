import { z } from 'zod';
import { RUN_INPUT_MODES, vnetNameProblem } from '@amlsim/core';
import { durationSchema, MAX_DURATION_SECONDS } from './durations';
import { exactlyOneOf, isRecord, type CustomIssueParams } from './rules';
import {
  errorCodeSchema,
  referenceSchema,
  regionSchema,
  resourceNameSchema,
  runStatusSchema,
  scalarSchema,
} from './schemas';

// Field shorthands. Names that refer to something made elsewhere (a workspace, a step id) are
// plain strings here; `references.ts` checks they exist, with suggestions.
const name = resourceNameSchema;
const ref = referenceSchema;
const text = z.string().min(1);
const workspace = { workspace: ref };
const service = { service: ref };
const run = { run: ref };
const stringList = z.array(text);
/** S4.2: a path inside a datastore (a blob-name prefix): '/'-separated, never leaving it with '..'. */
const datastorePath = z.string().refine((p) => !p.split('/').includes('..'), { error: "expected a path inside the datastore ('/'-separated, without '..')" });
/** S3.1: a virtual network, by Azure's name rule (the platform checks it again: InvalidResourceName). */
const vnet = z.string().refine((n) => vnetNameProblem(n) === undefined, {
  error: (issue) => `expected a virtual network name: ${typeof issue.input === 'string' ? vnetNameProblem(issue.input) : 'a string'} (2 to 64 letters, digits, '_', '.' or '-')`,
});
/** Command-line arguments and environment values are strings to the process that gets them. */
const scalarAsString = scalarSchema.transform(String);
const scopeKeys = ['workspace', 'resourceGroup', 'subscription'] as const;
const scopeShape = { workspace: ref.optional(), resourceGroup: ref.optional(), subscription: ref.optional() };

/** Resources whose provisioning a `failProvisioning` fault can make fail. */
export const PROVISIONED_RESOURCES = ['keyVault', 'storage', 'registry', 'appInsights', 'identity'] as const;

/**
 * Argument schemas of every verb of the scenario language (docs/scenarios.md, a public contract:
 * add verbs and optional arguments, never rename). Each normalizes what it accepts, e.g.
 * `signIn: alice` becomes `{ principal: 'alice', mfa: false }`.
 */
export const verbArgSchemas = {
  // ---- identity and access (S1.1, S2) -------------------------------------------------------
  signIn: z
    .union([ref, z.strictObject({ principal: ref, mfa: z.boolean().default(false) })])
    .transform((v) => (typeof v === 'string' ? { principal: v, mfa: false } : v)),
  createWorkspace: z.strictObject({
    name,
    resourceGroup: name,
    region: regionSchema,
    /** Filled with the first declared subscription when absent. */
    subscription: ref.optional(),
    edition: z.enum(['basic', 'enterprise']).default('basic'),
    customerManagedKey: z.boolean().default(false),
  }),
  assignRole: exactlyOneOf(z.strictObject({ principal: ref, role: text, ...scopeShape }), scopeKeys),
  defineRole: z.strictObject({
    name: text,
    actions: stringList.min(1),
    notActions: stringList.default([]),
    assignableScopes: z
      .array(
        z.union([
          z.string().regex(/^\/subscriptions\/[^/]+(\/.*)?$/i, {
            error: 'expected an ARM scope id such as /subscriptions/sub-1/resourceGroups/rg1',
          }),
          exactlyOneOf(z.strictObject(scopeShape), scopeKeys),
        ]),
      )
      .min(1),
  }),
  upgradeWorkspace: z.strictObject({ ...workspace, edition: z.literal('enterprise') }),
  revokeIdentityAccess: z.strictObject({
    ...workspace,
    resource: z.enum(['keyVault', 'storage', 'registry', 'workspace', 'resourceGroup']),
  }),
  resyncKeys: z.strictObject(workspace),
  regenerateStorageKey: z.strictObject({ ...workspace, key: z.enum(['key1', 'key2']) }),
  attachDatastore: z.strictObject({ ...workspace, name, container: name }),
  /** S4.2: put a file or a directory (relative to the scenario) in a datastore, under `path`. */
  uploadToDatastore: z.strictObject({ ...workspace, datastore: ref, source: text, path: datastorePath.optional() }),

  // ---- compute and training (S8.2–S8.4) -----------------------------------------------------
  createCompute: z.strictObject({
    ...workspace,
    name,
    type: z.enum(['AmlCompute', 'AKS']),
    vmSize: text.optional(),
    minNodes: z.int().min(0).optional(),
    maxNodes: z.int().min(1).optional(),
    idleSecondsBeforeScaledown: z
      .int()
      .min(0)
      .max(MAX_DURATION_SECONDS, { error: `expected at most ${MAX_DURATION_SECONDS} seconds (24 days)` })
      .optional(),
    agentCount: z.int().min(1).optional(),
    region: regionSchema.optional(),
    vnet: vnet.optional(),
  }),
  /** A user-owned VM (S8.3 unmanaged): its admin user, and password (none: it cannot be attached with one). */
  createVm: z.strictObject({
    name,
    username: text.default('azureuser'),
    password: text.optional(),
    /** S3.1: the VM's virtual network; a VM that makes a new one names its region and subscription. */
    vnet: vnet.optional(),
    region: regionSchema.optional(),
    subscription: ref.optional(),
  }),
  attachCompute: z.strictObject({
    ...workspace,
    name,
    type: z.literal('VirtualMachine'),
    vm: ref,
    username: text,
    password: text,
  }),
  snapshot: z.strictObject({ ...workspace, experiment: name, source: text }),
  submitRun: exactlyOneOf(
    z.strictObject({
      ...workspace,
      experiment: name,
      compute: ref,
      source: text.optional(),
      snapshot: ref.optional(),
      script: text,
      args: z.array(scalarAsString).optional(),
      env: z.record(z.string(), scalarAsString).optional(),
      environment: z.strictObject({ docker: z.boolean().optional(), dependencies: stringList.optional() }).optional(),
      /** S4.2: datastore data the run's target sees, by input name (AZUREML_DATAREFERENCE_<name>). */
      inputs: z
        .record(
          z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, { error: "expected an input name of letters, digits and '_', not starting with a digit (it names AZUREML_DATAREFERENCE_<name>)" }),
          z.strictObject({ datastore: ref, path: datastorePath.optional(), mode: z.enum(RUN_INPUT_MODES).default('mount') }),
        )
        .optional(),
    }),
    ['source', 'snapshot'],
  ),
  /** `until` (an amlsim addition): return once the run has reached that status instead of its end. */
  waitForRun: z.strictObject({ ...run, timeout: durationSchema.optional(), until: runStatusSchema.optional() }),
  cancelRun: z.strictObject(run),
  getMetrics: z.strictObject(run),
  getRunStatusHistory: z.strictObject(run),

  // ---- inference (S1.4–S1.6, S7.3, S8.5) ----------------------------------------------------
  registerModel: z.strictObject({ ...workspace, name, path: text, tags: z.record(z.string(), scalarAsString).optional() }),
  createImage: z.strictObject({
    ...workspace,
    name,
    models: z.array(ref).min(1),
    scoringScript: text,
    /** A conda/pip file (relative to the scenario) or a list of packages. */
    dependencies: z.union([text, stringList]).optional(),
  }),
  deployWebservice: z.strictObject({
    ...workspace,
    name,
    image: ref,
    target: z.enum(['ACI', 'AKS']),
    compute: ref.optional(),
    authEnabled: z.boolean().optional(),
    tokenAuthEnabled: z.boolean().optional(),
    replicas: z.int().min(1).optional(),
    tls: z.boolean().optional(),
    /** Per replica; the platform checks the range (BadRequest). */
    cpuCores: z.number().positive().optional(),
    memoryGb: z.number().positive().optional(),
    /** S3.1: an ACI deployment's virtual network (AKS: the cluster's). */
    vnet: vnet.optional(),
  }),
  getKeys: z.strictObject(service),
  // `key` is any string here: docs/scenarios.md shows `regenKey { key: primary }` failing BadRequest,
  // so only a step expecting success must use Primary|Secondary (checked in steps.ts).
  regenKey: z.strictObject({ ...service, key: text }),
  getToken: z.strictObject(service),
  callWebservice: z.strictObject({
    ...service,
    /** The request body, sent as JSON exactly as written; required (may be null). */
    data: z.unknown(),
    auth: text.optional(),
    userAgent: z.string().optional(),
  }),
  deleteWebservice: z.strictObject(service),
  queryAppInsights: z.strictObject({ ...workspace, service: ref.optional() }),
  queryActivityLog: z.strictObject(workspace),
  queryWorkspaceMetrics: z.strictObject(workspace),

  // ---- time and faults -----------------------------------------------------------------------
  advanceClock: durationSchema,
  sleep: durationSchema,
  fault: exactlyOneOf(
    z.strictObject({
      regionOutage: regionSchema.optional(),
      regionRestored: regionSchema.optional(),
      // a run's compute target, or a web service's first serving replica
      killContainer: z.union([z.strictObject(run), z.strictObject(service)]).optional(),
      freezeContainer: z.strictObject(run).optional(),
      failProvisioning: z.enum(PROVISIONED_RESOURCES).optional(),
    }),
    ['regionOutage', 'regionRestored', 'killContainer', 'freezeContainer', 'failProvisioning'],
  ),
} as const;

export type Verb = keyof typeof verbArgSchemas;
/** Normalized arguments of each verb, as `Step.args` holds them. */
export type VerbArgs = { [V in Verb]: z.output<(typeof verbArgSchemas)[V]> };

/** Every verb of the scenario language, in the order docs/scenarios.md lists them. */
export const VERBS = Object.keys(verbArgSchemas) as Verb[];

export const FAULT_KINDS = ['regionOutage', 'regionRestored', 'killContainer', 'freezeContainer', 'failProvisioning'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * What this version of amlsim can run. The language is wider than the implementation; a
 * scenario using the rest is rejected up front rather than failing half-way through. Extend
 * these two sets as verbs and faults land.
 */
export const IMPLEMENTED_VERBS: Set<string> = new Set<Verb>([
  'signIn',
  'createWorkspace',
  'assignRole',
  'defineRole',
  'upgradeWorkspace',
  'revokeIdentityAccess',
  'resyncKeys',
  'regenerateStorageKey',
  'attachDatastore',
  'uploadToDatastore',
  'queryActivityLog',
  'queryWorkspaceMetrics',
  'fault',
  'advanceClock',
  'sleep',
  'createCompute',
  'createVm',
  'attachCompute',
  'snapshot',
  'submitRun',
  'waitForRun',
  'cancelRun',
  'getMetrics',
  'getRunStatusHistory',
  'registerModel',
  'createImage',
  'deployWebservice',
  'getKeys',
  'regenKey',
  'callWebservice',
  'deleteWebservice',
  'queryAppInsights',
  'getToken',
]);
export const IMPLEMENTED_FAULTS: Set<string> = new Set<FaultKind>(['failProvisioning', 'killContainer', 'freezeContainer', 'regionOutage', 'regionRestored']);

// ---- step expectations -----------------------------------------------------------------------

const metricComparison = z.union([
  z.number(),
  z.string().regex(/^\s*(?:<=|>=|==|!=|<|>|~|=)?\s*-?\d+(?:\.\d+)?(?:e[+-]?\d+)?\s*$/i, {
    error: 'expected a number or a comparison such as "<0.5", ">=1" or "~0.9"',
  }),
]);

const activityEntry = z.union([
  text,
  z
    .strictObject({ operation: text.optional(), initiator: text.optional(), status: text.optional() })
    .refine((entry) => Object.keys(entry).length > 0, { error: 'expected at least one of operation, initiator, status' }),
]);

/** Keys a step's `expect` may hold when the step must succeed, per verb (none for most). */
const successKeys: { [V in Verb]?: z.core.$ZodLooseShape } = {
  waitForRun: { status: runStatusSchema.optional(), reason: text.optional() },
  getMetrics: { metrics: z.record(z.string(), metricComparison).optional() },
  getRunStatusHistory: { statuses: z.array(runStatusSchema).optional() },
  // A deployment that ends Failed is the error DeploymentFailed; these are the statuses a deploy step returns.
  deployWebservice: { status: z.enum(['Healthy', 'Unschedulable']).optional() },
  callWebservice: { httpStatus: z.int().min(100).max(599).optional(), body: z.unknown().optional() },
  queryAppInsights: { count: z.int().min(0).optional(), fields: z.record(z.string(), scalarSchema).optional() },
  queryActivityLog: { contains: z.array(activityEntry).optional(), lacks: z.array(activityEntry).optional() },
  queryWorkspaceMetrics: { metrics: z.record(z.string(), z.number()).optional() },
};

/** What a step must do: succeed (comparing verb-specific results) or fail with a code. */
export type StepExpect = { kind: 'success'; [key: string]: unknown } | { kind: 'error'; code: string };

function stepExpectSchema(verb: Verb) {
  return z
    .strictObject({ error: errorCodeSchema.optional(), ...successKeys[verb] })
    .superRefine(
      (value, ctx) => {
        const others = Object.keys(value).filter((k) => k !== 'error');
        if (value.error === undefined) return;
        for (const key of others) {
          const params: CustomIssueParams = { kind: 'exclusive', alone: 'error' };
          ctx.addIssue({ code: 'custom', message: 'exclusive', path: [key], input: value, params });
        }
      },
      { when: (payload) => isRecord(payload.value) },
    )
    .transform((value): StepExpect => {
      const { error, ...rest } = value;
      return error === undefined ? { kind: 'success', ...rest } : { kind: 'error', code: error };
    });
}

/** The schema of each verb's step `expect` (absent means `{ kind: 'success' }`). */
export const stepExpectSchemas = Object.fromEntries(VERBS.map((verb) => [verb, stepExpectSchema(verb)])) as {
  [V in Verb]: ReturnType<typeof stepExpectSchema>;
};
