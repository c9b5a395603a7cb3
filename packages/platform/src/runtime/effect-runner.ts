import { asMachineEvent, errors, type Aggregate, type EffectHandlers, type EventStore, type ExpectedVersion, type StoredEvent } from '@amlsim/core';
import type { CommandContext, EventToAppend } from './command-bus';

type NamedEffect = { type: string; params?: unknown; id?: string };
/** What the runner uses of an aggregate made by `defineAggregate` (packages/core/src/aggregate/define-aggregate.ts). */
export type AnyAggregate = Pick<Aggregate<any, string>, 'startsWith'> & {
  start(input: any, position?: number): [unknown, NamedEffect[]];
  advance(snapshot: any, event: any, position?: number): [unknown, NamedEffect[]];
};

export type SnapshotOf<A extends AnyAggregate> = ReturnType<A['start']>[0];
/** An effect the aggregate's machine names, typed by its declaration and stamped with its id. */
export type EffectOfAggregate<A extends AnyAggregate> = ReturnType<A['start']>[1][number];
/** A fact of the aggregate's machine, as it is appended (`{ type, data }`). */
export type FactOf<A extends AnyAggregate> = Extract<EventToAppend, { type: Parameters<A['advance']>[1]['type'] }>;

/**
 * A stream as the runner holds it: its state, the version that state is at, the effect ids whose
 * start it records, and what `derive` makes of its facts (undefined without it).
 */
export type Held<A extends AnyAggregate, D = undefined> = { snapshot: SnapshotOf<A>; version: number; started: ReadonlySet<string>; derived: D };

/** What a handler is given besides its effect: the command, the stream, the state that named the effect, its id, and the caller's `extra`. */
export type HandlerContext<A extends AnyAggregate, C> = {
  readonly ctx: CommandContext;
  readonly stream: string;
  readonly snapshot: SnapshotOf<A>;
  /** `<position>:<index>` of the effect (define-aggregate.ts): what a handler keys what it makes by. */
  readonly effectId: string;
} & C;

/** One handler per effect of the aggregate, each returning the outcome facts to append (the compiler checks none is missing). */
export type OutcomeHandlers<A extends AnyAggregate, C = object, F extends EventToAppend = FactOf<A>> = EffectHandlers<EffectOfAggregate<A>, HandlerContext<A, C>, F[]>;

export type EffectRunnerOptions<A extends AnyAggregate, C, F extends EventToAppend, D = undefined> = {
  readonly store: EventStore;
  readonly aggregate: A;
  readonly handlers: OutcomeHandlers<A, C, F>;
  /** The outcome of an effect whose handler threw; without it, the error ends the command (and the stream stays where it is). */
  readonly failed?: (effect: EffectOfAggregate<A>, error: unknown, snapshot: SnapshotOf<A>) => F[];
  /**
   * Effects whose handler acts outside the log, where a crash could leave its work half-done:
   * an `EffectStarted` is appended before the handler acts, and an effect whose start the
   * stream records is not carried out again (its id is reported as skipped).
   */
  readonly recordsStart?: ReadonlyArray<EffectOfAggregate<A>['type']>;
  /** A handler that takes longer than `ms()` ends with `outcome` instead (its work is not waited for). */
  readonly timeout?: { readonly ms: () => number; readonly outcome: (effect: EffectOfAggregate<A>, snapshot: SnapshotOf<A>, ms: number) => F[] };
  /**
   * Would the machine take this fact now? Checked one by one, each against the state the facts
   * before it lead to: a fact it says no to (a late report after the run ended) is dropped, not
   * appended — from a command's facts and from an effect's outcome alike. Without it, all are appended.
   */
  readonly takes?: (snapshot: SnapshotOf<A>, fact: EventToAppend) => boolean;
  /**
   * A value kept per stream alongside its state (a run's status history): made from each stored
   * fact and the state after it, `previous` undefined for the first; held as `derived`.
   */
  readonly derive?: (previous: D | undefined, snapshot: SnapshotOf<A>, fact: StoredEvent) => D;
};

/**
 * The one effect runner of the platform (docs/architecture.md "Aggregates"), for one aggregate:
 * every command on a stream goes through one serial chain per stream, so two never interleave;
 * the stream's state is held and advanced by what is appended (the tail others appended is read
 * and folded in, never the whole stream again); facts are appended with the version the state
 * is at (a conflict is the store's `WrongExpectedVersion`, and nothing of the append is written);
 * each stored fact advances the machine with its position, so each effect it names has its id
 * `<position>:<index>`; each effect goes to its handler, whose outcome facts are appended and fed
 * back, until the machine names no more effects.
 */
export class EffectRunner<A extends AnyAggregate, C = object, F extends EventToAppend = FactOf<A>, D = undefined> {
  private readonly held = new Map<string, Held<A, D>>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly recordsStart: ReadonlySet<string>;

  constructor(private readonly options: EffectRunnerOptions<A, C, F, D>) {
    this.recordsStart = new Set(options.recordsStart ?? []);
  }

  /**
   * The stream's state and version, or undefined for a stream that does not start with the
   * aggregate's first fact. Facts appended since it was last held are folded in (their effects
   * are not carried out: whoever appended them outside the runner did not ask for that).
   */
  load(stream: string): Held<A, D> | undefined {
    const cached = this.held.get(stream);
    const newer = this.options.store.readStream(stream, cached?.version ?? 0);
    if (newer.length === 0) return cached;
    let held = cached;
    for (const e of newer) {
      const next = this.step(held, e);
      if (!next) return undefined;
      held = next[0];
    }
    this.held.set(stream, held!);
    return held;
  }

  /**
   * One command on a stream, on its chain: `decide` sees the state (undefined before the first
   * fact) and returns the facts to append; they are appended with the state's version and
   * their effects carried out to the end. `append` replaces the plain append (facts of other
   * streams in the same transaction); it returns the stored facts of this stream.
   */
  execute(
    ctx: CommandContext,
    stream: string,
    decide: (current: Held<A, D> | undefined) => EventToAppend[],
    extra: C,
    options?: { append?: (facts: EventToAppend[], expectedVersion: ExpectedVersion) => StoredEvent[] },
  ): Promise<SnapshotOf<A>> {
    return this.serially(stream, async () => {
      const current = this.load(stream);
      const decided = decide(current);
      const facts = current ? this.taken(current.snapshot, decided) : decided;
      if (facts.length === 0) {
        if (!current) throw errors.notFound('stream', stream);
        return current.snapshot;
      }
      const expected: ExpectedVersion = current ? current.version : 'no-stream';
      const stored = options?.append ? options.append(facts, expected) : ctx.emit(stream, expected, facts);
      const [held, effects] = this.record(stream, current, stored);
      return (await this.drain(ctx, stream, held, effects, extra)).held.snapshot;
    });
  }

  /**
   * Carry out effects the stream's facts named (as `aggregate.history` gives them, with their
   * ids), on the stream's chain, and what their outcomes name in turn. `skipped`: the ids of
   * those whose start the stream already records, which are not carried out again.
   */
  async carryOut(ctx: CommandContext, stream: string, effects: Array<EffectOfAggregate<A>>, extra: C): Promise<{ snapshot: SnapshotOf<A>; skipped: string[] }> {
    return this.serially(stream, async () => {
      const current = this.load(stream);
      if (!current) throw errors.notFound('stream', stream);
      const { held, skipped } = await this.drain(ctx, stream, current, effects, extra);
      return { snapshot: held.snapshot, skipped };
    });
  }

  /** Run `work` after everything queued on the stream; a failure of one command does not stop the next. */
  private serially<T>(stream: string, work: () => Promise<T>): Promise<T> {
    const next = (this.chains.get(stream) ?? Promise.resolve()).then(work);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.chains.set(stream, settled);
    // An idle stream keeps no chain.
    void settled.then(() => {
      if (this.chains.get(stream) === settled) this.chains.delete(stream);
    });
    return next;
  }

  /** The facts `takes` lets through, each checked against the state those before it lead to (all of them without it). */
  private taken<T extends EventToAppend>(from: SnapshotOf<A>, facts: T[]): T[] {
    const { takes, aggregate } = this.options;
    if (!takes) return facts;
    let snapshot = from;
    const kept: T[] = [];
    for (const fact of facts) {
      if (!takes(snapshot, fact)) continue;
      [snapshot] = aggregate.advance(snapshot, { type: fact.type, ...fact.data });
      kept.push(fact);
    }
    return kept;
  }

  /** The state after one stored fact and the effects it names (ids from its position); undefined for a stream that does not start right. */
  private step(held: Held<A, D> | undefined, e: StoredEvent): [Held<A, D>, Array<EffectOfAggregate<A>>] | undefined {
    const { aggregate, derive } = this.options;
    if (!held) {
      if (e.type !== aggregate.startsWith) return undefined;
      const [snapshot, effects] = aggregate.start(e.data, e.position);
      return [{ snapshot, version: e.version, started: new Set(), derived: derive?.(undefined, snapshot, e) as D }, effects];
    }
    // The runner's own note: no machine takes it, the runner keeps its id.
    if (e.type === 'EffectStarted') return [{ ...held, version: e.version, started: new Set([...held.started, (e.data as { effectId: string }).effectId]) }, []];
    const [snapshot, effects] = aggregate.advance(held.snapshot, asMachineEvent(e), e.position);
    return [{ snapshot, version: e.version, started: held.started, derived: derive ? derive(held.derived, snapshot, e) : held.derived }, effects];
  }

  /** Advance the held state by facts just appended; the effects they name, in order. */
  private record(stream: string, from: Held<A, D> | undefined, stored: readonly StoredEvent[]): [Held<A, D>, Array<EffectOfAggregate<A>>] {
    let held = from;
    const named: Array<EffectOfAggregate<A>> = [];
    for (const e of stored) {
      const next = this.step(held, e);
      if (!next) throw new Error(`stream ${stream} does not start with ${this.options.aggregate.startsWith} (it starts with ${e.type})`);
      held = next[0];
      named.push(...next[1]);
    }
    this.held.set(stream, held!);
    return [held!, named];
  }

  private async drain(ctx: CommandContext, stream: string, from: Held<A, D>, effects: Array<EffectOfAggregate<A>>, extra: C): Promise<{ held: Held<A, D>; skipped: string[] }> {
    let held = from;
    const skipped: string[] = [];
    const queue = [...effects];
    while (queue.length > 0) {
      const effect = queue.shift()!;
      const effectId = effect.id;
      if (!effectId) throw new Error(`effect ${effect.type} of ${stream} has no id: the fact that named it was not stored`);
      if (this.recordsStart.has(effect.type)) {
        // Recorded before it acts: a crash in between leaves a start with no outcome, never an act with no record.
        if (held.started.has(effectId)) {
          skipped.push(effectId);
          continue;
        }
        const params = typeof effect.params === 'object' && effect.params !== null ? { params: { ...effect.params } } : {};
        [held] = this.record(stream, held, ctx.emit(stream, held.version, [{ type: 'EffectStarted', data: { effect: effect.type, effectId, ...params } }]));
      }
      const outcomes = this.taken(held.snapshot, await this.dispatch(ctx, stream, held, effect, effectId, extra));
      if (outcomes.length === 0) continue;
      const stored = ctx.emit(stream, held.version, outcomes);
      const [next, named] = this.record(stream, held, stored);
      held = next;
      queue.push(...named);
    }
    return { held, skipped };
  }

  private async dispatch(ctx: CommandContext, stream: string, held: Held<A, D>, effect: EffectOfAggregate<A>, effectId: string, extra: C): Promise<F[]> {
    const { handlers, failed, timeout } = this.options;
    // The map is checked per effect type by the compiler (OutcomeHandlers); here one effect meets its own handler.
    const handler = (handlers as unknown as Record<string, (e: EffectOfAggregate<A>, c: HandlerContext<A, C>) => Promise<F[]> | F[]>)[effect.type]!;
    const context = { ...extra, ctx, stream, snapshot: held.snapshot, effectId } as HandlerContext<A, C>;
    try {
      const work = Promise.resolve().then(() => handler(effect, context));
      if (!timeout) return await work;
      const ms = timeout.ms();
      return await withTimeout(work, ms, () => timeout.outcome(effect, held.snapshot, ms));
    } catch (error) {
      if (failed) return failed(effect, error, held.snapshot);
      throw error;
    }
  }
}

/** The work's result, or the timeout's when the work takes longer than `ms`. */
const withTimeout = async <T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(onTimeout()), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
};
