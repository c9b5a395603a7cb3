import { readFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import pc from 'picocolors';
import { isSimError, type EventStore, type StoredEvent } from '@amlsim/core';
import { openEventStore } from '@amlsim/store';
import { type Platform, createPlatform, ensureLocalCa, createTemporaryDataDir, lockDataDir, nanoIds, readDataDirLock, recoverAbandonedSessions, resumeAbandonedSessions, SessionScan, sweepOrphans, type DataDirLock } from '@amlsim/platform';
import { STREAMS } from '@amlsim/core';
import { ScenarioInvalidError, continueScenario, parseScenario, parseTenantFile, runScenario, scenarioOfSession, type Scenario, type ScenarioResult } from '@amlsim/scenario';
import { DEFAULT_PORT, startServer, type ScenarioPlayerPort } from '@amlsim/server';
import { formatEvent } from './timeline';
import { replay } from './replay';
import { EXPORT_FORMATS, eventsOfSession, isScenarioFile, playScenarioForExport, renderExport, sessionsOf, type ExportFormat } from './export';

export { EXPORT_FORMATS, eventsOfSession, isScenarioFile, playScenarioForExport, renderExport, sessionsOf, type ExportFormat, type PlayedScenario } from './export';

/**
 * Exit codes of `amlsim` (docs/scenarios.md, "Exit status and output"). 64, 69, 70 and 75 are
 * the BSD sysexits codes EX_USAGE, EX_UNAVAILABLE, EX_SOFTWARE and EX_TEMPFAIL, so a script can
 * tell "fix your command line" from "start Docker" from "amlsim has a bug" from "try again
 * later" without reading the text; 130 and 143 are what a shell reports for a process ended by
 * SIGINT and SIGTERM (128 + the signal's number).
 */
export const EXIT_CODES = {
  /** Every scenario's expectations and the global invariants held (other commands: it worked). */
  ok: 0,
  /** A step's or a scenario's expectation or a global invariant failed; `replay` found a divergence or an unfinished session. */
  expectationFailed: 1,
  /** A scenario file is invalid or unreadable, or the data dir's event log cannot be read. */
  invalidFile: 2,
  /** The command line is wrong: an unknown command or option, a missing argument, a bad option value. */
  usage: 64,
  /** The docker driver found no Docker engine (start one, or use --driver process). */
  dockerUnavailable: 69,
  /** amlsim itself failed (a bug): the message and stack are printed; please report them. */
  internal: 70,
  /** Another simulator (the pid is printed) is writing this data dir; try again when it ends. */
  dataDirLocked: 75,
  /** Stopped by SIGINT (Ctrl-C): runs were canceled and the session's containers, volumes and images removed. */
  interrupted: 130,
  /** Stopped by SIGTERM, as for SIGINT. */
  terminated: 143,
} as const;
const EXIT = EXIT_CODES;

/** The exit code for the signal that stopped `amlsim run`. */
const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: EXIT.interrupted, SIGTERM: EXIT.terminated };

/** What `--help` says about exit codes; docs/scenarios.md has the same table (test/docs.test.ts). */
export const EXIT_CODE_HELP = [
  'Exit status:',
  `  ${EXIT.ok}   all expectations held`,
  `  ${EXIT.expectationFailed}   an expectation or invariant failed (replay: a divergence, or a session that never finished)`,
  `  ${EXIT.invalidFile}   a scenario file is invalid or unreadable, or the event log cannot be read`,
  `  ${EXIT.usage}  usage error: unknown command or option, missing argument, bad option value`,
  `  ${EXIT.dockerUnavailable}  no Docker engine (start one, or use --driver process)`,
  `  ${EXIT.internal}  internal error in amlsim (a bug; please report the message)`,
  `  ${EXIT.dataDirLocked}  the data dir is in use by another simulator (its pid is printed); try again when it ends`,
  `  ${EXIT.interrupted} interrupted (SIGINT, Ctrl-C): runs canceled, the session's containers, volumes and images removed`,
  `  ${EXIT.terminated} terminated (SIGTERM): as for SIGINT`,
].join('\n');

/** The CLI's version: the @amlsim/cli package's. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A failure the CLI explains itself, with the exit code it means. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

const storeKind = (value: string): 'memory' | 'sqlite' => {
  if (value !== 'memory' && value !== 'sqlite') throw new InvalidArgumentError(`'${value}' is not a store; use memory or sqlite.`);
  return value;
};

/** `--allow-path <dir>`, repeatable: an existing directory, kept as an absolute path. */
const allowPath = (value: string, previous: string[] = []): string[] => {
  const dir = resolve(value);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new InvalidArgumentError(`no directory at '${dir}'; --allow-path takes an existing directory that a scenario's paths may lead into.`);
  return [...previous, dir];
};

type RunOptions = {
  json?: boolean;
  dataDir: string;
  store: 'memory' | 'sqlite';
  colour: boolean;
  driver?: 'docker' | 'process';
  dockerSocket?: string;
  allowPath?: string[];
};

/** Parse every file first: an invalid file stops the run before anything is simulated (exit 2). */
const loadScenarios = (files: string[], allowPaths: string[]): { scenarios: Scenario[]; invalid: boolean } => {
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
      scenarios.push(parseScenario(text, file, { allowPaths }));
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

/** Signals this close to the first are that one, delivered twice (see stopOnSignals). */
const SAME_SIGNAL_MS = 250;

/**
 * The first SIGINT or SIGTERM stops the run cleanly (the scenario's platform cancels its runs
 * and removes everything of its session) and the command exits 130 or 143; a second one exits
 * at once. Returns what the command needs: the signal to pass on, and the one that came.
 */
const stopOnSignals = (onSecond: () => void): { signal: AbortSignal; received: () => 'SIGINT' | 'SIGTERM' | undefined; [Symbol.dispose](): void } => {
  const controller = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  let receivedAt = 0;
  const on = (signal: 'SIGINT' | 'SIGTERM') => {
    // The same Ctrl-C can come twice: from the terminal and relayed by a wrapper (tsx, a package
    // manager). Only a signal sent after that counts as the second one.
    if (received && Date.now() - receivedAt < SAME_SIGNAL_MS) return;
    if (received) {
      err(pc.red(`${signal} again: exiting at once; what is left of the session is removed by the next amlsim run`));
      onSecond();
      process.exit(SIGNAL_EXIT[signal]);
    }
    received = signal;
    receivedAt = Date.now();
    err(pc.yellow(`${signal}: stopping — canceling the live runs and removing this session's containers, volumes and images (${signal === 'SIGINT' ? 'Ctrl-C' : 'send it'} again to exit at once)`));
    controller.abort(signal);
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    received: () => received,
    [Symbol.dispose]: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
};

/** Take the data dir for this writer: exit 75 naming the holder if a live simulator has it. */
const lockForWriting = (dataDir: string): DataDirLock | number => {
  try {
    const lock = lockDataDir(dataDir);
    if (lock.tookOver) err(pc.yellow(`took over the data dir's lock from pid ${lock.tookOver.pid} (since ${lock.tookOver.startedAt}), which is no longer running`));
    return lock;
  } catch (e) {
    if (!isSimError(e) || e.code !== 'DataDirLocked') throw e;
    err(pc.red(`${e.code}: ${e.message}`));
    return EXIT.dataDirLocked;
  }
};

const runCommand = async (files: string[], o: RunOptions): Promise<number> => {
  const { scenarios, invalid } = loadScenarios(files, o.allowPath ?? []);
  if (invalid) return EXIT.invalidFile;
  const dataDir = resolve(o.dataDir);
  // One writer per data dir; the in-memory log writes none (its files go to a temporary dir).
  const lock = o.store === 'sqlite' ? lockForWriting(dataDir) : undefined;
  if (typeof lock === 'number') return lock;
  using _unlock = { [Symbol.dispose]: () => lock?.release() };
  using signals = stopOnSignals(() => lock?.release());
  // With the in-memory log, vaults and blobs go to a temporary directory removed afterwards
  // (under a lease: a crashed CLI's temporary dir is swept by the next simulator).
  const temporary = o.store === 'memory' ? createTemporaryDataDir() : undefined;
  const resourceDir = temporary?.path ?? dataDir;
  let store: EventStore;
  try {
    store = openEventStore(o.store, dataDir);
  } catch (e) {
    temporary?.release();
    if (isSimError(e)) {
      err(pc.red(`${e.code}: ${e.message}`));
      return EXIT.invalidFile;
    }
    throw e;
  }
  let code: number = EXIT.ok;
  try {
    if (o.store === 'sqlite') await endStoppedSessions(store, dataDir, 'amlsim run', { ...o, colour: o.colour });
    for (const scenario of scenarios) {
      if (signals.signal.aborted) break;
      let redact = (s: string) => s;
      let start = 0;
      const unsubscribe = store.subscribe((events: StoredEvent[]) => {
        for (const e of events) {
          if (!start) start = Date.parse(e.meta.at);
          // The step lines below say what these bookkeeping facts say; JSON output carries them.
          if (!o.json && (e.type === 'ScenarioStarted' || e.type === 'ScenarioStepEnded')) continue;
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
          ...(o.allowPath?.length ? { allowPaths: o.allowPath } : {}),
          signal: signals.signal,
          onStep: printStep(o),
        });
        redact = (s) => result.platform.context.secrets.redact(s);
        printResult(result, o, redact);
        // No engine is not the scenario's fault: say so with its own code (the step already explained it).
        if (result.steps.some((s) => !s.ok && s.error?.code === 'DockerUnavailable')) code = EXIT.dockerUnavailable;
        else if (!result.passed && code === EXIT.ok) code = EXIT.expectationFailed;
      } finally {
        unsubscribe();
      }
    }
  } finally {
    store.close();
    temporary?.release();
  }
  const signal = signals.received();
  return signal ? SIGNAL_EXIT[signal] : code;
};

/**
 * What every command that writes a data dir does first, once it holds the data dir (so every
 * earlier session in it has stopped): go on with what a stopped simulator left running, then end
 * what is left unfinished with facts (docs/architecture.md "Crash recovery").
 */
const endStoppedSessions = async (store: EventStore, dataDir: string, by: string, o: { json?: boolean; dockerSocket?: string; colour?: boolean; allowPath?: string[] }): Promise<void> => {
  // The log is read once for both halves (SessionScan): what the resumed sessions append is read after it.
  const scan = new SessionScan(store);
  await goOnWithStoppedSessions(store, dataDir, { ...o, scan });
  reportRecovered(recoverAbandonedSessions(store, { by, ids: nanoIds(), now: Date.now, scan }), o.json);
};

/**
 * Go on with the sessions whose simulator died while their containers ran on (packages/platform/src/resume.ts):
 * each such run is re-attached and waited for, each run whose target had not started is driven
 * on and waited for, their facts printed as they come, then recovery ends what is left.
 */
const goOnWithStoppedSessions = async (store: EventStore, dataDir: string, o: { json?: boolean; dockerSocket?: string; colour?: boolean; allowPath?: string[]; scan?: SessionScan }): Promise<{ passed: boolean }> => {
  let passed = true;
  let start = 0;
  const unsubscribe = store.subscribe((events: StoredEvent[]) => {
    for (const e of events) {
      // Only resumed sessions append here: what they do is shown as it happens.
      if (!start) start = Date.parse(e.meta.at);
      out(o.json ? JSON.stringify({ kind: 'event', ...e }) : formatEvent(e, start, o.colour ?? false));
    }
  });
  try {
    const resumed = await resumeAbandonedSessions({
      store,
      dataDir,
      ...(o.scan ? { scan: o.scan } : {}),
      ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}),
      onReattached: (session, runs) => {
        if (o.json) out(JSON.stringify({ kind: 'reattached', session, runs }));
        else err(pc.yellow(`session ${session} stopped while ${runs.length} run(s) ran on: re-attached ${runs.join(', ')}; waiting for them to end`));
      },
      goOn: async (platform) => {
        if (!(await continueStoppedScenario(platform, store, dataDir, o))) passed = false;
      },
    });
    for (const r of resumed) {
      for (const w of r.workspaces) {
        if (o.json) out(JSON.stringify({ kind: 'resumedWorkspace', session: r.session, ...w }));
        else err(pc.yellow(`workspace ${w.workspaceId} of session ${r.session}, left mid-creation, was ${w.outcome === 'completed' ? 'created' : 'rolled back'}`));
      }
      for (const runId of r.lost) {
        if (o.json) out(JSON.stringify({ kind: 'lostRun', session: r.session, runId }));
        else err(pc.yellow(`run ${runId} of session ${r.session} failed PlatformRestarted: its target did not outlive the simulator`));
      }
      for (const run of r.reattached) {
        if (o.json) out(JSON.stringify({ kind: 'resumedRun', session: r.session, ...run }));
        else err(pc.yellow(`re-attached run ${run.runId} of session ${r.session} ended ${run.status}`));
      }
      for (const image of r.images) {
        if (o.json) out(JSON.stringify({ kind: 'resumedImage', session: r.session, ...image }));
        else err(pc.yellow(`image ${image.image} of session ${r.session}, left being made, was carried on and ended ${image.status}`));
      }
      for (const d of r.deployments) {
        if (o.json) out(JSON.stringify({ kind: 'resumedDeployment', session: r.session, ...d }));
        else err(pc.yellow(`deployment of ${d.service} (session ${r.session}), left starting replicas, was carried on and ended ${d.status}${d.reason ? `: ${d.reason}` : ''}`));
      }
      for (const run of r.drivenOn) {
        if (o.json) out(JSON.stringify({ kind: 'drivenOn', session: r.session, ...run }));
        else err(pc.yellow(`run ${run.runId} of session ${r.session}, whose target had not started, was driven on and ended ${run.status}`));
      }
    }
  } finally {
    unsubscribe();
  }
  return { passed };
};

/** What a step is and how it ended, as `amlsim run` shows it (a JSON line per step with --json). */
const printStep =
  (o: { json?: boolean }): NonNullable<Parameters<typeof runScenario>[1]['onStep']> =>
  (step, outcome) => {
    if (o.json) {
      if (outcome) out(JSON.stringify({ kind: 'step', index: step.index, verb: step.verb, line: step.line, ok: outcome.ok, error: outcome.error?.code, mismatch: outcome.mismatch }));
      return;
    }
    if (!outcome) out(pc.dim(`── step ${step.index + 1} · line ${step.line} · ${step.as ? `as ${step.as} · ` : ''}${step.verb}${step.expect.kind === 'error' ? ` (expect ${step.expect.code})` : ''}`));
    else if (!outcome.ok) out(pc.red(`   ✗ ${outcome.mismatch}`));
    else if (outcome.error) out(pc.yellow(`   ✓ refused as expected: ${outcome.error.code}`));
  };

/**
 * The rest of the scenario a stopped session was playing, played in that session once its runs
 * are re-attached and its services restored (packages/scenario `continueScenario`). False when
 * one was continued and did not pass.
 */
const continueStoppedScenario = async (platform: Platform, store: EventStore, dataDir: string, o: { json?: boolean; dockerSocket?: string; colour?: boolean; allowPath?: string[] }): Promise<boolean> => {
  const session = platform.session;
  const began = scenarioOfSession(store, session);
  if (!began) return true;
  const notContinued = (why: string) => {
    if (o.json) out(JSON.stringify({ kind: 'notContinued', session, file: began.file, why }));
    else err(pc.yellow(`the rest of ${began.file} (session ${session}) is not played: ${why}`));
    return true;
  };
  if (!existsSync(began.file)) return notContinued('the file is gone');
  const { scenarios, invalid } = loadScenarios([began.file], o.allowPath ?? []);
  if (invalid || !scenarios[0]) return notContinued('the file no longer parses');
  if (!o.json) out(pc.bold(`▶ ${scenarios[0].name}, continued  (${began.file}; session ${session})`));
  // Its images, deployments and services were gone on with before this (resumeAbandonedSessions).
  let result: ScenarioResult | undefined;
  try {
    result = await continueScenario(platform, scenarios[0], {
      store,
      dataDir,
      ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}),
      ...(o.allowPath?.length ? { allowPaths: o.allowPath } : {}),
      onStep: printStep(o),
    });
  } catch (e) {
    if (isSimError(e) && e.code === 'Conflict') return notContinued(e.message);
    throw e;
  }
  if (!result) return notContinued('one of its steps had already failed');
  if (o.json) out(JSON.stringify({ kind: 'continued', session, file: began.file, passed: result.passed }));
  printResult(result, { json: o.json, dataDir, store: 'sqlite', colour: o.colour ?? false }, (s) => platform.context.secrets.redact(s));
  return result.passed;
};

/** One line per session recovery ended (stderr, or a JSON line). */
const reportRecovered = (recovered: ReturnType<typeof recoverAbandonedSessions>, json?: boolean): void => {
  for (const r of recovered) {
    if (json) out(JSON.stringify({ kind: 'recovered', ...r }));
    else
      err(
        pc.yellow(
          `recovered session ${r.session}, whose simulator stopped before its work ended: ${[
            r.runs.length && `${r.runs.length} run(s) failed PlatformRestarted`,
            r.nodes.length && `${r.nodes.length} node(s) deprovisioned`,
            r.images.length && `${r.images.length} image build(s) failed`,
            r.services.length && `${r.services.length} web service(s) marked down`,
          ]
            .filter(Boolean)
            .join(', ')} (${r.facts} facts)`,
        ),
      );
  }
};

/**
 * `amlsim resume`: take the data dir, remove what stopped simulators left running (the start-up
 * sweep: containers, volumes, images, registries, temp dirs of lapsed leases), and end what
 * their sessions left unfinished in the log.
 */
const resumeCommand = async (o: { dataDir: string; json?: boolean; dockerSocket?: string; allowPath?: string[] }): Promise<number> => {
  const dataDir = resolve(o.dataDir);
  // Nothing to resume without a log: say so before taking (and so making) anything.
  openExisting(dataDir).close();
  const lock = lockForWriting(dataDir);
  if (typeof lock === 'number') return lock;
  try {
    const store = openExisting(dataDir);
    try {
      // First what ran on: its sessions' leases are taken over before the sweep could take them.
      // One scan of the log for the resume, the sweep's facts and the recovery (SessionScan).
      const scan = new SessionScan(store);
      const { passed } = await goOnWithStoppedSessions(store, dataDir, { ...o, scan });
      const swept = await sweepOrphans(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {});
      // What was swept of a session of this log is a fact of that session.
      const known = scan.catchUp().sessions;
      const ids = nanoIds();
      for (const s of swept) {
        if (o.json) out(JSON.stringify({ kind: 'swept', ...s }));
        else err(pc.yellow(`swept what session ${s.session} left (${s.why}): ${s.containers} container(s), ${s.volumes} volume(s), ${s.images} image(s), ${s.registries} registry process(es), ${s.tempDirs} temp dir(s), ${s.dataDirs} temporary data dir(s)`));
        if (!known.has(s.session)) continue;
        const correlationId = ids.next('cmd');
        store.append(STREAMS.session(s.session), 'any', [{ type: 'OrphansSwept', data: s, meta: { at: new Date().toISOString(), correlationId, causationId: correlationId, session: s.session } }]);
      }
      const recovered = recoverAbandonedSessions(store, { by: 'amlsim resume', ids, now: Date.now, scan });
      reportRecovered(recovered, o.json);
      if (!o.json && recovered.length === 0 && swept.length === 0) out('nothing to recover: every session of this data dir ended its work');
      // A stopped scenario played to its end that did not pass fails the resume, as it would have failed the run.
      return passed ? EXIT.ok : EXIT.expectationFailed;
    } finally {
      store.close();
    }
  } finally {
    lock.release();
  }
};

type ExportOptions = {
  format: ExportFormat;
  dataDir: string;
  out?: string;
  stable?: boolean;
  all?: boolean;
  driver: 'docker' | 'process';
  allowPath?: string[];
};

/**
 * `amlsim export`: draw a session of the data dir's log, or a scenario played for the purpose,
 * as a Mermaid sequence diagram or an HTML timeline (packages/core/src/projections/sequence.ts).
 */
const exportCommand = async (target: string, o: ExportOptions): Promise<number> => {
  const render = { stable: o.stable === true, bookkeeping: o.all === true };
  let events: StoredEvent[];
  let title: string;
  let code: number = EXIT.ok;
  if (isScenarioFile(target)) {
    if (!existsSync(target)) throw new CliError(`${target}: no such scenario file (export takes a session id of the data dir's log, or a scenario YAML file)`, EXIT.invalidFile);
    let played: Awaited<ReturnType<typeof playScenarioForExport>>;
    try {
      played = await playScenarioForExport(target, { driver: o.driver, ...(o.allowPath?.length ? { allowPaths: o.allowPath } : {}) });
    } catch (e) {
      if (!(e instanceof ScenarioInvalidError)) throw e;
      err(e.message);
      return EXIT.invalidFile;
    }
    if (!played.passed) {
      err(pc.yellow(`${target} did not pass on the ${o.driver} driver (amlsim run says why); its events are drawn as they came`));
      code = EXIT.expectationFailed;
    }
    ({ events } = played);
    title = o.stable ? played.name : `${played.name} (session ${played.session})`;
  } else {
    const store = openExisting(o.dataDir);
    try {
      const found = eventsOfSession(store, target);
      if (!found) {
        const known = sessionsOf(store);
        throw new CliError(
          `no session '${target}' in the event log at ${join(resolve(o.dataDir), 'events.sqlite')}; ${known.length ? `its sessions are: ${known.join(', ')}` : 'it holds no session'} (or give a scenario file, ending in .yaml)`,
          EXIT.usage,
        );
      }
      events = found;
    } finally {
      store.close();
    }
    title = `session ${target}`;
  }
  const text = renderExport(events, o.format, { ...render, title });
  if (o.out) {
    writeFileSync(o.out, text);
    err(pc.dim(`wrote ${o.out} (${o.format}, ${events.length} events)`));
  } else process.stdout.write(text);
  return code;
};

/** `--port <n>`: a TCP port, 0 for any free one. */
const tcpPort = (value: string): number => {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 65_535)) throw new InvalidArgumentError(`'${value}' is not a TCP port; give 0 (any free port) to 65535.`);
  return n;
};

/** The repository's own scenario files, which `amlsim serve` lists unless given --scenarios. */
const REPO_SCENARIOS = resolve(import.meta.dirname, '..', '..', '..', 'scenarios');
/** The dashboard `amlsim serve` shows at `/`, as `pnpm build` (scripts/setup.sh) leaves it. */
const WEB_ROOT = resolve(import.meta.dirname, '..', '..', 'web', 'dist');

/**
 * How `amlsim serve` plays a scenario (docs/server.md "Playing a scenario"): parsed as `amlsim
 * run` parses it, played by `runScenario` on the server's own log and data dir, on the
 * scenario's own driver (default process), holding the data dir's lock while it plays (an
 * `amlsim run` on the same data dir meanwhile is refused, and the play fails with DataDirLocked
 * while another simulator holds it).
 */
export const scenarioPlayer = (store: EventStore, dataDir: string, o: { allowPath?: string[]; dockerSocket?: string; lockHeld?: boolean } = {}): ScenarioPlayerPort => ({
  prepare: (text, file) => {
    let scenario: Scenario;
    try {
      scenario = parseScenario(text, file, { allowPaths: o.allowPath ?? [] });
    } catch (e) {
      if (!(e instanceof ScenarioInvalidError)) throw e;
      return { ok: false, issues: e.issues.map(({ file: f, line, col, message }) => ({ file: f, line, col, message })), text: e.message };
    }
    return {
      ok: true,
      name: scenario.name,
      file: scenario.file,
      steps: scenario.steps.map(({ index, line, verb }) => ({ index, line, verb })),
      play: async ({ beforeStep, signal }) => {
        // `amlsim serve --tenant` holds the data dir's lock itself, for its ARM session and the plays.
        const lock = o.lockHeld ? { release: () => {} } : lockDataDir(dataDir);
        try {
          // As `amlsim run` does: a session a killed simulator left in this data dir is gone on
          // with or ended before this play's session begins.
          await endStoppedSessions(store, dataDir, 'amlsim serve', { ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}), ...(o.allowPath ? { allowPath: o.allowPath } : {}) });
          const result = await runScenario(scenario, {
            store,
            dataDir,
            driver: scenario.options.driver ?? 'process',
            ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}),
            ...(o.allowPath?.length ? { allowPaths: o.allowPath } : {}),
            signal,
            beforeStep: ({ index, line, verb }) => beforeStep({ index, line, verb }),
          });
          const redact = (t: string) => result.platform.context.secrets.redact(t);
          return {
            passed: result.passed,
            session: result.session,
            failures: [
              ...result.failures.map((f) => ({ what: f.step ? `${f.what} at ${scenario.file}:${f.step.line}:${f.step.col}` : f.what, expected: f.expected, actual: redact(f.actual) })),
              ...result.invariantViolations.map((v) => ({ what: `invariant ${v.invariant}`, expected: 'to hold', actual: redact(v.message) })),
            ],
          };
        } finally {
          lock.release();
        }
      },
    };
  },
});

/**
 * `amlsim serve`: the data dir's log over HTTP on 127.0.0.1 (docs/server.md) until SIGINT or
 * SIGTERM. A reader, like `events` and `replay`: it takes no lock, so an `amlsim run` may write
 * the same data dir meanwhile, and the server's streams see what it appends (the server polls
 * the log's head, packages/server/src/log-tail.ts).
 */
type ServeOptions = { port: number; dataDir: string; scenarios: string; tenant?: string; armPort: number; allowPath?: string[]; driver: 'docker' | 'process'; dockerSocket?: string };

const serveCommand = async (o: ServeOptions): Promise<number> => {
  const dataDir = resolve(o.dataDir);
  // The tenant file first: a mistake in it is reported before anything starts.
  let tenant: ReturnType<typeof parseTenantFile> | undefined;
  if (o.tenant) {
    let text: string;
    try {
      text = readFileSync(o.tenant, 'utf8');
    } catch (e) {
      err(`${o.tenant}: cannot read the tenant file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      return EXIT.invalidFile;
    }
    try {
      tenant = parseTenantFile(text, o.tenant);
    } catch (e) {
      if (!(e instanceof ScenarioInvalidError)) throw e;
      err(e.message);
      return EXIT.invalidFile;
    }
  }
  // Opened (and made, when there is none yet) so that the server can be started before the first run.
  const store = openEventStore('sqlite', dataDir);
  // With a tenant, serve is a writer: its Azure session and the plays share the data dir's lock.
  const lock = tenant ? lockForWriting(dataDir) : undefined;
  if (typeof lock === 'number') {
    store.close();
    return lock;
  }
  let platform: Platform | undefined;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    if (tenant) {
      await endStoppedSessions(store, dataDir, 'amlsim serve', { ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}), ...(o.allowPath ? { allowPath: o.allowPath } : {}) });
      platform = await createPlatform({
        store,
        dataDir,
        tenant: { mfa: tenant.tenant.mfa, principals: tenant.tenant.principals, subscriptions: tenant.subscriptions },
        driver: o.driver,
        ...(o.dockerSocket ? { dockerSocket: o.dockerSocket } : {}),
      });
    }
    const ca = platform ? ensureLocalCa(join(dataDir, 'tls')) : undefined;
    try {
      server = await startServer({
        store,
        dataDir,
        port: o.port,
        ...(platform && ca
          ? {
              azure: {
                platform,
                tls: { cert: ca.serverChainPem, key: ca.serverKeyPem },
                port: o.armPort,
                allowedRoots: o.allowPath?.length ? o.allowPath.map((p) => resolve(p)) : [process.cwd()],
                onRequest: (line: string) => err(pc.dim(`azure: ${platform!.context.secrets.redact(line)}`)),
              },
            }
          : {}),
        scenariosDir: resolve(o.scenarios),
        player: scenarioPlayer(store, dataDir, { ...(tenant ? { lockHeld: true } : {}), ...(o.allowPath ? { allowPath: o.allowPath } : {}) }),
        webRoot: WEB_ROOT,
        onInternalError: (e, route) => err(pc.red(`amlsim serve: ${route} failed (a bug; please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)),
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new CliError(`a port on 127.0.0.1 is in use (--port ${o.port}${platform ? `, --arm-port ${o.armPort}` : ''}); pass another, or 0 for any free one`, EXIT.usage);
      }
      throw e;
    }
    out(`amlsim serve: ${server.url}`);
    out(pc.dim(`serving the event log at ${join(dataDir, 'events.sqlite')} (an amlsim run on --data-dir ${o.dataDir} shows up live; POST /api/play plays a scenario here); Ctrl-C to stop`));
    const azure = server.azure;
    if (platform && azure) {
      // One fact a line, for people and for scripts that read the banner (docs/azure.md).
      const caPath = join(dataDir, 'tls', 'ca.crt');
      out(`ARM endpoint: ${azure.url}`);
      out(`Azure AD authority: ${azure.url}`);
      out(`tenant: ${platform.directory.tenantId}`);
      out(`CA certificate: ${caPath}`);
      out(`data dir: ${dataDir}`);
      out(`store: sqlite ${join(dataDir, 'events.sqlite')} (kept on disk; session ${platform.session})`);
      out(pc.dim(`trust the CA: NODE_EXTRA_CA_CERTS=${caPath} (Node.js), REQUESTS_CA_BUNDLE=${caPath} (Python); point @azure/identity at the authority with disableInstanceDiscovery: true (docs/azure.md)`));
    } else {
      out(pc.dim('no ARM endpoint: give --tenant <file> to serve Azure AD and ARM for the official Azure SDKs (docs/azure.md)'));
    }
    const signal = await new Promise<'SIGINT' | 'SIGTERM'>((done) => {
      process.once('SIGINT', () => done('SIGINT'));
      process.once('SIGTERM', () => done('SIGTERM'));
    });
    err(pc.dim(`${signal}: amlsim serve stopped`));
    return SIGNAL_EXIT[signal];
  } finally {
    await server?.close();
    if (platform) await platform.interrupt('amlsim serve stopped', { graceMs: 5_000 });
    lock?.release();
    store.close();
  }
};

const openExisting = (dataDir: string): EventStore => {
  const file = join(resolve(dataDir), 'events.sqlite');
  if (!existsSync(file)) throw new CliError(`no event log at ${file}; run a scenario with --store sqlite (the default) first, or pass --data-dir`, EXIT.invalidFile);
  return openEventStore('sqlite', resolve(dataDir));
};

export const buildProgram = (): Command => {
  const program = new Command('amlsim')
    .description('Event-sourced simulator of Azure Machine Learning enterprise security (SDK v1 era).')
    .version(VERSION, '-V, --version', 'print the version of amlsim')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    // Usage errors are thrown (and mapped to exit 64 by main), not exited on with commander's 1;
    // set before the commands are added, which inherit it.
    .exitOverride()
    .addHelpText('after', `\n${EXIT_CODE_HELP}`);
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
    .option(
      '--allow-path <dir>',
      "also let the scenarios' paths (source, path, scoringScript, dependency files) lead into this directory; by default they must stay inside the scenario file's directory (repeatable)",
      allowPath,
    )
    .option('--no-color', 'plain output')
    .addHelpText('after', `\n${EXIT_CODE_HELP}`)
    .action(async (files: string[], opts: Omit<RunOptions, 'colour'> & { color: boolean }) => {
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
    .description('rebuild every read model and state from the log and report any divergence from what was saved (exit 1 on any ✗)')
    .addOption(dataDir)
    .action((opts: { dataDir: string }) => {
      const store = openExisting(opts.dataDir);
      try {
        // A reader needs no lock; the writer holding it tells which session may still be running.
        const holder = readDataDirLock(resolve(opts.dataDir));
        const report = replay(store, { onProgress: (n) => err(pc.dim(`  replayed ${n.toLocaleString('en')} events…`)), writerLive: holder?.alive === true });
        for (const s of report.sessions) {
          if (s.recovered) out(pc.yellow(`↻ session ${s.session}: ${s.events} events; its simulator stopped and the next one ended its unfinished work (SessionRecovered), so it saved nothing to compare`));
          else if (s.inProgress) out(pc.dim(`… session ${s.session}: ${s.events} events so far; still being written by pid ${holder?.pid}, nothing saved to compare yet`));
          else if (s.divergences.length === 0) out(pc.green(`✓ session ${s.session}: ${s.events} events, read models and aggregates match`));
          else {
            out(pc.red(`✗ session ${s.session}: ${s.events} events`));
            for (const d of s.divergences) out(`    ${d}`);
          }
        }
        if (!report.ok) process.exitCode = EXIT.expectationFailed;
      } finally {
        store.close();
      }
    });
  program
    .command('export')
    .description(
      "draw a session of the data dir's log, or a scenario (played first on the process driver in a temporary data dir), as a Mermaid sequence diagram or a self-contained HTML timeline: one arrow per event, from the party that acted to the party it acted on",
    )
    .argument('<session|scenario>', "a session id of the data dir's log (amlsim events shows them), or a scenario YAML file")
    .addOption(new Option('--format <format>', 'mermaid (a sequenceDiagram) or html (one page, no script, opens offline)').choices(EXPORT_FORMATS).default('mermaid'))
    .addOption(dataDir)
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--stable', 'alias ids, fingerprints and channels in order of appearance (ws1, r1, fp1 …) and leave times out, so that two runs of a scenario export the same text')
    .option('--all', "also draw the simulator's bookkeeping (scenario steps, effect starts)")
    .addOption(new Option('--driver <driver>', 'where a scenario runs its compute: process (the default) or docker (needed for images and web services)').choices(['docker', 'process']).default('process'))
    .option('--allow-path <dir>', "as for run: a directory besides the scenario file's own that its paths may lead into (repeatable)", allowPath)
    .addHelpText('after', `\nExamples:\n  amlsim export scenarios/train-managed-compute.yaml --format mermaid --stable\n  amlsim export s_9seujnez62jd --format html --out run.html\n\n${EXIT_CODE_HELP}`)
    .action(async (target: string, opts: ExportOptions) => {
      process.exitCode = await exportCommand(target, opts);
    });
  program
    .command('serve')
    .description(
      "serve the data dir's event log over HTTP on 127.0.0.1 until Ctrl-C: pages of the log, a live Server-Sent Events stream of it, its sessions, the event catalog and the scenario files, and a scenario player with a step mode (docs/server.md); an amlsim run on the same data dir shows up live",
    )
    .addOption(new Option('--port <n>', 'TCP port on 127.0.0.1; 0 for any free port').default(DEFAULT_PORT).argParser(tcpPort))
    .addOption(dataDir)
    .addOption(new Option('--scenarios <dir>', 'the scenario files GET /api/scenarios lists').default(REPO_SCENARIOS, "the repository's scenarios/"))
    .option('--tenant <file>', "serve Azure AD and ARM over HTTPS for the official Azure SDKs, with who may sign in from this tenant file (the scenario language's tenant: and subscriptions:, docs/azure.md)")
    .addOption(new Option('--arm-port <n>', 'with --tenant: the HTTPS port of Azure AD and ARM on 127.0.0.1; 0 for any free port').default(7351).argParser(tcpPort))
    .addOption(new Option('--driver <driver>', 'with --tenant: where the jobs of the ARM session run').choices(['docker', 'process']).default('docker'))
    .option('--docker-socket <path>', "the Docker engine's socket, when it is not the standard one")
    .option('--allow-path <dir>', 'with --tenant: a directory a file:// codeUri or modelUri may lead into (repeatable; default the current directory); also widens the plays\' paths', allowPath)
    .addHelpText('after', `\nExamples:\n  amlsim serve\n  amlsim serve --port 0 --data-dir /tmp/lesson\n  amlsim serve --tenant tenant.yaml --arm-port 0\n\n${EXIT_CODE_HELP}`)
    .action(async (opts: ServeOptions) => {
      process.exitCode = await serveCommand(opts);
    });
  program
    .command('resume')
    .description(
      "go on with the data dir's stopped sessions — re-attach runs whose containers ran on, play the rest of the scenario each was playing — then end what is left unfinished (runs fail PlatformRestarted, nodes deprovisioned, builds failed, services marked down); `run` does this too when it starts",
    )
    .addOption(dataDir)
    .option('--json', 'print JSON lines')
    .option('--docker-socket <path>', "the Docker engine's socket, when it is not the standard one")
    .option('--allow-path <dir>', "as for run: a directory besides the scenario file's own that the continued scenario's paths may lead into (repeatable)", allowPath)
    .action(async (opts: { dataDir: string; json?: boolean; dockerSocket?: string; allowPath?: string[] }) => {
      process.exitCode = await resumeCommand(opts);
    });
  return program;
};

/**
 * The exit code for an error that ended a command, after printing what the user needs (commander
 * has printed its own usage errors already).
 */
export const exitCodeOf = (e: unknown, print: (line: string) => void = err): number => {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage; // --help and --version exit 0
  if (e instanceof CliError) {
    print(pc.red(e.message));
    return e.exitCode;
  }
  if (isSimError(e)) {
    print(pc.red(`${e.code}: ${e.message}`));
    if (e.code === 'DockerUnavailable') return EXIT.dockerUnavailable;
    if (e.code === 'DataDirLocked') return EXIT.dataDirLocked;
    if (e.code === 'StoreUnreadable' || e.code === 'StoreSchemaTooNew') return EXIT.invalidFile;
    return EXIT.expectationFailed;
  }
  const detail = e instanceof Error ? (e.stack ?? e.message) : String(e);
  print(pc.red(`amlsim: internal error (this is a bug in amlsim; please report it with the command you ran):\n${detail}`));
  return EXIT.internal;
};

/** Runs the CLI on `argv` (as process.argv) and returns the exit code. */
export const main = async (argv: readonly string[]): Promise<number> => {
  try {
    process.exitCode = undefined;
    await buildProgram().parseAsync([...argv]);
    return Number(process.exitCode ?? EXIT.ok);
  } catch (e) {
    return exitCodeOf(e);
  }
};

/**
 * Run the CLI as the process: exit codes as EXIT_CODES says, also for a crash outside a
 * command's promise. Used when main.ts is the entry (`tsx packages/cli/src/main.ts`) and by
 * bin/amlsim.js, which loads this file in its own process so that a signal sent to it reaches
 * the simulator itself (no wrapper process to forward it).
 */
export const runAsMain = (argv: readonly string[]): void => {
  // A throw outside the command's promise (a timer, a stream callback) is a crash too: exit 70, not Node's 1.
  const crash = (e: unknown) => {
    process.exitCode = exitCodeOf(e);
    process.exit();
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  void main(argv).then((code) => {
    // The command is done and its sessions are closed (their containers, sockets and leases
    // gone): nothing left running may keep the CLI alive — a step interrupted in flight may
    // still hold a timer, and a resumed session was seen to leave a socket open. (stdout and
    // stderr are pipes or files here, written synchronously, so nothing printed is lost.)
    process.exit(code);
  });
};

const isMain = process.argv[1] && resolve(process.argv[1]).endsWith(join('cli', 'src', 'main.ts'));
if (isMain) runAsMain(process.argv);
