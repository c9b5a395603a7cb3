import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from '../log';
import { Cites, RequirementTexts, citedIn } from './cites';

/**
 * The instructor's controls (docs/server.md "Playing a scenario"): pick a scenario of the served
 * scenarios directory or upload a YAML file, then run it to the end or step through it, pausing
 * before the next step, and reset. What the play does arrives through the log like anything else;
 * this bar shows only the player's own state, the next step's YAML, and a rejected file's
 * `file:line:col` problems exactly as the CLI prints them.
 */
export type ScenarioEntry = { file: string; name?: string; cites?: string[]; error?: string };
export type PlayerView = {
  state: 'idle' | 'running' | 'paused' | 'finished' | 'failed';
  scenario: { name: string; file: string } | null;
  mode?: 'run' | 'step';
  nextStep: { index: number; line: number; verb: string; yaml: string } | null;
  passed?: boolean;
  failures?: Array<{ what: string; expected: string; actual: string }>;
};
type Issue = { file: string; line: number; col: number; message: string };

const POLL_MS = 250;

export function PlayerBar({ presenter, onView }: { presenter: boolean; onView?: (view: PlayerView | undefined, scenario: ScenarioEntry | undefined) => void }) {
  const [scenarios, setScenarios] = useState<ScenarioEntry[]>([]);
  const [choice, setChoice] = useState('');
  const [upload, setUpload] = useState<{ name: string; yaml: string } | undefined>(undefined);
  const [view, setView] = useState<PlayerView | undefined>(undefined);
  const [problem, setProblem] = useState<{ message: string; issues: Issue[] } | undefined>(undefined);
  const [available, setAvailable] = useState(true);

  useEffect(() => {
    getJson<{ scenarios: ScenarioEntry[] }>('/api/scenarios')
      .then(({ scenarios }) => {
        setScenarios(scenarios);
        const first = scenarios.find((s) => !s.error);
        if (first) setChoice((c) => c || first.file);
      })
      .catch(() => setScenarios([]));
  }, []);

  // The player's state changes without the page asking (a step ends, the play finishes): poll it
  // while something plays, so the buttons never show a state the server left.
  useEffect(() => {
    let stopped = false;
    const tick = () =>
      getJson<PlayerView>('/api/play')
        .then((v) => !stopped && setView(v))
        .catch((err) => {
          if (!stopped && err instanceof ApiError && err.status === 404) setAvailable(false);
        });
    void tick();
    const timer = setInterval(() => {
      if (!view || view.state === 'running' || view.state === 'paused') void tick();
    }, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [view?.state]);

  const act = async (call: () => Promise<PlayerView>) => {
    setProblem(undefined);
    try {
      setView(await call());
    } catch (err) {
      if (err instanceof ApiError) {
        const issues = ((err.body as { error?: { issues?: Issue[] } }).error?.issues ?? []) as Issue[];
        // The message lists the issues again, on one line each; shown once, below, one a line.
        const message = issues.length > 0 ? `${err.code}: ${issues.length} problem${issues.length === 1 ? '' : 's'} in the scenario file` : err.message;
        setProblem({ message, issues });
      } else setProblem({ message: String(err), issues: [] });
    }
  };
  const play = (mode: 'run' | 'step') =>
    act(() => postJson<PlayerView>('/api/play', upload ? { yaml: upload.yaml, name: upload.name, mode } : { scenario: choice, mode }));

  const chosenEntry = scenarios.find((s) => s.file === choice);
  useEffect(() => onView?.(view, upload ? undefined : chosenEntry), [view, chosenEntry, upload]);

  if (!available) return <div class="player muted">This server only reads the log (no scenario player).</div>;
  const state = view?.state ?? 'idle';
  const playing = state === 'running' || state === 'paused';
  return (
    <div class="player" data-state={state}>
      <select
        aria-label="Scenario"
        value={upload ? '' : choice}
        disabled={playing}
        onChange={(e) => {
          setUpload(undefined);
          setChoice((e.target as HTMLSelectElement).value);
        }}
      >
        {upload && <option value="">{upload.name} (uploaded)</option>}
        {scenarios.map((s) => (
          <option value={s.file} key={s.file} disabled={Boolean(s.error)}>
            {s.file}
            {s.name ? ` — ${s.name}` : ' (unreadable)'}
          </option>
        ))}
      </select>
      <label class="button upload" title="Upload a scenario YAML file">
        Upload…
        <input
          type="file"
          accept=".yaml,.yml,text/yaml"
          disabled={playing}
          onChange={async (e) => {
            const file = (e.target as HTMLInputElement).files?.[0];
            if (file) setUpload({ name: file.name, yaml: await file.text() });
            (e.target as HTMLInputElement).value = '';
          }}
        />
      </label>
      <button type="button" disabled={playing} onClick={() => void play('run')}>
        Run
      </button>
      <button type="button" disabled={playing} onClick={() => void play('step')} title="Play it one step at a time: stops before each step">
        Step mode
      </button>
      <button type="button" disabled={state !== 'paused'} onClick={() => void act(() => postJson('/api/play/step'))} title="Play the next step, then stop again">
        Step ▸
      </button>
      {state === 'running' && view?.mode === 'run' ? (
        <button type="button" onClick={() => void act(() => postJson('/api/play/pause'))} title="Stop before the next step">
          Pause
        </button>
      ) : (
        <button type="button" disabled={state !== 'paused'} onClick={() => void act(() => postJson('/api/play/resume'))} title="Play on to the end">
          Resume
        </button>
      )}
      <button type="button" disabled={state === 'idle'} onClick={() => void act(() => postJson('/api/play/reset'))}>
        Reset
      </button>
      <span class={`player-state state-${state}`} data-testid="player-state">
        {describe(view)}
      </span>
      {chosenEntry?.cites && chosenEntry.cites.length > 0 && !presenter && <Cites ids={chosenEntry.cites} />}
      {view?.nextStep && state === 'paused' && !presenter && <StepCard step={view.nextStep} running={false} />}
      {problem && (
        <div class="banner error" role="alert" data-testid="play-problem">
          <div>{problem.message}</div>
          {problem.issues.map((i) => (
            // `file:line:col: message`, as `amlsim run` prints it (formatIssue of @amlsim/scenario).
            <div class="issue" key={`${i.line}:${i.col}:${i.message}`}>
              <code>
                {i.file}:{i.line}:{i.col}
              </code>
              : {i.message}
            </div>
          ))}
        </div>
      )}
      {view?.failures && view.failures.length > 0 && (
        <div class="banner error" data-testid="play-failures">
          {view.failures.map((f) => (
            <div key={f.what}>
              ✗ {f.what}: expected {f.expected}, got {f.actual}
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

/**
 * The step about to be played (paused) or being played (running): its place in the file, its
 * YAML, and in presenter mode the requirements it names itself (a `cites:` or a comment).
 */
export function StepCard({ step, running, presenter }: { step: NonNullable<PlayerView['nextStep']>; running: boolean; presenter?: boolean }) {
  return (
    <div class="next-step" data-testid="next-step">
      <div class="next-step-title">
        {running ? 'now' : 'next'}: step {step.index + 1}, <code>{step.verb}</code> (line {step.line})
      </div>
      <pre>{step.yaml}</pre>
      {presenter && <RequirementTexts ids={citedIn(step.yaml)} />}
    </div>
  );
}

const describe = (view: PlayerView | undefined): string => {
  if (!view || view.state === 'idle') return 'idle';
  const name = view.scenario?.name ?? 'scenario';
  switch (view.state) {
    case 'running':
      return `playing ${name}`;
    case 'paused':
      return `paused before step ${(view.nextStep?.index ?? 0) + 1}`;
    case 'finished':
      return view.passed ? `${name}: passed ✓` : `${name}: failed ✗`;
    case 'failed':
      return `${name}: stopped with an error`;
  }
};
