/// <reference lib="dom" />
// The page.evaluate callbacks below run in the browser: DOM types for them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { EventStore, StoredEvent } from '@amlsim/core';
import type { RunningServer } from '@amlsim/server';
import { ScenarioInvalidError, formatIssue, parseScenario } from '@amlsim/scenario';
import { ARTIFACTS, startDashboard, type Dashboard } from './dashboard-harness';
import { SCENARIO_DIR } from './helpers';

/**
 * The dashboard as a lecture uses it (docs/server.md "The dashboard", "Playing a scenario"), in a
 * real headless Chromium against the real server on a real SQLite log with the CLI's scenario
 * player, as test/dashboard.int.test.ts sets it up: step mode stops before each step and shows
 * it, a dropped stream resumes with no gap and no duplicate, an invalid upload shows the CLI's
 * `file:line:col` and plays nothing, and the Tokens, Runs, Activity log and App Insights tabs
 * after real training and web-service scenarios. Screenshots go to test/artifacts/dashboard/.
 */

let browser: Browser;
let server: RunningServer;
let store: EventStore;
let dashboard: Dashboard | undefined;

beforeAll(async () => {
  dashboard = await startDashboard('amlsim-dashboard-lecture-');
  ({ browser, server, store } = dashboard);
});

afterAll(async () => {
  await dashboard?.close();
});

type ProblemPage = Page & { problems: string[] };

const openPage = async (): Promise<ProblemPage> => {
  const page = (await browser.newPage({ viewport: { width: 1600, height: 900 } })) as ProblemPage;
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector('[data-testid=player-state]');
  return page;
};

const stateText = async (page: Page): Promise<string> => (await page.textContent('[data-testid=player-state]')) ?? '';

const waitForState = (page: Page, pattern: RegExp, timeout = 30_000) =>
  page.waitForFunction((source) => new RegExp(source).test(document.querySelector('[data-testid=player-state]')?.textContent ?? ''), pattern.source, { timeout });

/** Waits till the page's copy of the log reaches the store's head, and the shown session is `session`. */
const waitForHead = async (page: Page, session?: string) => {
  await page.waitForFunction((head) => document.querySelector('.app')?.getAttribute('data-head') === String(head), store.headPosition(), { timeout: 30_000 });
  if (session) await page.waitForFunction((s) => document.querySelector('.app')?.getAttribute('data-session') === s, session);
};

const allEvents = (): StoredEvent[] => [...store.readAll(0)];
const sessionEvents = (session: string): StoredEvent[] => allEvents().filter((e) => e.meta.session === session);
/** The session whose ScenarioStarted comes after log position `after` (a play begun since). */
const sessionStartedAfter = (after: number): string | undefined => allEvents().find((e) => e.position > after && e.type === 'ScenarioStarted')?.meta.session;

/** Plays `scenario` from the page to the end (Run) and answers its session; it must pass. */
const play = async (page: Page, scenario: string, timeout = 240_000): Promise<string> => {
  const before = store.headPosition();
  await page.selectOption('select[aria-label=Scenario]', scenario);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  // The player still shows the previous play's end until this one has begun: wait on the
  // server's player for this play's session to have ended, then on the page to show it.
  await expect
    .poll(async () => {
      const view = (await (await fetch(`${server.url}/api/play`)).json()) as { state: string; session?: string };
      return view.session !== undefined && view.session === sessionStartedAfter(before) && view.state !== 'running';
    }, { timeout, interval: 200 })
    .toBe(true);
  await waitForState(page, /passed|failed|stopped/, timeout);
  const failures = (await page.$('[data-testid=play-failures]')) ? await page.textContent('[data-testid=play-failures]') : '';
  expect({ state: await stateText(page), failures }).toEqual({ state: expect.stringContaining('passed'), failures: '' });
  const session = sessionStartedAfter(before);
  expect(session).toBeDefined();
  await waitForHead(page, session);
  return session!;
};

const openTab = async (page: Page, title: string) => {
  await page.getByRole('tab', { name: title, exact: true }).click();
  await page.waitForSelector(`[role=tabpanel][aria-label="${title}"]`);
};

describe('the dashboard in a lecture, in a real browser', () => {
  it('step mode stops before each step: one step per press, the next step shown, then Resume plays to the end and passes', async () => {
    const page = await openPage();
    const file = 'custom-roles.yaml';
    const text = readFileSync(join(SCENARIO_DIR, file), 'utf8');
    const lines = text.split('\n');
    const steps = parseScenario(text, join(SCENARIO_DIR, file)).steps;
    const before = store.headPosition();

    await page.selectOption('select[aria-label=Scenario]', file);
    await page.getByRole('button', { name: 'Step mode' }).click();
    await waitForState(page, /paused before step 1\b/);
    const session = sessionStartedAfter(before)!;
    expect(session).toBeDefined();
    const ended = () => sessionEvents(session).filter((e) => e.type === 'ScenarioStepEnded').map((e) => e.data['index']);

    /** Paused before step `index` (0-based): no later step ran, and its YAML is the one shown. */
    const expectPausedBefore = async (index: number) => {
      expect(await stateText(page)).toBe(`paused before step ${index + 1}`);
      expect(ended()).toEqual(steps.slice(0, index).map((s) => s.index));
      const step = steps[index]!;
      const card = page.locator('[data-testid=next-step]');
      expect(await card.locator('.next-step-title').textContent()).toBe(`next: step ${index + 1}, ${step.verb} (line ${step.line})`);
      const yaml = (await card.locator('pre').textContent())!;
      // The step's own text of the file: its verb line, and not the next step's.
      expect(text).toContain(yaml);
      expect(yaml).toContain(lines[step.line - 1]!.trim());
      const following = steps[index + 1];
      if (following && lines[following.line - 1]!.trim() !== lines[step.line - 1]!.trim()) expect(yaml).not.toContain(lines[following.line - 1]!.trim());
      // The page's log reaches the store's: what the steps did is drawn already.
      await waitForHead(page, session);
    };

    await expectPausedBefore(0);
    await page.screenshot({ path: join(ARTIFACTS, 'step-mode-paused.png') });
    const presses = 5;
    for (let k = 1; k <= presses; k++) {
      await page.getByRole('button', { name: 'Step ▸' }).click();
      await waitForState(page, new RegExp(`paused before step ${k + 1}\\b`));
      await expectPausedBefore(k);
    }
    // While paused, nothing moves on by itself.
    await page.waitForTimeout(500);
    expect(ended()).toHaveLength(presses);
    await page.screenshot({ path: join(ARTIFACTS, 'step-mode-stepped.png') });

    await page.getByRole('button', { name: 'Resume' }).click();
    await waitForState(page, /passed|failed|stopped/, 90_000);
    expect(await stateText(page)).toContain('passed');
    expect(ended()).toEqual(steps.map((s) => s.index));
    expect(await page.$('[data-testid=next-step]')).toBeNull();
    await waitForHead(page, session);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('a reconnect resumes the stream with no gap and no duplicate: the page holds every log position 1..head exactly once', async () => {
    const page = await openPage();
    await waitForHead(page);
    const loaded = Number(await page.getAttribute('.app', 'data-head'));
    // Reopen the stream each time new events have arrived while a scenario plays (at most once
    // a frame, as the log client tells its listeners), and every 30 ms besides, so reconnects
    // fall between events the page has and events it has not seen yet.
    await page.evaluate(() => {
      type Log = { reconnect(): void; subscribe(f: () => void): () => void; head: number };
      const w = window as unknown as { amlsim: { log: Log }; reconnectedAt: number[]; stopReconnecting: () => void };
      const log = w.amlsim.log;
      let at = log.head;
      w.reconnectedAt = [];
      const reconnect = () => {
        log.reconnect();
        w.reconnectedAt.push(log.head);
      };
      const unsubscribe = log.subscribe(() => {
        if (log.head === at) return;
        at = log.head;
        reconnect();
      });
      const timer = setInterval(reconnect, 30);
      w.stopReconnecting = () => {
        unsubscribe();
        clearInterval(timer);
      };
    });
    const session = await play(page, 'train-managed-compute.yaml');
    const reconnectedAt = await page.evaluate(() => {
      const w = window as unknown as { reconnectedAt: number[]; stopReconnecting: () => void };
      w.stopReconnecting();
      return w.reconnectedAt;
    });
    // Reconnects in the middle of the play's events: after its first, before its last.
    const played = sessionEvents(session).map((e) => e.position);
    const midStream = reconnectedAt.filter((h) => h >= played[0]! && h < played.at(-1)!);
    expect(midStream.length).toBeGreaterThan(3);
    // And once more after the play, then a few more events (a second play) through the new stream.
    await page.evaluate(() => (window as unknown as { amlsim: { log: { reconnect(): void } } }).amlsim.log.reconnect());
    await play(page, 'mfa.yaml');
    const head = store.headPosition();
    expect(head).toBeGreaterThan(loaded);
    await waitForHead(page);
    const copy = await page.evaluate(() => {
      const log = (window as unknown as { amlsim: { log: { events: Array<{ position: number }>; anomalies: { duplicates: number; gaps: number }; connections: number; connected: boolean; head: number } } }).amlsim.log;
      return { positions: log.events.map((e) => e.position), anomalies: { ...log.anomalies }, connections: log.connections, connected: log.connected, head: log.head };
    });
    expect(copy.head).toBe(head);
    expect(copy.positions).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    expect(copy.anomalies).toEqual({ duplicates: 0, gaps: 0 });
    // The stream was opened again (a reconnect closed before the server answered opens none).
    expect(copy.connections).toBeGreaterThan(1);
    expect(copy.connected).toBe(true);
    expect(await page.textContent('[data-testid=connection]')).toBe('live');
    // The shown session is whole: as many events as the store holds for it.
    await page.selectOption('.session-pick select', session);
    await page.waitForFunction((s) => document.querySelector('.app')?.getAttribute('data-session') === s, session);
    expect(Number(await page.getAttribute('.app', 'data-count'))).toBe(sessionEvents(session).length);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('an uploaded scenario file that is invalid shows each problem at file:line:col as the CLI prints it, and nothing is played', async () => {
    const page = await openPage();
    await waitForHead(page);
    const name = 'lecture-bad.yaml';
    // An unknown verb (a typo) and a field createWorkspace does not have.
    const text = [
      'name: A typo in class',
      'tenant:',
      '  principals:',
      '    alice: { kind: user }',
      'steps:',
      '  - signIn: alice',
      '  - as: alice',
      '    createWorkspce: { name: ws1, resourceGroup: rg1, region: eastus }',
      '  - as: alice',
      '    createWorkspace: { name: ws2, resourceGroup: rg1, region: eastus, colour: blue }',
      '',
    ].join('\n');
    // What `amlsim run` would print for this file where the server keeps uploads.
    let issues: ScenarioInvalidError['issues'] = [];
    let cliOutput = '';
    try {
      parseScenario(text, join(SCENARIO_DIR, name));
    } catch (e) {
      if (!(e instanceof ScenarioInvalidError)) throw e;
      issues = e.issues;
      // `amlsim run` prints the error's message (packages/cli/src/main.ts).
      cliOutput = e.message;
    }
    expect(issues.length).toBeGreaterThanOrEqual(2);
    expect(issues.map((i) => i.line)).toEqual(expect.arrayContaining([8, 10]));

    const upload = join(dashboard!.dir, name);
    writeFileSync(upload, text);
    const head = store.headPosition();
    const sessions = new Set(allEvents().map((e) => e.meta.session));
    const state = await stateText(page);
    await page.setInputFiles('label.upload input[type=file]', upload);
    await page.waitForFunction((n) => document.querySelector<HTMLSelectElement>('select[aria-label=Scenario]')?.selectedOptions[0]?.textContent === `${n} (uploaded)`, name);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const problem = page.locator('[data-testid=play-problem]');
    await problem.waitFor();
    const shown = await problem.locator('.issue').evaluateAll((divs) => divs.map((d) => ({ at: d.querySelector('code')!.textContent, text: d.textContent })));
    expect(shown).toEqual(issues.map((i) => ({ at: `${i.file}:${i.line}:${i.col}`, text: formatIssue(i) })));
    // One a line, the problems read as the CLI's own output for this file.
    expect(shown.map((s) => s.text).join('\n')).toBe(cliOutput);
    expect(await problem.locator('> div').first().textContent()).toBe(`ScenarioInvalid: ${issues.length} problems in the scenario file`);
    await page.screenshot({ path: join(ARTIFACTS, 'upload-invalid.png') });

    // Nothing was played: no new event, no new session, and the player is as it was.
    await page.waitForTimeout(500);
    expect(store.headPosition()).toBe(head);
    expect(new Set(allEvents().map((e) => e.meta.session))).toEqual(sessions);
    expect(await stateText(page)).toBe(state);
    expect(state).not.toMatch(/playing|paused/);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('after a training run: Tokens shows one bar per token by fingerprint and no token value, Runs its status history and a chart per metric, Activity log the S7.2 gap', async () => {
    const page = await openPage();
    const session = await play(page, 'train-managed-compute.yaml');
    const events = sessionEvents(session);

    await openTab(page, 'Tokens');
    const issued = events.filter((e) => e.type === 'ArmTokenIssued' || e.type === 'RunTokenIssued' || e.type === 'ServiceTokenIssued');
    expect(issued.map((e) => e.type)).toEqual(expect.arrayContaining(['ArmTokenIssued', 'RunTokenIssued']));
    const rows = await page.$$eval('[data-testid=tokens] .token-row', (rs) => rs.map((r) => ({ fp: r.getAttribute('data-token'), kind: r.getAttribute('data-kind'), state: r.getAttribute('data-state'), shown: r.querySelector('.token-fp')?.textContent, bar: r.querySelector('.token-bar')?.getBoundingClientRect().width ?? 0 })));
    expect(rows.map((r) => r.fp).sort()).toEqual(issued.map((e) => String(e.data['fingerprint'])).sort());
    for (const r of rows) {
      expect(r.shown).toBe(r.fp);
      expect(r.bar).toBeGreaterThan(0);
    }
    // The run token was revoked when the run completed (S1.3).
    expect(rows.find((r) => r.kind === 'run')?.state).toBe('revoked');
    await page.screenshot({ path: join(ARTIFACTS, 'tab-tokens.png') });
    await expectNoTokenValue(page);

    await openTab(page, 'Runs');
    const submitted = events.filter((e) => e.type === 'RunSubmitted');
    expect(submitted).toHaveLength(1);
    const runId = String(submitted[0]!.data['runId']);
    const card = page.locator(`[data-testid=runs] .run-card[data-run="${runId}"]`);
    expect(await card.getAttribute('data-status')).toBe('Completed');
    const history = await card.locator('[data-testid=status-history] .status-step').evaluateAll((bs) => bs.map((b) => b.firstChild?.textContent));
    expect(history).toEqual(['NotStarted', 'Starting', 'Preparing', 'Queued', 'Running', 'Finalizing', 'Completed']);
    const metrics = [...new Set(events.filter((e) => e.type === 'MetricsWrittenBack').flatMap((e) => (e.data['rows'] as Array<{ name: string; kind: string; value: unknown }>).filter((r) => r.kind === 'scalar' && typeof r.value === 'number').map((r) => r.name)))].sort();
    expect(metrics).toEqual(expect.arrayContaining(['accuracy', 'loss']));
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=runs] .metric-chart canvas').length >= n, metrics.length);
    const charts = await card.locator('.metric-chart').evaluateAll((fs) =>
      fs.map((f) => {
        const canvas = f.querySelector('canvas')!;
        // Drawn: some pixel of the canvas is not blank.
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) inked++;
        return { metric: f.getAttribute('data-metric'), uplot: Boolean(f.querySelector('.uplot')), width: canvas.getBoundingClientRect().width, inked };
      }),
    );
    expect(charts.map((c) => c.metric).sort()).toEqual(metrics);
    for (const c of charts) {
      expect(c.uplot).toBe(true);
      expect(c.width).toBeGreaterThan(100);
      expect(c.inked).toBeGreaterThan(0);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'tab-runs.png') });
    await expectNoTokenValue(page);

    await openTab(page, 'Activity log');
    const gaps = await page.$$eval('[data-testid=activity] .activity-row[data-gap="S7.2"]', (gs) => gs.map((g) => ({ type: g.getAttribute('data-gap-type'), text: g.textContent })));
    expect(gaps).toEqual([{ type: 'RunSubmitted', text: expect.stringContaining(`Not in the activity log: training run ${runId} started`) }]);
    expect(gaps[0]!.text).toContain('S7.2');
    // The writes the activity log does have are there too, the refused submit among them Failed.
    const entries = await page.$$eval('[data-testid=activity] .activity-row[data-entry]', (es) => es.map((e) => e.getAttribute('data-status')));
    expect(entries.length).toBeGreaterThan(2);
    expect(entries).toContain('Succeeded');
    await page.screenshot({ path: join(ARTIFACTS, 'tab-activity.png') });
    await expectNoTokenValue(page);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('after a web service is called: App Insights lists every scoring request with the S7.3 fields', async () => {
    const page = await openPage();
    const session = await play(page, 'webservice-aci.yaml', 480_000);
    const recorded = sessionEvents(session).filter((e) => e.type === 'ScoringRequestRecorded');
    expect(recorded.length).toBeGreaterThan(3);

    await openTab(page, 'App Insights');
    const rows = await page.$$eval('[data-testid=insights] .request', (rs) => rs.map((r) => ({ id: r.getAttribute('data-request'), status: r.getAttribute('data-status'), text: r.textContent ?? '' })));
    expect(rows.map((r) => r.id)).toEqual(recorded.map((e) => String(e.data['RequestId'])));
    rows.forEach((row, i) => {
      const d = recorded[i]!.data;
      expect(row.status).toBe(String(d['StatusCode']));
      // S7.3's fields by their own names, with the values the record holds.
      for (const [field, value] of [
        ['HTTPMethod', d['HTTPMethod']],
        ['UserAgent', d['UserAgent']],
        ['ComputeType', d['ComputeType']],
        ['RequestUrl', d['RequestUrl']],
        ['StatusCode', d['StatusCode']],
        ['RequestId', d['RequestId']],
        ['Duration', `${String(d['DurationMs'])} ms`],
      ] as const) {
        expect(row.text).toContain(field);
        expect(row.text).toContain(String(value));
      }
    });
    // Refused calls (the keyed service without its key) are among them.
    expect(rows.map((r) => r.status)).toEqual(expect.arrayContaining(['200', '401']));
    await page.screenshot({ path: join(ARTIFACTS, 'tab-insights.png') });
    await expectNoTokenValue(page);

    // The model registration is the other action S7.2 says the activity log does not record.
    await openTab(page, 'Activity log');
    expect(await page.$$eval('[data-testid=activity] .activity-row[data-gap="S7.2"]', (gs) => gs.map((g) => g.getAttribute('data-gap-type')))).toEqual(['ModelRegistered']);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("the Statecharts tab draws the run's statechart from its machine, the current state highlighted, the last transition named; the slider takes it back to Running", async () => {
    const page = await openPage();
    const session = await play(page, 'train-managed-compute.yaml');
    const events = sessionEvents(session);
    const runId = String(events.find((e) => e.type === 'RunSubmitted')!.data['runId']);
    const runFacts = events.filter((e) => e.stream === `run-${runId}`);

    await openTab(page, 'Statecharts');
    await page.selectOption('select[aria-label=Aggregate]', `run:${runId}`);
    const chart = '[data-testid=statechart]';
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('data-current') === 'completed', chart);
    // Drawn from the machine: a box per state of the run statechart, the current one marked.
    await page.waitForSelector(`${chart} svg [data-state="run.completed"].current`);
    const states = await page.$$eval(`${chart} svg [data-state]`, (els) => els.map((e) => e.getAttribute('data-state')));
    expect(states).toEqual(expect.arrayContaining(['notStarted', 'starting', 'preparing', 'queued', 'running', 'finalizing', 'completed', 'failed', 'canceled'].map((st) => `run.${st}`)));
    expect(await page.$$(`${chart} svg .current`)).toHaveLength(1);
    // The last transition is the run's own last state change, and its edge is drawn as taken.
    const lastFact = await page.getAttribute('[data-testid=last-transition]', 'data-event');
    expect(runFacts.map((e) => e.type)).toContain(lastFact);
    expect(await page.$$(`${chart} svg .last`)).not.toHaveLength(0);
    await page.screenshot({ path: join(ARTIFACTS, 'statechart-completed.png') });

    // Back to the moment the run reported Running: the same chart shows it Running.
    const running = runFacts.find((e) => e.type === 'RunStatusReported' && e.data['status'] === 'Running')!;
    const count = events.findIndex((e) => e.position === running.position) + 1;
    await page.evaluate((n) => {
      const input = document.querySelector<HTMLInputElement>('[data-testid=time-slider]')!;
      input.value = String(n);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }, count);
    await page.waitForFunction((n) => document.querySelector('.app')?.getAttribute('data-count') === String(n), count);
    await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('data-current') === 'running', chart);
    await page.waitForSelector(`${chart} svg [data-state="run.running"].current`);
    await page.screenshot({ path: join(ARTIFACTS, 'statechart-running.png') });
    expect(page.problems).toEqual([]);
    await page.close();
  }, 300_000);
});

/** No JWT (a base64url `{"` is `eyJ`) anywhere in the page: its markup, attributes and titles. */
const expectNoTokenValue = async (page: Page) => {
  expect(await page.content()).not.toContain('eyJ');
  expect(await page.evaluate(() => document.body.innerText)).not.toContain('eyJ');
};
