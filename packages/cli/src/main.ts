import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import pc from 'picocolors';
import { isSimError, type EventStore, type StoredEvent } from '@amlsim/core';
import { openEventStore } from '@amlsim/store';
import { ScenarioInvalidError, parseScenario, runScenario, type Scenario, type ScenarioResult } from '@amlsim/scenario';
import { formatEvent } from './timeline';
import { replay } from './replay';

/** Exit codes of `amlsim run` (SCENARIOS.md). */
const EXIT = { ok: 0, expectationFailed: 1, invalidFile: 2 } as const;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

const storeKind = (value: string): 'memory' | 'sqlite' => {
  if (value !== 'memory' && value !== 'sqlite') throw new InvalidArgumentError(`'${value}' is not a store; use memory or sqlite.`);
  return value;
};

type RunOptions = { json?: boolean; dataDir: string; store: 'memory' | 'sqlite'; colour: boolean; driver?: 'docker' | 'process'; dockerSocket?: string };

/** Parse every file first: an invalid file stops the run before anything is simulated (exit 2). */
const loadScenarios = (files: string[]): { scenarios: Scenario[]; invalid: boolean } => {
  const scenarios: Scenario[] = [];
  let invalid = false;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      err(`${file}: cannot read the scenario file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      invalid = true;
      continue;
    }
    try {
      scenarios.push(parseScenario(text, file));
    } catch (e) {
      if (!(e instanceof ScenarioInvalidError)) throw e;
      err(e.message);
      invalid = true;
    }
  }
  return { scenarios, invalid };
};

const printResult = (result: ScenarioResult, o: RunOptions, redact: (s: string) => string) => {
  if (o.json) {
    out(JSON.stringify({ kind: 'scenario', file: result.scenario.file, name: result.scenario.name, passed: result.passed, session: result.session,
      failures: result.failures.map((f) => ({ what: f.what, expected: f.expected, actual: redact(f.actual) })),
      invariantViolations: result.invariantViolations.map((v) => ({ invariant: v.invariant, message: v.message })) }));
    return;
  }
  const start = result.events[0] ? Date.parse(result.events[0].meta.at) : 0;
  for (const f of result.failures) {
    err(pc.red(`✗ ${result.scenario.file}: ${f.what}${f.step ? ` at ${result.scenario.file}:${f.step.line}:${f.step.col}` : ''}`));
    err(`    expected: ${f.expected}`);
    err(`    got:      ${redact(f.actual)}`);
    if (f.around.length) {
      err('    events around it:');
      for (const e of f.around) err(`    ${redact(formatEvent(e, start, o.colour))}`);
    }
  }
  for (const v of result.invariantViolations) err(pc.red(`✗ invariant ${v.invariant}: ${v.message}`));
  const steps = `${result.steps.filter((s) => s.ok).length}/${result.scenario.steps.length} steps`;
  out(result.passed ? pc.green(`✓ ${result.scenario.name} — ${steps}, ${result.events.length} events`) : pc.red(`✗ ${result.scenario.name} — failed (${steps})`));
};

const runCommand = async (files: string[], o: RunOptions): Promise<number> => {
  const { scenarios, invalid } = loadScenarios(files);
  if (invalid) return EXIT.invalidFile;
  const dataDir = resolve(o.dataDir);
  // With the in-memory log, vaults and blobs go to a temporary directory removed afterwards.
  const resourceDir = o.store === 'memory' ? mkdtempSync(join(tmpdir(), 'amlsim-')) : dataDir;
  let store: EventStore;
  try {
    store = openEventStore(o.store, dataDir);
  } catch (e) {
    if (isSimError(e)) {
      err(pc.red(`${e.code}: ${e.message}`));
      return EXIT.expectationFailed;
    }
    throw e;
  }
  let code: number = EXIT.ok;
  try {
    for (const scenario of scenarios) {
      let redact = (s: string) => s;
      let start = 0;
      const unsubscribe = store.subscribe((events: StoredEvent[]) => {
        for (const e of events) {
          if (!start) start = Date.parse(e.meta.at);
          out(redact(o.json ? JSON.stringify({ kind: 'event', ...e }) : formatEvent(e, start, o.colour)));
        }
      });
      if (!o.json) out(pc.bold(`▶ ${scenario.name}  (${scenario.file}${scenario.cites.length ? `; shows ${scenario.cites.join(', ')}` : ''})`));
      try {
        const result = await runScenario(scenario, {
          store,
          dataDir: resourceDir,
          ...(o.driver ? { driver: o.driver } : {}),
          ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}),
          onStep: (step, outcome) => {
            if (o.json) {
              if (outcome) out(JSON.stringify({ kind: 'step', index: step.index, verb: step.verb, line: step.line, ok: outcome.ok, error: outcome.error?.code, mismatch: outcome.mismatch }));
              return;
            }
            if (!outcome) out(pc.dim(`── step ${step.index + 1} · line ${step.line} · ${step.as ? `as ${step.as} · ` : ''}${step.verb}${step.expect.kind === 'error' ? ` (expect ${step.expect.code})` : ''}`));
            else if (!outcome.ok) out(pc.red(`   ✗ ${outcome.mismatch}`));
            else if (outcome.error) out(pc.yellow(`   ✓ refused as expected: ${outcome.error.code}`));
          },
        });
        redact = (s) => result.platform.context.secrets.redact(s);
        printResult(result, o, redact);
        if (!result.passed) code = EXIT.expectationFailed;
      } finally {
        unsubscribe();
      }
    }
  } finally {
    store.close();
    if (resourceDir !== dataDir) rmSync(resourceDir, { recursive: true, force: true });
  }
  return code;
};

const openExisting = (dataDir: string): EventStore => {
  const file = join(resolve(dataDir), 'events.sqlite');
  if (!existsSync(file)) throw new Error(`no event log at ${file}; run a scenario with --store sqlite (the default) first, or pass --data-dir`);
  return openEventStore('sqlite', resolve(dataDir));
};

export const buildProgram = (): Command => {
  const program = new Command('amlsim')
    .description('Event-sourced simulator of Azure Machine Learning enterprise security (SDK v1 era).')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const dataDir = new Option('--data-dir <dir>', 'data directory: event log, key vaults, blob storage').default('.amlsim');

  program
    .command('run')
    .description('play scenario files against the simulated platform and print a live timeline')
    .argument('<files...>', 'scenario YAML files')
    .option('--json', 'print JSON lines (events, steps, results) instead of the timeline')
    .addOption(dataDir)
    .addOption(new Option('--store <kind>', 'event store: sqlite (in the data dir) or memory').default('sqlite').argParser(storeKind))
    .addOption(
      new Option('--driver <driver>', "where runs execute: docker (containers with no network; needs a Docker engine) or process (local processes); overrides a scenario's options.driver")
        .choices(['docker', 'process']),
    )
    .option('--docker-socket <path>', 'the Docker engine socket (default /var/run/docker.sock)')
    .option('--no-color', 'plain output')
    .addHelpText('after', '\nExit status: 0 all expectations held; 1 an expectation failed; 2 a file is invalid.')
    .action(async (files: string[], opts: { json?: boolean; dataDir: string; store: 'memory' | 'sqlite'; color: boolean; driver?: 'docker' | 'process'; dockerSocket?: string }) => {
      process.exitCode = await runCommand(files, { ...opts, colour: opts.color });
    });

  program
    .command('events')
    .description("print a data dir's event log")
    .addOption(dataDir)
    .option('--session <id>', 'only this session')
    .option('--type <type>', 'only events of this type')
    .option('--json', 'JSON lines')
    .action((opts: { dataDir: string; session?: string; type?: string; json?: boolean }) => {
      const store = openExisting(opts.dataDir);
      try {
        const starts = new Map<string, number>();
        const headed = new Set<string>();
        for (const e of store.readAll()) {
          if (opts.session && e.meta.session !== opts.session) continue;
          // Times are relative to the session's first event, whatever the filter shows.
          if (!starts.has(e.meta.session)) starts.set(e.meta.session, Date.parse(e.meta.at));
          if (opts.type && e.type !== opts.type) continue;
          if (!headed.has(e.meta.session)) {
            headed.add(e.meta.session);
            if (!opts.json) out(pc.bold(`session ${e.meta.session}`));
          }
          out(opts.json ? JSON.stringify(e) : `${String(e.position).padStart(6)} ${formatEvent(e, starts.get(e.meta.session)!)}`);
        }
      } finally {
        store.close();
      }
    });

  program
    .command('insights')
    .description('print the App Insights records of scoring requests in a data dir (S7.3)')
    .addOption(dataDir)
    .option('--session <id>', 'only this session')
    .option('--service <name>', 'only this web service')
    .option('--json', 'JSON lines')
    .action((opts: { dataDir: string; session?: string; service?: string; json?: boolean }) => {
      const store = openExisting(opts.dataDir);
      try {
        let n = 0;
        for (const e of store.readAll()) {
          if (e.type !== 'ScoringRequestRecorded') continue;
          if (opts.session && e.meta.session !== opts.session) continue;
          if (opts.service && e.data.service !== opts.service) continue;
          const r = e.data;
          n++;
          out(
            opts.json
              ? JSON.stringify({ Timestamp: e.meta.at, ...r })
              : `${e.meta.at}  ${String(r.service).padEnd(16)} ${String(r.HTTPMethod).padEnd(5)} ${String(r.StatusCode)}  ${String(r.DurationMs).padStart(8)} ms  ${String(r.ComputeType)}  ${String(r.UserAgent)}  ${String(r.RequestUrl)}  ${String(r.RequestId)}`,
          );
        }
        if (!opts.json) err(pc.dim(`${n} record(s)`));
      } finally {
        store.close();
      }
    });

  program
    .command('replay')
    .description('rebuild every read model and state from the log and report any divergence from what was saved')
    .addOption(dataDir)
    .action((opts: { dataDir: string }) => {
      const store = openExisting(opts.dataDir);
      try {
        const report = replay(store, (n) => err(pc.dim(`  replayed ${n.toLocaleString('en')} events…`)));
        for (const s of report.sessions) {
          if (s.divergences.length === 0) out(pc.green(`✓ session ${s.session}: ${s.events} events, read models and aggregates match`));
          else {
            out(pc.red(`✗ session ${s.session}: ${s.events} events`));
            for (const d of s.divergences) out(`    ${d}`);
          }
        }
        if (!report.ok) process.exitCode = 1;
      } finally {
        store.close();
      }
    });
  return program;
};

const isMain = process.argv[1] && resolve(process.argv[1]).endsWith(join('cli', 'src', 'main.ts'));
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      err(pc.red(isSimError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e)));
      process.exitCode = process.exitCode || 1;
    });
}
