/**
 * Time to resume a data dir as `amlsim resume` does (go on with its resumable sessions, then end
 * what its stopped sessions left unfinished, packages/platform/src/resume.ts and
 * runtime/recovery.ts, on one scan of the log) against replaying the same log into every read
 * model, measured in the same run on copies of the same SQLite file. Target: recovery within
 * 1.2x of a replay — it reads the log once and folds each aggregate once, as a replay does.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyToWorld, emptyWorld, type StoredEvent, type StreamAppend } from '../packages/core/src/index';
import { nanoIds } from '../packages/platform/src/runtime/ids';
import { recoverAbandonedSessions, SessionScan } from '../packages/platform/src/runtime/recovery';
import { resumeAbandonedSessions } from '../packages/platform/src/resume';
import { openSqliteEventStore } from '../packages/store/src/index';
import { tiledWorldEvents } from './world-events';

export type RecoveryBench = { events: number; replayMs: number; recoverMs: number; ratio: number; target: number; recovered: number };

const ROUNDS = 3;

export async function benchRecovery(template: readonly StoredEvent[], count = 100_000): Promise<RecoveryBench> {
  const dir = mkdtempSync(join(tmpdir(), 'amlsim-bench-recovery-'));
  try {
    const source = join(dir, 'source.sqlite');
    const writer = openSqliteEventStore({ file: source });
    const make = tiledWorldEvents(template);
    for (let from = 0; from < count; from += 1000) {
      const appends: StreamAppend[] = [];
      for (let i = from; i < Math.min(count, from + 1000); i++) {
        const { stream, ...event } = make(i);
        appends.push({ stream, expectedVersion: 'any', events: [event] });
      }
      writer.appendMany(appends);
    }
    writer.close();
    const copy = (name: string) => {
      const file = join(dir, `${name}.sqlite`);
      rmSync(file, { force: true });
      copyFileSync(source, file);
      return openSqliteEventStore({ file });
    };
    let replayMs = Infinity;
    let recoverMs = Infinity;
    let recovered = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const a = copy('replay');
      let t = performance.now();
      const world = emptyWorld();
      for (const e of a.readAll()) applyToWorld(world, e);
      replayMs = Math.min(replayMs, performance.now() - t);
      a.close();
      const b = copy('recover');
      t = performance.now();
      // What `amlsim resume` does to the log (packages/cli/src/main.ts): go on with the sessions
      // that can be resumed (none here: their simulators saved nothing to resume them by), then
      // end what the stopped ones left unfinished, on one scan of the log.
      const scan = new SessionScan(b);
      await resumeAbandonedSessions({ store: b, dataDir: dir, scan });
      const result = recoverAbandonedSessions(b, { by: 'bench', ids: nanoIds(), now: Date.now, scan });
      recoverMs = Math.min(recoverMs, performance.now() - t);
      recovered = result.reduce((n, r) => n + r.facts, 0);
      b.close();
      process.stderr.write(`recovery: round ${round} replay ${replayMs.toFixed(0)} ms, recover ${recoverMs.toFixed(0)} ms (${recovered} facts)\n`);
    }
    return { events: count, replayMs, recoverMs, ratio: recoverMs / replayMs, target: 1.2, recovered };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
