import { realpathSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import { parseDocument, isMap, isSeq } from 'yaml';
import { errors, SimError } from '@amlsim/core';

/** One problem of an invalid scenario file, where the CLI prints it: `file:line:col: message`. */
export type PlayIssue = { file: string; line: number; col: number; message: string };

export type PlayStep = { index: number; line: number; verb: string };

/** What one play ended with: the scenario's verdict and why it failed (secrets already redacted). */
export type PlayOutcome = {
  passed: boolean;
  session?: string;
  failures: Array<{ what: string; expected: string; actual: string }>;
};

export type PlayHooks = {
  /** Awaited before each step (the scenario runner's `beforeStep`): the player's gate. */
  beforeStep: (step: PlayStep) => Promise<void>;
  /** Aborted by a reset: the platform cancels its live runs and closes, no further step runs. */
  signal: AbortSignal;
};

export type PreparedScenario =
  | { ok: true; name: string; file: string; steps: PlayStep[]; play: (hooks: PlayHooks) => Promise<PlayOutcome> }
  | { ok: false; issues: PlayIssue[]; text: string };

/**
 * How the server parses and plays a scenario; the composition root gives it (packages/cli
 * builds the platform as `amlsim run` does): the server imports no scenario runner.
 */
export type ScenarioPlayerPort = {
  /** Parse `text` as the scenario file `file`; nothing is recorded. */
  prepare: (text: string, file: string) => PreparedScenario;
};

export type PlayerState = 'idle' | 'running' | 'paused' | 'finished' | 'failed';

export type PlayerView = {
  state: PlayerState;
  scenario: { name: string; file: string } | null;
  mode?: 'run' | 'step';
  nextStep: { index: number; line: number; verb: string; yaml: string } | null;
  passed?: boolean;
  session?: string;
  failures?: PlayOutcome['failures'];
};

export type PlayRequest = { scenario?: unknown; yaml?: unknown; name?: unknown; mode?: unknown };

/** The body of a 400 for an invalid scenario file. */
export class ScenarioRejected extends SimError {
  constructor(readonly issues: PlayIssue[], text: string) {
    super('ScenarioInvalid', text, { status: 400 });
  }
}

const UPLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.ya?ml$/;

/** Each step's own text in the file (the sequence item under `steps:`), by index. */
const stepTexts = (text: string): string[] => {
  const doc = parseDocument(text, { keepSourceTokens: false });
  const steps = isMap(doc.contents) ? doc.contents.get('steps', true) : undefined;
  if (!isSeq(steps)) return [];
  return steps.items.map((item) => {
    const range = (item as { range?: [number, number, number] }).range;
    if (!range) return '';
    const from = text.lastIndexOf('\n', range[0] - 1) + 1;
    return text.slice(from, range[1]).replace(/\s+$/, '');
  });
};

/**
 * One scenario at a time, played against the server's own log (docs/server.md "Playing a
 * scenario"): in run mode to the end, in step mode one step per `step()`, stopping before
 * each step at the runner's `beforeStep` gate.
 */
export const createPlayer = (port: ScenarioPlayerPort, options: { scenariosDir?: string; uploadDir: string }) => {
  let state: PlayerState = 'idle';
  let scenario: { name: string; file: string } | null = null;
  let mode: 'run' | 'step' | undefined;
  let steps: PlayStep[] = [];
  let texts: string[] = [];
  let next: PlayStep | null = null;
  let outcome: PlayOutcome | undefined;
  /** How many more steps may start without waiting: Infinity in run mode. */
  let credits = 0;
  let wake: (() => void) | undefined;
  let playing: Promise<void> | undefined;
  let abort: AbortController | undefined;
  const watchers = new Set<() => void>();

  const changed = () => {
    for (const w of [...watchers]) w();
  };
  const setState = (s: PlayerState) => {
    state = s;
    changed();
  };
  /** Resolves once the player is not running a step (paused, finished, failed or idle). */
  const settled = () =>
    new Promise<void>((done) => {
      if (state !== 'running') return done();
      const w = () => {
        if (state === 'running') return;
        watchers.delete(w);
        done();
      };
      watchers.add(w);
    });

  const view = (): PlayerView => ({
    state,
    scenario,
    ...(mode ? { mode } : {}),
    nextStep: next && (state === 'paused' || state === 'running') ? { ...next, yaml: texts[next.index] ?? '' } : null,
    ...(outcome ? { passed: outcome.passed, failures: outcome.failures, ...(outcome.session ? { session: outcome.session } : {}) } : {}),
  });

  const refuse = (what: string, allowed: string): never => {
    throw errors.conflict(`cannot ${what}: the player is ${state}${scenario ? ` (${scenario.file})` : ''}; ${allowed}`);
  };

  const source = (body: PlayRequest): { text: string; file: string } => {
    if (typeof body.scenario === 'string') {
      const dir = options.scenariosDir;
      if (!dir) throw errors.badRequest(`no scenarios directory is served, so '${body.scenario}' cannot be played; upload its text as { "yaml": …, "name": … }`);
      const root = realpathSync(dir);
      const asked = resolve(root, body.scenario);
      let real: string;
      try {
        real = realpathSync(asked);
      } catch {
        throw errors.badRequest(`no scenario file '${body.scenario}' in the scenarios directory ${root} (GET /api/scenarios lists them)`, { scenario: body.scenario });
      }
      const rel = relative(root, real);
      if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
        throw errors.badRequest(`'${body.scenario}' is outside the scenarios directory ${root}; only its files can be played`, { scenario: body.scenario });
      }
      return { text: readFileSync(real, 'utf8'), file: real };
    }
    if (typeof body.yaml === 'string') {
      const name = body.name === undefined ? 'upload.yaml' : body.name;
      if (typeof name !== 'string' || !UPLOAD_NAME.test(name) || basename(name) !== name) {
        throw errors.badRequest(`upload name ${JSON.stringify(name)} is not a file name; give a plain name ending in .yaml or .yml (no directory)`);
      }
      return { text: body.yaml, file: resolve(options.uploadDir, name) };
    }
    throw errors.badRequest('give { "scenario": "<file of GET /api/scenarios>" } or { "yaml": "<the file\'s text>", "name": "upload.yaml" }, with "mode": "run" or "step"');
  };

  return {
    view,
    /** Parse and start playing; in step mode, answers once stopped before the first step. */
    async play(body: PlayRequest): Promise<PlayerView> {
      if (state === 'running' || state === 'paused') refuse(`play another scenario while ${scenario?.name ?? 'one'} plays`, 'POST /api/play/reset stops it first');
      const m = body.mode === undefined ? 'run' : body.mode;
      if (m !== 'run' && m !== 'step') throw errors.badRequest(`mode ${JSON.stringify(m)} is not one; give "run" (to the end) or "step" (stop before each step)`);
      const { text, file } = source(body);
      const prepared = port.prepare(text, file);
      if (!prepared.ok) throw new ScenarioRejected(prepared.issues, prepared.text);
      scenario = { name: prepared.name, file: prepared.file };
      mode = m;
      steps = prepared.steps;
      texts = stepTexts(text);
      next = steps[0] ?? null;
      outcome = undefined;
      credits = m === 'run' ? Infinity : 0;
      const controller = (abort = new AbortController());
      setState('running');
      const beforeStep = async (step: PlayStep) => {
        next = steps.find((s) => s.index === step.index) ?? step;
        while (credits === 0 && !controller.signal.aborted) {
          setState('paused');
          await new Promise<void>((done) => (wake = done));
        }
        wake = undefined;
        if (controller.signal.aborted) return;
        credits--;
        setState('running');
      };
      playing = prepared
        .play({ beforeStep, signal: controller.signal })
        .then(
          (o) => {
            outcome = o;
            next = null;
            setState(o.passed ? 'finished' : 'failed');
          },
          (e: unknown) => {
            outcome = { passed: false, failures: [{ what: 'the play', expected: 'to run', actual: e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e) }] };
            next = null;
            setState('failed');
          },
        );
      if (m === 'step') await settled();
      return view();
    },
    async step(): Promise<PlayerView> {
      if (state !== 'paused') refuse('play one step', state === 'running' ? 'a step is being played or the play runs; POST /api/play/pause first' : 'POST /api/play starts a play (mode "step" stops before each step)');
      credits = 1;
      wake?.();
      // The step has begun once the gate takes its credit; then wait till it ended.
      await new Promise<void>((r) => setImmediate(r));
      await settled();
      return view();
    },
    async pause(): Promise<PlayerView> {
      if (state !== 'running' && state !== 'paused') refuse('pause', 'only a running play pauses (POST /api/play starts one)');
      credits = 0;
      return view();
    },
    async resume(): Promise<PlayerView> {
      if (state !== 'running' && state !== 'paused') refuse('resume', 'only a paused play resumes (POST /api/play starts one)');
      credits = Infinity;
      wake?.();
      return view();
    },
    /** Stop the play (its platform cancels its live runs and closes) and forget it. */
    async reset(): Promise<PlayerView> {
      if (playing && (state === 'running' || state === 'paused')) {
        abort?.abort('reset');
        wake?.();
      }
      await playing;
      playing = undefined;
      scenario = null;
      mode = undefined;
      steps = [];
      texts = [];
      next = null;
      outcome = undefined;
      setState('idle');
      return view();
    },
    /** For the server's close: stop what plays. */
    close: async () => {
      if (playing) {
        abort?.abort('reset');
        wake?.();
        await playing;
      }
    },
  };
};

export type Player = ReturnType<typeof createPlayer>;
