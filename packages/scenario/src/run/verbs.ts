import { readFileSync } from 'node:fs';
import { errors, type RunStatus } from '@amlsim/core';
import type { Platform, ScopeRef } from '@amlsim/platform';
import type { Step, VerbArgs } from '../parse';

/** What a verb handler gets: the platform, the acting principal's token, and the step. */
export type VerbContext = {
  platform: Platform;
  step: Step;
  /** The ARM token of the acting principal (undefined: that principal has not signed in). */
  token: string | undefined;
  /** Remember the token a signIn produced. */
  rememberToken(principal: string, token: string): void;
  /**
   * What an earlier step made, named by the step's id — or, for `made` (registerModel,
   * createImage, deployWebservice), by the `name` that step gave it, as the SDKs name resources.
   * The parser checked the reference is one or the other, never both (parse/references.ts).
   */
  resolve(ref: string, made?: 'registerModel' | 'createImage' | 'deployWebservice'): string;
  /** A path of the scenario, relative to the scenario file. */
  path(relative: string): string;
  /** The last web-service token a getToken step got for a service (kept by the runner, never shown). */
  rememberServiceToken(service: string, token: string): void;
  serviceToken(service: string): string | undefined;
};

type Handler<V extends keyof VerbArgs> = (ctx: VerbContext, args: VerbArgs[V]) => Promise<unknown>;

/** `dependencies` is a list of packages, or a requirements-style file (one package a line). */
const dependencyList = (path: (p: string) => string, deps: string | string[]): string[] =>
  typeof deps === 'string'
    ? readFileSync(path(deps), 'utf8')
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean)
    : deps;

const scopeOf = (args: { workspace?: string | undefined; resourceGroup?: string | undefined; subscription?: string | undefined }): ScopeRef => {
  if (args.workspace) return { workspace: args.workspace };
  if (args.resourceGroup) return { resourceGroup: args.resourceGroup, ...(args.subscription ? { subscription: args.subscription } : {}) };
  return { subscription: args.subscription! };
};

/**
 * The verbs this version runs, each a thin call into the client-facing API: a scenario step
 * goes through exactly the authentication and authorization a CLI or SDK call would.
 */
export const VERB_HANDLERS: { [V in keyof VerbArgs]?: Handler<V> } = {
  signIn: async (ctx, args) => {
    const token = await ctx.platform.directory.signIn(args.principal, { mfa: args.mfa });
    ctx.rememberToken(args.principal, token);
    return { principal: args.principal };
  },
  createWorkspace: (ctx, args) => ctx.platform.arm.createWorkspace(ctx.token, args),
  assignRole: (ctx, args) => ctx.platform.arm.assignRole(ctx.token, { principal: args.principal, role: args.role, scope: scopeOf(args) }),
  defineRole: (ctx, args) =>
    ctx.platform.arm.defineRole(ctx.token, {
      name: args.name,
      actions: args.actions,
      notActions: args.notActions,
      assignableScopes: args.assignableScopes.map((s) => (typeof s === 'string' ? s : scopeOf(s))) as ScopeRef[],
    }),
  upgradeWorkspace: (ctx, args) => ctx.platform.arm.upgradeWorkspace(ctx.token, args),
  revokeIdentityAccess: (ctx, args) => ctx.platform.arm.revokeIdentityAccess(ctx.token, args),
  resyncKeys: (ctx, args) => ctx.platform.arm.resyncKeys(ctx.token, args),
  regenerateStorageKey: (ctx, args) => ctx.platform.arm.regenerateStorageKey(ctx.token, args),
  attachDatastore: (ctx, args) => ctx.platform.arm.attachDatastore(ctx.token, args),
  uploadToDatastore: (ctx, args) =>
    ctx.platform.ml.uploadToDatastore(ctx.token, { workspace: args.workspace, datastore: args.datastore, source: ctx.path(args.source), ...(args.path !== undefined ? { path: args.path } : {}) }),
  queryActivityLog: (ctx, args) => ctx.platform.arm.queryActivityLog(ctx.token, args),
  queryWorkspaceMetrics: (ctx, args) => ctx.platform.arm.queryWorkspaceMetrics(ctx.token, args),
  createCompute: (ctx, args) => ctx.platform.ml.createCompute(ctx.token, args),
  createVm: (ctx, args) => ctx.platform.vms.createVm(ctx.token, args),
  attachCompute: (ctx, args) => ctx.platform.vms.attachCompute(ctx.token, args),
  snapshot: (ctx, args) => ctx.platform.ml.snapshot(ctx.token, { ...args, source: ctx.path(args.source) }),
  submitRun: (ctx, args) =>
    ctx.platform.ml.submitRun(ctx.token, {
      workspace: args.workspace,
      experiment: args.experiment,
      compute: args.compute,
      ...(args.source ? { source: ctx.path(args.source) } : {}),
      ...(args.snapshot ? { snapshotId: ctx.resolve(args.snapshot) } : {}),
      script: args.script,
      ...(args.args ? { args: args.args } : {}),
      ...(args.env ? { env: args.env } : {}),
      ...(args.environment?.dependencies ? { dependencies: args.environment.dependencies } : {}),
      // S4.2: datastore data the run's target sees (inputs.<name>.{ datastore, path, mode }).
      ...(args.inputs
        ? {
            inputs: Object.fromEntries(
              Object.entries(args.inputs).map(([name, i]) => [name, { datastore: i.datastore, mode: i.mode, ...(i.path !== undefined ? { path: i.path } : {}) }]),
            ),
          }
        : {}),
    }),
  waitForRun: (ctx, args) =>
    ctx.platform.ml.waitForRun(ctx.token, {
      runId: ctx.resolve(args.run),
      timeoutMs: args.timeout ?? 180_000,
      ...(args.until ? { until: args.until as RunStatus } : {}),
    }),
  cancelRun: (ctx, args) => ctx.platform.ml.cancelRun(ctx.token, { runId: ctx.resolve(args.run) }),
  getMetrics: (ctx, args) => ctx.platform.ml.getMetrics(ctx.token, { runId: ctx.resolve(args.run) }),
  getRunStatusHistory: (ctx, args) => ctx.platform.ml.getRunStatusHistory(ctx.token, { runId: ctx.resolve(args.run) }),
  registerModel: (ctx, args) =>
    ctx.platform.models.registerModel(ctx.token, { workspace: args.workspace, name: args.name, path: ctx.path(args.path), ...(args.tags ? { tags: args.tags } : {}) }),
  createImage: (ctx, args) =>
    ctx.platform.images.createImage(ctx.token, {
      workspace: args.workspace,
      name: args.name,
      models: args.models.map((ref) => ctx.resolve(ref, 'registerModel')),
      scoringScript: ctx.path(args.scoringScript),
      ...(args.dependencies ? { dependencies: dependencyList(ctx.path, args.dependencies) } : {}),
    }),
  deployWebservice: (ctx, args) =>
    ctx.platform.webservices.deploy(ctx.token, {
      workspace: args.workspace,
      name: args.name,
      imageId: ctx.resolve(args.image, 'createImage'),
      target: args.target,
      ...(args.authEnabled !== undefined ? { authEnabled: args.authEnabled } : {}),
      ...(args.tokenAuthEnabled !== undefined ? { tokenAuthEnabled: args.tokenAuthEnabled } : {}),
      ...(args.replicas !== undefined ? { replicas: args.replicas } : {}),
      ...(args.tls !== undefined ? { tls: args.tls } : {}),
      ...(args.cpuCores !== undefined ? { cpuCores: args.cpuCores } : {}),
      ...(args.memoryGb !== undefined ? { memoryGb: args.memoryGb } : {}),
      ...(args.compute !== undefined ? { compute: args.compute } : {}),
      ...(args.vnet !== undefined ? { vnet: args.vnet } : {}),
    }),
  // Keys are secrets: the step's result (shown in reports) carries only that it got them.
  getKeys: async (ctx, args) => {
    await ctx.platform.webservices.getKeys(ctx.token, { service: ctx.resolve(args.service, 'deployWebservice') });
    return { keys: ['primaryKey', 'secondaryKey'] };
  },
  // S1.6: the token goes to the runner (for `callWebservice { auth: token }`); the result shows refreshBy only.
  getToken: async (ctx, args) => {
    const service = ctx.resolve(args.service, 'deployWebservice');
    const got = await ctx.platform.webservices.getToken(ctx.token, { service });
    ctx.rememberServiceToken(service, got.token);
    return { refreshBy: got.refreshBy, durationMs: got.durationMs };
  },
  regenKey: (ctx, args) => ctx.platform.webservices.regenKey(ctx.token, { service: ctx.resolve(args.service, 'deployWebservice'), key: args.key }),
  deleteWebservice: (ctx, args) => ctx.platform.webservices.delete(ctx.token, { service: ctx.resolve(args.service, 'deployWebservice') }),
  queryAppInsights: (ctx, args) => ctx.platform.webservices.queryAppInsights(ctx.token, { workspace: args.workspace, ...(args.service ? { service: ctx.resolve(args.service, 'deployWebservice') } : {}) }),
  callWebservice: async (ctx, args) => {
    const service = ctx.resolve(args.service, 'deployWebservice');
    // S1.4/S1.5: the caller presents a key (fetched as the acting principal), nothing, or a literal.
    let authorization: string | undefined;
    if (args.auth === 'primary' || args.auth === 'secondary') {
      const keys = await ctx.platform.webservices.getKeys(ctx.token, { service });
      authorization = `Bearer ${args.auth === 'primary' ? keys.primaryKey : keys.secondaryKey}`;
    } else if (args.auth === 'token') {
      const token = ctx.serviceToken(service);
      if (!token) throw errors.badRequest(`callWebservice { auth: token } needs an earlier getToken step for this service.`);
      authorization = `Bearer ${token}`;
    } else if (args.auth !== undefined && args.auth !== 'none') {
      authorization = `Bearer ${args.auth}`;
    }
    return ctx.platform.callWebservice(service, { data: args.data, ...(authorization ? { authorization } : {}), ...(args.userAgent ? { userAgent: args.userAgent } : {}) });
  },
  advanceClock: (ctx, ms) => ctx.platform.advanceClock(ms),
  sleep: async (ctx, ms) => {
    await ctx.platform.context.clock.sleep(ms);
  },
  fault: async (ctx, args) => {
    if ('failProvisioning' in args && args.failProvisioning) return ctx.platform.injectFault('failProvisioning', args.failProvisioning);
    if ('regionOutage' in args && args.regionOutage) return ctx.platform.injectFault('regionOutage', args.regionOutage);
    if ('regionRestored' in args && args.regionRestored) return ctx.platform.injectFault('regionRestored', args.regionRestored);
    if ('killContainer' in args && args.killContainer) {
      const on = args.killContainer;
      return 'service' in on ? ctx.platform.injectFault('killContainer', ctx.resolve(on.service, 'deployWebservice'), 'service') : ctx.platform.injectFault('killContainer', ctx.resolve(on.run));
    }
    if ('freezeContainer' in args && args.freezeContainer) return ctx.platform.injectFault('freezeContainer', ctx.resolve(args.freezeContainer.run));
    throw errors.badRequest(`fault ${JSON.stringify(args)} is not implemented in this version`);
  },
};
