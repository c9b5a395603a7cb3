/// <reference lib="dom" />
// The page.evaluate callbacks below run in the browser: DOM types for them.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { arrowOf, drawnEvents, type EventStore, type StoredEvent } from '@amlsim/core';
import type { RunningServer } from '@amlsim/server';
import { ARTIFACTS, startDashboard, type Dashboard } from './dashboard-harness';

/**
 * The dashboard (packages/web, docs/server.md "The dashboard") in a real headless Chromium
 * (Debian's, installed by scripts/setup.sh) against the real server on a real SQLite log, with
 * the CLI's own scenario player: a scenario run from the page is drawn arrow by arrow in log
 * order, a refused call is shown refused and explains its RBAC evaluation, and the time slider
 * rebuilds an earlier point. Screenshots of each end state go to test/artifacts/dashboard/.
 */

let browser: Browser;
let server: RunningServer;
let store: EventStore;
let dashboard: Dashboard | undefined;

beforeAll(async () => {
  dashboard = await startDashboard('amlsim-dashboard-');
  ({ browser, server, store } = dashboard);
});

afterAll(async () => {
  await dashboard?.close();
});

const openPage = async (): Promise<Page> => {
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  (page as Page & { problems?: string[] }).problems = problems;
  await page.goto(server.url);
  await page.waitForSelector('[data-testid=player-state]');
  return page;
};

const play = async (page: Page, scenario: string) => {
  await page.selectOption('select[aria-label=Scenario]', scenario);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForFunction(() => /passed|failed/.test(document.querySelector('[data-testid=player-state]')?.textContent ?? ''), null, { timeout: 90_000 });
  const state = await page.textContent('[data-testid=player-state]');
  expect(state).toContain('passed');
  // The page has every event of the log and shows the newest session up to its end.
  await page.waitForFunction((head) => document.querySelector('.app')?.getAttribute('data-head') === String(head), store.headPosition());
};

const sessionEvents = (session: string): StoredEvent[] => [...store.readAll(0)].filter((e) => e.meta.session === session);

describe('the dashboard in a real browser', () => {
  it('draws a scenario run from the page arrow by arrow in log order, each from the party that acted to the one it acted on', async () => {
    const page = await openPage();
    await play(page, 'custom-roles.yaml');
    const session = (await page.getAttribute('.app', 'data-session'))!;
    const expected = drawnEvents(sessionEvents(session));
    expect(expected.length).toBeGreaterThan(20);
    // Rows are virtual: read them as the diagram scrolls from top to bottom.
    const seen = new Map<number, { type: string; from: string; to: string }>();
    await page.evaluate(() => (document.querySelector('[data-testid=sequence]')!.scrollTop = 0));
    for (let guard = 0; guard < 200; guard++) {
      const rows = await page.$$eval('g.arrow', (gs) => gs.map((g) => ({ position: Number(g.getAttribute('data-position')), type: g.getAttribute('data-type')!, from: g.getAttribute('data-from')!, to: g.getAttribute('data-to')! })));
      for (const r of rows) seen.set(r.position, r);
      const atEnd = await page.evaluate(() => {
        const el = document.querySelector('[data-testid=sequence]')!;
        const end = el.scrollTop + el.clientHeight >= el.scrollHeight - 2;
        el.scrollTop += el.clientHeight / 2;
        return end;
      });
      if (atEnd) break;
      await page.waitForTimeout(30);
    }
    const drawn = [...seen.entries()].sort((a, b) => a[0] - b[0]);
    expect(drawn.map(([p]) => p)).toEqual(expected.map((e) => e.position));
    expect(drawn.map(([, r]) => r.type)).toEqual(expected.map((e) => e.type));
    for (const [, r] of drawn) expect({ from: r.from, to: r.to }).toEqual(arrowOf(r.type));
    expect(await page.$$eval('.lane-head', (hs) => hs.map((h) => h.getAttribute('data-lane')))).toEqual(expect.arrayContaining(['Client', 'AAD', 'ARM', 'RP', 'KeyVault', 'Storage', 'Registry', 'Compute', 'CosmosDB', 'AppInsights', 'Webservice']));
    await page.screenshot({ path: join(ARTIFACTS, 'sequence.png') });
    expect((page as Page & { problems?: string[] }).problems).toEqual([]);
    await page.close();
  });

  it('a refused call is drawn refused, and clicking it explains the RBAC evaluation: principal, action, and the NotAction that decided', async () => {
    const page = await openPage();
    const session = (await page.getAttribute('.app', 'data-session'))!;
    const refusal = sessionEvents(session).find((e) => e.type === 'CommandRejected' && e.data.code === 'AuthorizationFailed' && (e.data.evaluation as { outcome?: string } | undefined)?.outcome === 'excludedByNotAction')!;
    expect(refusal).toBeDefined();
    // Scroll its row into view, then click it.
    await page.evaluate((p) => {
      const el = document.querySelector('[data-testid=sequence]')!;
      const row = el.scrollHeight / Number(document.querySelector('.app')!.getAttribute('data-count'));
      el.scrollTop = Math.max(0, p * row - el.clientHeight / 2);
    }, refusal.position - sessionEvents(session)[0]!.position);
    const arrow = page.locator(`g.arrow[data-position="${refusal.position}"]`);
    await arrow.waitFor();
    expect(await arrow.getAttribute('data-kind')).toBe('refused');
    await arrow.locator('rect.hit').click();
    await page.waitForSelector('[data-testid=refusal]');
    expect(await page.textContent('[data-testid=rbac-action]')).toBe(String(refusal.data.action));
    expect(await page.textContent('[data-testid=rbac-principal]')).toBe(String(refusal.data.principal));
    const decided = (await page.textContent('[data-testid=rbac-decided]'))!;
    expect(decided).toContain('Contributor');
    expect(decided).toContain('Microsoft.Authorization/*/Write');
    await page.screenshot({ path: join(ARTIFACTS, 'refusal.png') });
    await page.close();
  });

  it('the slider rebuilds an earlier point from the events alone: fewer arrows, the log position of that point; Live shows everything again', async () => {
    const page = await openPage();
    const total = Number(await page.getAttribute('.app', 'data-count'));
    const session = (await page.getAttribute('.app', 'data-session'))!;
    const events = sessionEvents(session);
    const back = Math.floor(total / 3);
    await page.evaluate((n) => {
      const input = document.querySelector<HTMLInputElement>('[data-testid=time-slider]')!;
      input.value = String(n);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }, back);
    await page.waitForFunction((n) => document.querySelector('.app')?.getAttribute('data-count') === String(n), back);
    expect(Number(await page.getAttribute('.app', 'data-position'))).toBe(events[back - 1]!.position);
    // No arrow after that point is drawn.
    const positions = await page.$$eval('g.arrow', (gs) => gs.map((g) => Number(g.getAttribute('data-position'))));
    expect(Math.max(...positions)).toBeLessThanOrEqual(events[back - 1]!.position);
    await page.screenshot({ path: join(ARTIFACTS, 'slider.png') });
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.waitForFunction((n) => document.querySelector('.app')?.getAttribute('data-count') === String(n), total);
    await page.close();
  });
});
