import { decideSessionRecovery, RECOVERED_KINDS, sessionRecoveredFact, STREAMS, streamKindOf, type EventStore, type IdGenerator, type NewEvent, type RecoveryFact, type SessionRecovery, type StoredEvent, type StreamAppend } from '@amlsim/core';

export type RecoveredSession = Omit<SessionRecovery, 'facts'> & { facts: number };

/** Append what recovery decided, in one transaction, under the session's name. */
function appendRecoveryFacts(store: EventStore, facts: readonly RecoveryFact[], session: string, options: { ids: IdGenerator; now: () => number }): void {
  if (facts.length === 0) return;
  const correlationId = options.ids.next('cmd');
  const meta = { at: new Date(options.now()).toISOString(), correlationId, causationId: correlationId, session };
  const byStream = new Map<string, StreamAppend>();
  for (const f of facts) {
    const append = byStream.get(f.stream) ?? { stream: f.stream, expectedVersion: f.expectedVersion, events: [] as NewEvent[] };
    append.events.push({ type: f.type, data: f.data as unknown as Record<string, unknown>, meta });
    byStream.set(f.stream, append);
  }
  store.appendMany([...byStream.values()]);
}

/**
 * Runs of a resumed session that could neither be re-attached (their containers are gone) nor
 * driven on from a step before their container's start (training/run-manager.ts `resume`), ended
 * now as recovery ends them — `RunFailed` `reason`, token revoked, node released, channel
 * closed — before the session goes on (a continued scenario waiting for one sees it ended).
 * Returns those ended.
 */
export function endLostRuns(store: EventStore, session: string, runIds: readonly string[], options: { ids: IdGenerator; now: () => number; reason: string }): string[] {
  const ended: string[] = [];
  for (const runId of runIds) {
    const decided = decideSessionRecovery(store.readStream(STREAMS.run(runId)), session, options.reason);
    if (decided.facts.length === 0) continue;
    appendRecoveryFacts(store, decided.facts, session, options);
    ended.push(runId);
  }
  return ended;
}

/** What recovery and resume read of one session: the facts of the aggregates that can be left unfinished, whether it was recovered, its own stream's version. */
export type SessionSeen = { events: StoredEvent[]; recovered: boolean; sessionVersion: number };

/**
 * One pass over the log, kept up to date: per session only what resuming and recovering it
 * read. `amlsim resume` (and the start of any command that writes) resumes the stopped sessions,
 * sweeps, then ends what is left — and each of those used to read the whole log again. With one
 * scan, the log is read once, and what the resumed sessions appended meanwhile is read after it
 * (`catchUp`), so a resume costs what a replay costs.
 */
export class SessionScan {
  readonly sessions = new Map<string, SessionSeen>();
  private head = 0;
  private readonly wanted = new Map<string, boolean>();

  constructor(private readonly store: EventStore) {
    this.catchUp();
  }

  /** Read what was appended since the last look. */
  catchUp(): this {
    for (const e of this.store.readAll(this.head)) {
      this.head = e.position;
      let seen = this.sessions.get(e.meta.session);
      if (!seen) this.sessions.set(e.meta.session, (seen = { events: [], recovered: false, sessionVersion: 0 }));
      if (e.type === 'SessionRecovered') seen.recovered = true;
      if (e.stream === STREAMS.session(e.meta.session)) seen.sessionVersion = e.version;
      let keep = this.wanted.get(e.stream);
      if (keep === undefined) this.wanted.set(e.stream, (keep = RECOVERED_KINDS.has(streamKindOf(e.stream) ?? '')));
      if (keep) seen.events.push(e);
    }
    return this;
  }
}

/**
 * Ends what sessions of a data dir left unfinished when their simulator stopped (killed, crashed
 * or closed with work in flight): for each such session, the facts
 * `decideSessionRecovery` (packages/core/src/recovery/abandoned.ts) decides, then one
 * `SessionRecovered`, in one transaction per session, under that session's name so its read
 * models and `amlsim replay` see them. What is still running of it in Docker goes by the
 * start-up sweep (leases, packages/docker/src/sweep.ts); this makes the log say so.
 *
 * Call it only while holding the data dir (runtime/data-dir-lock.ts): then no other simulator
 * is writing it, and every session in it but `exclude` has stopped. Idempotent.
 */
export function recoverAbandonedSessions(store: EventStore, options: { by: string; ids: IdGenerator; now: () => number; exclude?: readonly string[]; scan?: SessionScan }): RecoveredSession[] {
  // The log read once (a scan shared with resume is only brought up to date): recovery costs
  // what a replay costs.
  const scan = (options.scan ?? new SessionScan(store)).catchUp();
  const excluded = new Set(options.exclude ?? []);
  // A session that ended cleanly saved its state; one that did not, and was not recovered yet,
  // is recovered even with nothing left unfinished (what replay then knows it by).
  const saved = new Set(store.loadCheckpoints().map((c) => c.name.replace(/^session:/, '')));
  const out: RecoveredSession[] = [];
  for (const [session, seen] of scan.sessions) {
    if (excluded.has(session)) continue;
    const reason = `PlatformRestarted: the simulator of session ${session} stopped before this ended`;
    const decided = decideSessionRecovery(seen.events, session, reason);
    const unsaved = !saved.has(session) && !seen.recovered;
    if (decided.facts.length === 0 && !unsaved) continue;
    const facts = [...decided.facts, sessionRecoveredFact(decided, options.by, reason, seen.sessionVersion)];
    // One transaction a session. `amlsim replay` knows a recovered session by its SessionRecovered.
    appendRecoveryFacts(store, facts, session, options);
    const { facts: _facts, ...what } = decided;
    out.push({ ...what, facts: facts.length });
  }
  return out;
}
