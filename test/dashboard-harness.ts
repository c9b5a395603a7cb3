import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { EventStore } from '@amlsim/core';
import { openSqliteEventStore } from '@amlsim/store';
import { startServer, type RunningServer } from '@amlsim/server';
import { scenarioPlayer } from '@amlsim/cli';
import { REPO, SCENARIO_DIR, tempDir } from './helpers';

/** The built dashboard (packages/web), and where the browser tests keep their screenshots. */
export const WEB_ROOT = join(REPO, 'packages', 'web', 'dist');
export const ARTIFACTS = join(REPO, 'test', 'artifacts', 'dashboard');
/** Debian's Chromium, installed by scripts/setup.sh (and CI). */
export const CHROMIUM = '/usr/bin/chromium';

export type Dashboard = { browser: Browser; server: RunningServer; store: EventStore; /** The temp data dir (removed by close). */ dir: string; close(): Promise<void> };

/**
 * What the dashboard's browser tests run against: the real server on a real SQLite log in a
 * temp data dir, with the CLI's own scenario player, and a headless Chromium. `close` stops a
 * play still going (its platform cancels its runs and removes its containers) and removes it all.
 */
export async function startDashboard(prefix: string): Promise<Dashboard> {
  if (!existsSync(join(WEB_ROOT, 'index.html'))) throw new Error(`the dashboard is not built (${WEB_ROOT}); run pnpm build (bash scripts/setup.sh does)`);
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}; bash scripts/setup.sh installs Debian's chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = tempDir(prefix);
  const store = openSqliteEventStore({ file: join(tmp.dir, 'events.sqlite') });
  const server = await startServer({ store, dataDir: tmp.dir, port: 0, scenariosDir: SCENARIO_DIR, player: scenarioPlayer(store, tmp.dir), webRoot: WEB_ROOT });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    browser,
    server,
    store,
    dir: tmp.dir,
    close: async () => {
      await browser.close();
      await server.close();
      store.close();
      tmp[Symbol.dispose]();
    },
  };
}
