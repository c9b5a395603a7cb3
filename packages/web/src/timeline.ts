import { applyToWorld, emptyWorld, type StoredEvent, type WorldState } from '@amlsim/core';

/**
 * Time travel (docs/server.md "The dashboard"): every view is rebuilt from the events alone, at
 * any point of a session, by the same pure projections the simulator folds (@amlsim/core). The
 * log is the truth; the page keeps no state of its own about the platform.
 *
 * A session's events are kept in log order as they arrive. The world at "the first n events" is
 * folded forward from the last one asked for when n grows (following a live session costs one
 * fold per new event), and from the nearest checkpoint when the slider goes back (or jumps far
 * ahead). Checkpoints are copies of the world every CHECKPOINT_EVERY events, so a scrub folds at
 * most that many events after copying one.
 *
 * Copying the world costs as much as folding thousands of events, and more the longer the
 * session (~30 ms at 100,000 events): taken on the fold the first render waits for, the copies
 * were 90% of it. So they are taken by a second fold from the start that runs in slices while
 * the page is idle, after the views are drawn; until it has reached a point, a scrub there folds
 * from the nearest checkpoint it has taken (or from the start).
 */
const CHECKPOINT_EVERY = 2_000;

export class SessionEvents {
  readonly bySession = new Map<string, StoredEvent[]>();
  /** Sessions in the order they began. */
  readonly order: string[] = [];
  private seen = 0;

  /** Takes in the events of `all` not seen yet (the log only grows). */
  update(all: readonly StoredEvent[]): void {
    for (; this.seen < all.length; this.seen++) {
      const e = all[this.seen]!;
      let list = this.bySession.get(e.meta.session);
      if (!list) {
        list = [];
        this.bySession.set(e.meta.session, list);
        this.order.push(e.meta.session);
      }
      list.push(e);
    }
  }
}

/** Milliseconds of checkpoint folding a slice does before it gives the page back. */
const SLICE_MS = 8;

/** Runs `work` when the page is idle (or soon, where there is no requestIdleCallback). */
const whenIdle = (work: () => void): void => {
  if (typeof requestIdleCallback === 'function') requestIdleCallback(work, { timeout: 200 });
  else setTimeout(work, 0);
};

export class WorldFolder {
  private world: WorldState = emptyWorld();
  private count = 0;
  private readonly checkpoints = new Map<number, WorldState>();
  /** The checkpoints' own fold, ahead of which no checkpoint exists yet. */
  private indexWorld: WorldState = emptyWorld();
  private indexed = 0;
  private indexing = false;

  constructor(private readonly events: readonly StoredEvent[]) {}

  /** The world after the first `n` events of the session (0 to all of them). */
  at(n: number): WorldState {
    const target = Math.max(0, Math.min(n, this.events.length));
    const from = this.checkpointAtOrBefore(target);
    // Back in time: start over from a copy. Far ahead: a copy and at most CHECKPOINT_EVERY
    // events cost less than folding all the way there.
    if (target < this.count || (from > this.count && target - this.count > CHECKPOINT_EVERY)) {
      const checkpoint = from > 0 ? this.checkpoints.get(from) : undefined;
      this.world = checkpoint ? structuredClone(checkpoint) : emptyWorld();
      this.count = checkpoint ? from : 0;
    }
    for (; this.count < target; this.count++) applyToWorld(this.world, this.events[this.count]!);
    this.index();
    return this.world;
  }

  /** The nearest checkpoint at or before `n` taken so far (0: the start). */
  private checkpointAtOrBefore(n: number): number {
    for (let c = Math.floor(n / CHECKPOINT_EVERY) * CHECKPOINT_EVERY; c > 0; c -= CHECKPOINT_EVERY) if (this.checkpoints.has(c)) return c;
    return 0;
  }

  /** Folds on towards the newest checkpoint due, a slice at a time while the page is idle. */
  private index(): void {
    if (this.indexing || this.indexed + CHECKPOINT_EVERY > this.events.length) return;
    this.indexing = true;
    whenIdle(() => {
      this.indexing = false;
      const until = performance.now() + SLICE_MS;
      do {
        const next = this.indexed + CHECKPOINT_EVERY;
        if (next > this.events.length) break;
        for (; this.indexed < next; this.indexed++) applyToWorld(this.indexWorld, this.events[this.indexed]!);
        this.checkpoints.set(next, structuredClone(this.indexWorld));
      } while (performance.now() < until);
      this.index();
    });
  }
}

/** What every view is given: one session, seen up to a point of its history. */
export type Moment = {
  session: string;
  /** The session's events in log order, all of them (views read the first `count`). */
  events: readonly StoredEvent[];
  /** How many of them are shown: all of them when following the live log. */
  count: number;
  /** The log position of the last event shown (0 before the first). */
  position: number;
  /** Every read model folded from the first `count` events (folded when first read). */
  readonly world: WorldState;
  live: boolean;
};

/** How many of `items` (in log order) are at or before `position`: a binary search. */
export const countUpTo = (items: readonly { position: number }[], position: number): number => {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid]!.position <= position) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
