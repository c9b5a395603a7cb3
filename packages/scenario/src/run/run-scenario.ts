import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { errors, isSimError, SimError, STREAMS, type EventStore, type StoredEvent } from '@amlsim/core';
import { createPlatform, PLATFORM_PRINCIPAL, realClock, virtualClock, type Platform } from '@amlsim/platform';
import { NAMED_VERBS, confinePath, widenRoots, type Scenario, type Step } from '../parse';
import { checkInvariants, type InvariantViolation } from './invariants';
import { checkOrder, describeMatcher, matches } from './matchers';
import { STEP_CHECKS } from './step-expectations';
import { VERB_HANDLERS } from './verbs';

export type StepOutcome = {
  step: Step;
  ok: boolean;
  /** What the step returned (never a secret: tokens stay inside the runner). */
  result?: unknown;
  error?: { code: string; message: string };
  /** Why the step's expectation failed. */
  mismatch?: string;
  durationMs: number;
};

export type ScenarioFailure = {
  /** The step that failed, or undefined for a scenario-level expectation or invariant. */
  step?: Step;
  what: string;
  expected: string;
  actual: string;
  /** Events near the failure, for the report. */
  around: StoredEvent[];
};

export type ScenarioResult = {
  scenario: Scenario;
  session: string;
  passed: boolean;
  steps: StepOutcome[];
  failures: ScenarioFailure[];
  invariantViolations: InvariantViolation[];
  /** Every event this scenario's session appended, in order. */
  events: StoredEvent[];
  platform: Platform;
};

export type RunScenarioOptions = {
  store: EventStore;
  /** Where the platform keeps vaults, storage and its root key. */
  dataDir: string;
  /** Called when a step starts and ends (for progress output). */
  onStep?: (step: Step, outcome?: StepOutcome) => void;
  /** Where runs execute; overrides the scenario's `options.driver` (default docker). */
  driver?: 'docker' | 'process';
  /** The Docker engine's socket, when not the standard one. */
  dockerSocket?: string;
  /** Directories besides the scenario's own (and those it was parsed with) its paths may lead into. */
  allowPaths?: string[];
  /**
   * Aborted when the simulator is interrupted (its reason: the signal's name, e.g. 'SIGINT'):
   * the platform cancels its live runs and closes (`platform.interrupt`), the step in flight
   * ends with `Interrupted` and no further step runs.
   */
  signal?: AbortSignal;
  /**
   * Awaited before each step is played (an instructor's step mode, `amlsim serve`'s player):
   * the step does not start until it resolves. Checked for `signal` after it, so aborting while
   * it waits plays no further step. A rejection ends the scenario as an error would.
   */
  beforeStep?: (step: Step) => Promise<void>;
};

/**
 * Play a scenario against a fresh simulated directory: every step through the client API,
 * then the scenario's own expectations and the global invariants. Stops at the first step
 * whose expectation fails (later steps usually depend on it) and reports it with the
 * events around it.
 */
export const runScenario = async (scenario: Scenario, options: RunScenarioOptions): Promise<ScenarioResult> => {
  // Earlier sessions' events in a shared log are not read again (a data dir's log only grows).
  const logHead = options.store.headPosition();
  const platform = await createPlatform({
    store: options.store,
    dataDir: options.dataDir,
    clock: scenario.options.clock === 'virtual' ? virtualClock() : realClock(),
    rbacMode: scenario.options.rbac,
    driver: options.driver ?? scenario.options.driver ?? 'docker',
    runTokenTtlMs: scenario.options.runTokenTtl,
    ...(options.dockerSocket ? { dockerSocket: options.dockerSocket } : {}),
    tenant: { mfa: scenario.tenant.mfa, principals: scenario.tenant.principals, subscriptions: scenario.subscriptions },
  });
  return play(platform, scenario, options, { logHead, from: 0, aliases: {}, signIns: [] });
};

/**
 * A step the simulator died in, told done or not from the log. A making verb acted once the
 * fact that begins what it makes is there (and what it made is that fact's id: the step has no
 * result), unless the resume undid what it began (`undone`: then it is played again); a verb
 * that only reads or waits is played again; any other did or did not act, the
 * log cannot always tell, so the scenario is not continued past it.
 */
const MADE_BY_VERB: Record<string, { fact: string; key: string; undone?: (platform: Platform, made: string) => boolean }> = {
  createWorkspace: { fact: 'WorkspaceCreationRequested', key: 'workspaceId', undone: (platform, made) => platform.world.workspaces.byId[made]?.status === 'Failed' },
  createCompute: { fact: 'ComputeCreated', key: 'computeId' },
  submitRun: { fact: 'RunSubmitted', key: 'runId' },
  snapshot: { fact: 'SnapshotCreated', key: 'snapshotId' },
  registerModel: { fact: 'ModelRegistered', key: 'modelId' },
  createImage: { fact: 'ImageCreationRequested', key: 'imageId' },
  deployWebservice: { fact: 'WebserviceDeploymentRequested', key: 'service' },
  createVm: { fact: 'VmCreated', key: 'vmId' },
};
const PLAYED_AGAIN = new Set(['signIn', 'sleep', 'waitForRun', 'getMetrics', 'getRunStatusHistory', 'getKeys', 'queryActivityLog', 'queryWorkspaceMetrics', 'queryAppInsights']);

/** What a scenario's steps are, for telling whether a resumed session plays the same file (its text may move, not change). */
export const scenarioDigest = (scenario: Scenario): string =>
  `sha256:${createHash('sha256').update(JSON.stringify({ name: scenario.name, tenant: scenario.tenant, subscriptions: scenario.subscriptions, options: scenario.options, steps: scenario.steps, expect: scenario.expect })).digest('hex')}`;

/** The scenario a session began playing, if it did (its `ScenarioStarted`). */
export const scenarioOfSession = (store: EventStore, session: string): { file: string; digest: string; scenario: string } | undefined => {
  for (const e of store.readStream(STREAMS.session(session))) if (e.type === 'ScenarioStarted') return { file: String(e.data.file), digest: String(e.data.digest), scenario: String(e.data.scenario) };
  return undefined;
};

/**
 * Play the rest of a scenario in a session whose simulator died mid-scenario, on the platform
 * that goes on with it (packages/platform/src/resume.ts, after its runs were re-attached and its
 * services restored): from the step after the last one whose end the log records. The step the
 * simulator died in is not played again when it had already acted (its facts are in the log,
 * and what it made is taken from them): a second submitRun would be a second run. Those who had
 * signed in sign in again (tokens die with the simulator that held them). Then the scenario's
 * expectations and the invariants are checked over the whole session.
 *
 * Undefined when the session began no scenario, or one of its steps had already failed.
 * @throws SimError Conflict when `scenario` is not the one the session began (its digest differs).
 */
export const continueScenario = async (platform: Platform, scenario: Scenario, options: RunScenarioOptions): Promise<ScenarioResult | undefined> => {
  const session = platform.session;
  const own = options.store.readStream(STREAMS.session(session));
  const started = own.find((e) => e.type === 'ScenarioStarted');
  if (!started) return undefined;
  if (started.data.digest !== scenarioDigest(scenario)) {
    throw errors.conflict(`scenario ${scenario.file} is not the one session ${session} began (${String(started.data.file)}, ${String(started.data.digest)}): it changed, so its remaining steps are not played`);
  }
  const ended = own.filter((e) => e.type === 'ScenarioStepEnded');
  if (ended.some((e) => e.data.ok !== true)) return undefined;
  const aliases: Record<string, string> = {};
  for (const e of ended) {
    const step = scenario.steps[Number(e.data.index)];
    if (step && typeof e.data.made === 'string') remember(aliases, step, e.data.made);
  }
  let from = ended.length ? Number(ended.at(-1)!.data.index) + 1 : 0;
  const signIns = scenario.steps.slice(0, from).filter((step) => step.verb === 'signIn' && step.expect.kind !== 'error');
  // The step in flight when the simulator died: did it act?
  const inFlight = scenario.steps[from];
  if (inFlight && !PLAYED_AGAIN.has(inFlight.verb)) {
    const since = (ended.at(-1) ?? started).position;
    const making = MADE_BY_VERB[inFlight.verb];
    if (!making) {
      throw errors.conflict(`the simulator of session ${session} stopped in step ${inFlight.index + 1} (${inFlight.verb}, line ${inFlight.line}), which the log cannot tell done or not done; the scenario's remaining steps are not played`);
    }
    const began = [...options.store.readAll(since)].find((e) => e.meta.session === session && e.type === making.fact);
    // What it began, unless the resume undid it (a workspace caught mid-creation is rolled
    // back): then the step is played again, as a client sends an ARM PUT again that never got
    // its answer.
    if (began && !making.undone?.(platform, String(began.data[making.key]))) {
      const made = String(began.data[making.key]);
      remember(aliases, inFlight, made);
      await recordStepEnded(platform, { index: inFlight.index, line: inFlight.line, verb: inFlight.verb, ok: true, made, interrupted: true });
      from++;
    }
  }
  // The gateway of this process counts the requests it answers from here on.
  return play(platform, scenario, options, { logHead: 0, from, aliases, signIns, continued: true, scoringRequestsAfter: options.store.headPosition() });
};

const recordScenarioFact = (platform: Platform, fact: { type: 'ScenarioStarted' | 'ScenarioStepEnded'; data: Record<string, unknown> }) =>
  platform.context.bus.run('Scenario', (ctx) => ctx.emitAsPlatform(STREAMS.session(platform.session), 'any', [fact as never]));

const recordStepEnded = (platform: Platform, data: { index: number; line: number; verb: string; ok: boolean; made?: string; interrupted?: boolean }) =>
  recordScenarioFact(platform, { type: 'ScenarioStepEnded', data });

/** Play `scenario` from step `from` on `platform`; the session's events since `logHead` are what its expectations and invariants see. */
const play = async (
  platform: Platform,
  scenario: Scenario,
  options: RunScenarioOptions,
  start: { logHead: number; from: number; aliases: Record<string, string>; signIns: Step[]; continued?: boolean; scoringRequestsAfter?: number },
): Promise<ScenarioResult> => {
  const logHead = start.logHead;
  const sessionEvents: StoredEvent[] = [];
  const unsubscribe = options.store.subscribe((events) => {
    for (const e of events) if (e.meta.session === platform.session) sessionEvents.push(e);
  });
  // Events appended while the platform bootstrapped, before the subscription above.
  const seen = new Set(sessionEvents.map((e) => e.position));
  for (const e of options.store.readAll(logHead)) if (e.meta.session === platform.session && !seen.has(e.position)) sessionEvents.push(e);
  sessionEvents.sort((a, b) => a.position - b.position);

  let interrupted: Promise<{ leftovers: string[] }> | undefined;
  const interruption = new Promise<never>((_, reject) => {
    const signal = options.signal;
    if (!signal) return;
    const onAbort = () => {
      const name = typeof signal.reason === 'string' ? signal.reason : 'abort';
      interrupted ??= platform.interrupt(name);
      reject(new SimError('Interrupted', `The simulator was interrupted (${name}) during this step; its runs were canceled and the session closed.`));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  interruption.catch(() => {});

  const tokens = new Map<string, string>();
  const serviceTokens = new Map<string, string>();
  let lastSignedIn: string | undefined;
  /** Step id -> the identifier of what it made, so `run: r1` matches the run's real id. */
  const aliases: Record<string, string> = { ...start.aliases };
  const outcomes: StepOutcome[] = [];
  let closed = false;
  const failures: ScenarioFailure[] = [];
  const verbContext = (step: Step, actor: string | undefined) => ({
    platform,
    step,
    token: actor ? tokens.get(actor) : undefined,
    rememberToken: (principal: string, token: string) => {
      tokens.set(principal, token);
      lastSignedIn = principal;
    },
    resolve: (ref: string, verb?: string) => {
      const made = aliases[ref] ?? (verb ? aliases[nameAlias(verb, ref)] : undefined);
      if (made === undefined) throw errors.notFound('step result', ref, 'the earlier steps (did that step fail?)');
      return made;
    },
    // Confined again where the file is used: a symlink may have changed since parsing.
    path: (p: string) => {
      const confined = confinePath(p, widenRoots(scenario.paths, options.allowPaths));
      if (!confined.ok) throw errors.badRequest(`The path '${p}' ${confined.reason}.`);
      return confined.path;
    },
    rememberServiceToken: (service: string, value: string) => serviceTokens.set(service, value),
    serviceToken: (service: string) => serviceTokens.get(service),
  });
  const handlerOf = (step: Step) =>
    VERB_HANDLERS[step.verb as keyof typeof VERB_HANDLERS] as ((ctx: Parameters<NonNullable<(typeof VERB_HANDLERS)['signIn']>>[0], args: unknown) => Promise<unknown>) | undefined;

  try {
    // A resumed session's principals sign in again: their tokens died with the simulator.
    for (const step of start.signIns) await handlerOf(step)?.(verbContext(step, step.as ?? lastSignedIn), step.args).catch(() => {});
    if (start.from === 0) {
      await recordScenarioFact(platform, { type: 'ScenarioStarted', data: { scenario: scenario.name, file: resolve(scenario.file), digest: scenarioDigest(scenario), steps: scenario.steps.length } });
    }
    for (const step of scenario.steps.slice(start.from)) {
      if (options.signal?.aborted) break;
      if (options.beforeStep) {
        await options.beforeStep(step);
        if (options.signal?.aborted) break;
      }
      options.onStep?.(step);
      const before = sessionEvents.length;
      const started = Date.now();
      const handler = handlerOf(step);
      const actor = step.as ?? lastSignedIn;
      let result: unknown;
      let error: { code: string; message: string } | undefined;
      try {
        if (!handler) throw new Error(`verb '${step.verb}' has no handler`);
        result = await Promise.race([interruption, handler(verbContext(step, actor), step.args)]);
      } catch (e) {
        if (!isSimError(e)) throw e;
        error = { code: e.code, message: e.message };
      }
      const mismatch = judgeStep(step, result, error);
      const outcome: StepOutcome = {
        step,
        ok: mismatch === undefined,
        ...(result !== undefined ? { result: publicResult(result) } : {}),
        ...(error ? { error } : {}),
        ...(mismatch ? { mismatch } : {}),
        durationMs: Date.now() - started,
      };
      const made = result && typeof result === 'object' ? aliasOf(result as Record<string, unknown>) : undefined;
      if (made) remember(aliases, step, made);
      // Where a resumed session's scenario goes on from (continueScenario); not once interrupted, the session is closing.
      if (!options.signal?.aborted) await recordStepEnded(platform, { index: step.index, line: step.line, verb: step.verb, ok: outcome.ok, ...(made ? { made } : {}) });
      outcomes.push(outcome);
      options.onStep?.(step, outcome);
      if (mismatch) {
        failures.push({
          step,
          what: `step ${step.index + 1} (${step.verb}, line ${step.line})`,
          expected: describeExpect(step),
          actual: error ? `${error.code}: ${error.message}` : 'success',
          around: sessionEvents.slice(Math.max(0, before - 3), sessionEvents.length),
        });
        break;
      }
    }
    if (failures.length === 0) failures.push(...checkScenarioExpect(scenario, sessionEvents, aliases));
    const scoringRequests = await platform.scoringRequests();
    const { leftovers } = await (interrupted ?? platform.close());
    closed = true;
    const invariantViolations = checkInvariants(sessionEvents, {
      secrets: platform.context.secrets,
      leftovers,
      passwords: passwordsOf(scenario),
      vaultSecrets: () => platform.context.vaults.listAllLatestSecrets(PLATFORM_PRINCIPAL),
      ...(scoringRequests !== undefined ? { scoringRequests, scoringRequestsAfter: start.scoringRequestsAfter ?? 0 } : {}),
      nodeAnomalies: Object.values(platform.world.computes.byKey).flatMap((c) => c.anomalies.map((a) => `${c.compute}: ${a}`)),
    });
    // A continued scenario's session is not saved as one that closed cleanly: recovery ends what
    // it left and marks it recovered, which is how replay knows it (packages/cli/src/replay.ts).
    if (start.from === 0 && !start.continued) platform.checkpoint();
    return {
      scenario,
      session: platform.session,
      passed: failures.length === 0 && invariantViolations.length === 0,
      steps: outcomes,
      failures,
      invariantViolations,
      events: sessionEvents,
      platform,
    };
  } finally {
    if (!closed) await platform.close();
    unsubscribe();
  }
};

/** Every password the scenario hands the platform (VM admin passwords, right or wrong): none may be kept (S6.2). */
const passwordsOf = (scenario: Scenario): string[] =>
  scenario.steps.flatMap((step) => {
    const password = (step.args as { password?: unknown } | undefined)?.password;
    return (step.verb === 'createVm' || step.verb === 'attachCompute') && typeof password === 'string' ? [password] : [];
  });

/** The key under which what a step made is found by its name (no step id can look like it: ids have no ':'). */
const nameAlias = (verb: string, name: string): string => `${verb}:${name}`;

/**
 * Keep what a step made for later steps and matchers: under its id, and — for a model, image
 * or service (NAMED_VERBS) — under the name it gave, as later steps may name it so.
 */
const remember = (aliases: Record<string, string>, step: Step, made: string): void => {
  if (step.id) aliases[step.id] = made;
  const name = (step.args as { name?: unknown } | undefined)?.name;
  if (NAMED_VERBS.has(step.verb) && typeof name === 'string') aliases[nameAlias(step.verb, name)] = made;
};

/** The identifier of what a step made, for later steps and matchers that name it by step id. */
const aliasOf = (result: Record<string, unknown>): string | undefined => {
  for (const key of ['runId', 'snapshotId', 'modelId', 'imageId', 'computeId', 'workspaceId', 'vmId', 'service']) if (typeof result[key] === 'string') return result[key] as string;
  return undefined;
};

const describeExpect = (step: Step): string => {
  if (step.expect.kind === 'error') return `error ${step.expect.code}`;
  const { kind: _kind, ...rest } = step.expect;
  return Object.keys(rest).length ? `success with ${JSON.stringify(rest)}` : 'success';
};

/** Compare one step's outcome with its `expect`; undefined when it held. */
const judgeStep = (step: Step, result: unknown, error: { code: string; message: string } | undefined): string | undefined => {
  if (step.expect.kind === 'error') {
    if (!error) return `expected error ${step.expect.code}, but the step succeeded`;
    if (error.code !== step.expect.code) return `expected error ${step.expect.code}, got ${error.code}: ${error.message}`;
    return undefined;
  }
  if (error) return `expected success, got ${error.code}: ${error.message}`;
  const { kind: _kind, ...checks } = step.expect;
  const problems = Object.entries(checks).flatMap(([key, want]) => {
    const check = STEP_CHECKS[key];
    return check ? check(result, want) : [`no check for expect key '${key}'`];
  });
  return problems.length ? problems.join('; ') : undefined;
};

/** Step results as shown to users: records, not the platform's internal objects. */
const publicResult = (result: unknown): unknown => JSON.parse(JSON.stringify(result ?? null));

const checkScenarioExpect = (scenario: Scenario, events: readonly StoredEvent[], aliases: Record<string, string>): ScenarioFailure[] => {
  const failures: ScenarioFailure[] = [];
  if (scenario.expect.order.length) {
    const order = checkOrder(scenario.expect.order, events, aliases);
    if (order.failedAt >= 0) {
      const m = scenario.expect.order[order.failedAt]!;
      const existsAnywhere = events.some((e) => matches(m, e, aliases));
      const from = order.after ? events.indexOf(order.after) : 0;
      failures.push({
        what: `expect.order[${order.failedAt}]`,
        expected: `${describeMatcher(m)}${order.after ? ` after event #${order.after.position} ${order.after.type}` : ''}`,
        actual: existsAnywhere ? 'it occurs, but only earlier than the events it must follow' : 'no such event occurred',
        around: events.slice(Math.max(0, from - 2), from + 6),
      });
    }
  }
  for (const [i, m] of scenario.expect.never.entries()) {
    const hit = events.find((e) => matches(m, e, aliases));
    if (hit) {
      const at = events.indexOf(hit);
      failures.push({
        what: `expect.never[${i}]`,
        expected: `no event matching ${describeMatcher(m)}`,
        actual: `event #${hit.position} ${hit.type} matches`,
        around: events.slice(Math.max(0, at - 3), at + 3),
      });
    }
  }
  for (const [i, { event: m, times }] of scenario.expect.count.entries()) {
    const hits = events.filter((e) => matches(m, e, aliases));
    if (hits.length !== times) {
      failures.push({
        what: `expect.count[${i}]`,
        expected: `${times} event(s) matching ${describeMatcher(m)}`,
        actual: `${hits.length}`,
        around: hits.slice(0, 6),
      });
    }
  }
  return failures;
};
