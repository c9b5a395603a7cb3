/** `pnpm bench`: event store throughput against raw better-sqlite3 (see store-bench.ts), recovering a data dir against replaying it (recovery-bench.ts), a scenario's cost a step (steps-bench.ts), the dashboard in a browser (dashboard-bench.ts), training (one run, and 20 runs on a 4-node cluster) and scoring (docker). */
import { applyToWorld, emptyWorld, type StoredEvent } from '../packages/core/src/index';
import { benchAppend, benchReplay, fmt, type BenchResult } from './store-bench';
import { scenarioEventTemplate, tiledWorldEvents } from './world-events';

// Replay folds every event into all read models (directory, access, workspaces, activity log,
// workspace metrics), exactly as `amlsim replay` does.
let world = emptyWorld();
const newFold = () => {
  world = emptyWorld();
  return (event: StoredEvent): void => {
    applyToWorld(world, event);
  };
};

function printTable(results: BenchResult[]): void {
  const header = ['benchmark', 'store ev/s', 'raw ev/s', 'ratio', 'target', ''];
  const rows = results.map((r) => [
    r.name,
    fmt(r.eventsPerSecond),
    fmt(r.baselineEventsPerSecond),
    `${r.ratio.toFixed(2)}x`,
    r.target === undefined ? '' : `>= ${r.target}x`,
    r.target === undefined ? '' : r.ratio >= r.target ? 'ok' : 'MISSED',
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

process.stderr.write('append benchmarks...\n');
const results = await benchAppend();
process.stderr.write('replay benchmark...\n');
const template = await scenarioEventTemplate();
process.stderr.write(`replay workload: the scenarios' ${template.length} events, tiled to 1,000,000\n`);
results.push(await benchReplay(newFold, 1_000_000, tiledWorldEvents(template)));
console.log();
printTable(results);
console.log(`\nreplayed world: ${Object.keys(world.workspaces.byId).length.toLocaleString('en-US')} workspaces, ` +
  `${world.activityLog.entries.length.toLocaleString('en-US')} activity-log entries, ${Object.values(world.access.assignmentsByPrincipal).reduce((n, l) => n + l.length, 0).toLocaleString('en-US')} role assignments`);

{
  const { benchRecovery } = await import('./recovery-bench');
  process.stderr.write('recovery benchmark (100,000 events)...\n');
  const r = await benchRecovery(template);
  console.log(`\nresume a data dir (${fmt(r.events)} events, ${r.recovered} facts appended)   resume ${r.recoverMs.toFixed(0)} ms  replay ${r.replayMs.toFixed(0)} ms  ${r.ratio.toFixed(2)}x  <= ${r.target}x  ${r.ratio <= r.target ? 'ok' : 'MISSED'}`);
}

{
  const { benchSteps } = await import('./steps-bench');
  process.stderr.write('many-steps benchmark (100,000 signIn steps against 1,000)...\n');
  const s = await benchSteps();
  const us = (n: number) => `${n.toFixed(1)} µs`;
  console.log(`\nscenario steps (signIn, process driver)   ${fmt(s.steps).padStart(7)} steps  ${fmt(s.baselineSteps).padStart(5)} steps  ratio   target`);
  console.log(
    `time a step (the ${fmt(s.steps)}-step run: ${s.seconds.toFixed(1)} s)  ${us(s.perStepUs).padStart(13)}  ${us(s.baselinePerStepUs).padStart(11)}  ${s.ratio.toFixed(2)}x  <= ${s.target}x  ${s.ratio <= s.target ? 'ok' : 'MISSED'}`,
  );
}

{
  // Needs no Docker: the dashboard in headless Chromium against the server on a SQLite data dir.
  const { benchDashboard, dashboardTable } = await import('./dashboard-bench');
  process.stderr.write('dashboard benchmark (100,000 events, headless chromium)...\n');
  const d = await benchDashboard(template);
  console.log();
  for (const line of dashboardTable(d)) console.log(line);
}

if (!process.argv.includes('--no-docker')) {
  const { benchTraining, CLUSTER_TARGET, SUBMIT_TARGET, formatCpu } = await import('./training-bench');
  process.stderr.write('training benchmark (docker)...\n');
  const t = await benchTraining();
  const c = t.cluster;
  const verdict = (ratio: number, target: number) => `${ratio.toFixed(2)}x  <= ${target}x  ${ratio <= target ? 'ok' : 'MISSED'}`;
  console.log('\ntraining (docker driver)                           amlsim   raw dockerode  ratio   target');
  console.log(`submit -> Completed, no-op script (median)      ${t.runMs.toFixed(0).padStart(6)} ms  ${t.rawMs.toFixed(0).padStart(10)} ms  ${verdict(t.ratio, SUBMIT_TARGET)}`);
  console.log(`${c.runs} runs on ${c.nodes} nodes vs concurrency ${c.nodes} (median of ${c.rounds})  ${c.seconds.toFixed(2).padStart(7)} s  ${c.rawSeconds.toFixed(2).padStart(11)} s  ${verdict(c.ratio, CLUSTER_TARGET)}`);
  console.log(`CPU a run, in the cluster rounds: ${formatCpu(t.cpu.run)}; a raw container: ${formatCpu(t.cpu.raw)} (the bench's dockerode calls as "simulator")`);
  console.log(`${t.concurrent.runs} concurrent runs on ${t.concurrent.nodes} nodes, scaling up from none: ${t.concurrent.seconds.toFixed(1)} s, ${t.concurrent.runsPerSecond.toFixed(2)} runs/s`);
}

if (!process.argv.includes('--no-docker')) {
  const { benchGateway } = await import('./gateway-bench');
  process.stderr.write('scoring gateway benchmark (docker)...\n');
  const rows = await benchGateway();
  console.log('\nscoring latency (ms), HTTPS gateway vs the replica\'s own socket, one replica with 1 CPU');
  const header = ['workload', 'clients', 'gateway p50', 'p99', 'direct p50', 'p99', 'floor p50', 'p50 ratio', 'target', ''];
  const cells = rows.map((r) => [
    r.workload,
    String(r.concurrency),
    r.gateway.p50.toFixed(2),
    r.gateway.p99.toFixed(2),
    r.direct.p50.toFixed(2),
    r.direct.p99.toFixed(2),
    r.floor.p50.toFixed(2),
    `${r.ratioP50.toFixed(2)}x`,
    r.target === undefined ? '-' : `<= ${r.target}x`,
    r.target === undefined ? `+${(r.gateway.p50 - r.direct.p50).toFixed(2)} ms a call` : r.ratioP50 <= r.target ? 'ok' : 'MISSED',
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c]!.length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 || c === row.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) console.log(line(row));
  for (const w of new Map(rows.map((r) => [r.workload, r.description]))) console.log(`  ${w[0]}: ${w[1]}`);
  console.log('  floor: a bare Node proxy piping to the same replica (plain HTTP, no auth, no record): what any extra hop costs here');
}
