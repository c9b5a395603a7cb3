/**
 * Runs only the dashboard rows of `pnpm bench` (bench/dashboard-bench.ts), for iterating on the
 * page. `--events N --scrubs N --live-seconds N` shrink the run (the targets are for the defaults).
 */
import { benchDashboard, dashboardTable } from './dashboard-bench';
import { scenarioEventTemplate } from './world-events';

const arg = (name: string): number | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : Number(process.argv[i + 1]);
};
const options = { count: arg('--events'), scrubs: arg('--scrubs'), liveSeconds: arg('--live-seconds') };
const r = await benchDashboard(await scenarioEventTemplate(), Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)));
for (const line of dashboardTable(r)) console.log(line);
