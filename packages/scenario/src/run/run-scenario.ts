import { errors, isSimError, SimError, type EventStore, type StoredEvent } from '@amlsim/core';
import { createPlatform, PLATFORM_PRINCIPAL, realClock, virtualClock, type Platform } from '@amlsim/platform';
import { confinePath, widenRoots, type Scenario, type Step } from '../parse';
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
  const aliases: Record<string, string> = {};
  const outcomes: StepOutcome[] = [];
  let closed = false;
  const failures: ScenarioFailure[] = [];

  try {
    for (const step of scenario.steps) {
      if (options.signal?.aborted) break;
      options.onStep?.(step);
      const before = sessionEvents.length;
      const started = Date.now();
      const handler = VERB_HANDLERS[step.verb as keyof typeof VERB_HANDLERS] as
        | ((ctx: Parameters<NonNullable<(typeof VERB_HANDLERS)['signIn']>>[0], args: unknown) => Promise<unknown>)
        | undefined;
      const actor = step.as ?? lastSignedIn;
      let result: unknown;
      let error: { code: string; message: string } | undefined;
      try {
        if (!handler) throw new Error(`verb '${step.verb}' has no handler`);
        result = await Promise.race([
          interruption,
          handler(
            {
              platform,
              step,
              token: actor ? tokens.get(actor) : undefined,
              rememberToken: (principal, token) => {
                tokens.set(principal, token);
                lastSignedIn = principal;
              },
              resolve: (id) => {
                const made = aliases[id];
                if (made === undefined) throw errors.notFound('step result', id, 'the earlier steps (did that step fail?)');
                return made;
              },
              // Confined again where the file is used: a symlink may have changed since parsing.
              path: (p) => {
                const confined = confinePath(p, widenRoots(scenario.paths, options.allowPaths));
                if (!confined.ok) throw errors.badRequest(`The path '${p}' ${confined.reason}.`);
                return confined.path;
              },
              rememberServiceToken: (service, value) => serviceTokens.set(service, value),
              serviceToken: (service) => serviceTokens.get(service),
            },
            step.args,
          ),
        ]);
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
      if (step.id && result && typeof result === 'object') {
        const made = aliasOf(result as Record<string, unknown>);
        if (made) aliases[step.id] = made;
      }
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
      ...(scoringRequests !== undefined ? { scoringRequests } : {}),
      nodeAnomalies: Object.values(platform.world.computes.byKey).flatMap((c) => c.anomalies.map((a) => `${c.compute}: ${a}`)),
    });
    platform.checkpoint();
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
