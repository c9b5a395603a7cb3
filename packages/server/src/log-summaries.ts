import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { EVENT_CATALOG, LANES, LANE_TITLES, type EventStore } from '@amlsim/core';

/** One session of the log, as `GET /api/sessions` lists it. */
export type SessionSummary = {
  id: string;
  firstPosition: number;
  lastPosition: number;
  events: number;
  /** From the session's `ScenarioStarted`, when it played a scenario. */
  scenario?: { name: string; file: string };
  /** It ended cleanly: it saved its state (packages/platform/src/checkpoints.ts, `session:<id>`). */
  closed: boolean;
  /** Its simulator stopped and the next one ended its unfinished work (`SessionRecovered`). */
  recovered: boolean;
};

/**
 * The sessions of the log in the order they began, kept up to date as the log grows: each call
 * reads only the events appended since the last one, so `GET /api/sessions` on a log of a
 * million events costs what the new events cost, not a pass over the whole log per request.
 */
export class SessionSummaries {
  private readonly sessions = new Map<string, SessionSummary>();
  private position = 0;

  constructor(private readonly store: EventStore) {}

  list(): SessionSummary[] {
    for (const event of this.store.readAll(this.position)) {
      const id = event.meta.session;
      let s = this.sessions.get(id);
      if (!s) this.sessions.set(id, (s = { id, firstPosition: event.position, lastPosition: event.position, events: 0, closed: false, recovered: false }));
      s.lastPosition = event.position;
      s.events++;
      if (event.type === 'ScenarioStarted' && !s.scenario) s.scenario = { name: String(event.data.scenario), file: String(event.data.file) };
      // Recovery appends under the recovered session's name (packages/platform/src/runtime/recovery.ts).
      if (event.type === 'SessionRecovered') s.recovered = true;
      this.position = event.position;
    }
    // A session's state is saved as it closes, outside the log: asked for each time.
    const saved = new Set(this.store.loadCheckpoints().map((c) => c.name.replace(/^session:/, '')));
    return [...this.sessions.values()].map((s) => ({ ...s, closed: saved.has(s.id) }));
  }
}

/** The event catalog (packages/core/src/events/catalog.ts) as `GET /api/catalog` serves it: enough for a page to draw each event's arrow. */
export function catalogDocument() {
  return {
    lanes: LANES.map((lane) => ({ lane, title: LANE_TITLES[lane] })),
    types: Object.entries(EVENT_CATALOG).map(([type, doc]) => ({ type, lane: doc.lane, from: doc.from, to: doc.to, cites: doc.cites, doc: doc.doc })),
  };
}

/** A scenario file as `GET /api/scenarios` lists it; `error` instead of `name` when its YAML cannot be read. */
export type ScenarioSummary = { file: string; name?: string; cites: string[]; error?: string };

/**
 * The scenario files directly in `dir` (*.yaml, *.yml), sorted by file name. Only their `name`
 * and `cites` are read: checking a scenario is `amlsim run`'s job (packages/scenario), and a
 * file that would not pass is still worth listing.
 */
export function listScenarios(dir: string): ScenarioSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  } catch {
    return [];
  }
  return files.map((file) => {
    try {
      const doc = parse(readFileSync(join(dir, file), 'utf8')) as { name?: unknown; cites?: unknown } | null;
      const cites = Array.isArray(doc?.cites) ? doc.cites.map(String) : [];
      return typeof doc?.name === 'string' ? { file, name: doc.name, cites } : { file, cites, error: 'no name: field' };
    } catch (err) {
      return { file, cites: [], error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
    }
  });
}
