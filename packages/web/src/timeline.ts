import { applyToWorld, emptyWorld, type StoredEvent, type WorldState } from '@amlsim/core';

/**
 * Time travel (docs/server.md "The dashboard"): every view is rebuilt from the events alone, at
 * any point of a session, by the same pure projections the simulator folds (@amlsim/core). The
 * log is the truth; the page keeps no state of its own about the platform.
 *
 * A session's events are kept in log order as they arrive. The world at "the first n events" is
 * folded forward from the last one asked for when n grows (following a live session costs one
 * fold per new event), and from the nearest checkpoint when the slider goes back. Checkpoints are
 * copies of the world taken every CHECKPOINT_EVERY events on a fold from the start, so a second
 * scrub over the same stretch folds at most that many events.
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

export class WorldFolder {
  private world: WorldState = emptyWorld();
  private count = 0;
  private readonly checkpoints = new Map<number, WorldState>();

  constructor(private readonly events: readonly StoredEvent[]) {}

  /** The world after the first `n` events of the session (0 to all of them). */
  at(n: number): WorldState {
    const target = Math.max(0, Math.min(n, this.events.length));
    if (target < this.count) {
      const from = Math.floor(target / CHECKPOINT_EVERY) * CHECKPOINT_EVERY;
      const checkpoint = this.checkpoints.get(from);
      this.world = checkpoint ? structuredClone(checkpoint) : emptyWorld();
      this.count = checkpoint ? from : 0;
    }
    for (; this.count < target; this.count++) {
      if (this.count > 0 && this.count % CHECKPOINT_EVERY === 0 && !this.checkpoints.has(this.count)) {
        this.checkpoints.set(this.count, structuredClone(this.world));
      }
      applyToWorld(this.world, this.events[this.count]!);
    }
    return this.world;
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
  /** Every read model folded from the first `count` events. */
  world: WorldState;
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
