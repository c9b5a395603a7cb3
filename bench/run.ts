/** `pnpm bench`: event store throughput against raw better-sqlite3 (see store-bench.ts). */
import type { StoredEvent } from '../packages/core/src/index';
import { benchAppend, benchReplay, fmt, type BenchResult } from './store-bench';

// A trivial fold until the real projections are plugged in here.
const countsByType = new Map<string, number>();
const fold = (event: StoredEvent): void => {
  countsByType.set(event.type, (countsByType.get(event.type) ?? 0) + 1);
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
results.push(await benchReplay(fold));
console.log();
printTable(results);
