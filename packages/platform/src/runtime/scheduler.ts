import type { SimClock } from './clock';
import { nodeTimerHost, setLongTimeout, type LongTimeout, type TimerHost } from './long-timeout';

type Timer = { id: number; dueAt: number; fire: () => void | Promise<void> };

/**
 * Timers on the platform clock (docs/architecture.md: no XState `after` delays, they are lost when a
 * snapshot is restored). On a real clock a timer is a (chained) setTimeout, so a due time weeks
 * away — a long token lifetime or idle timeout — fires then, not at once; on a virtual clock due
 * timers fire, in due order, when the clock is advanced past them.
 */
export class Scheduler {
  private readonly timers = new Map<number, Timer>();
  private readonly handles = new Map<number, LongTimeout>();
  private nextId = 1;

  /** @param timers what real-clock timers are built on (tests pass a fake one). */
  constructor(
    private readonly clock: SimClock,
    private readonly host: TimerHost = nodeTimerHost,
  ) {}

  /** Run `fire` at `dueAt` (ms since the epoch on the platform clock). Returns a cancel function. */
  at(dueAt: number, fire: () => void | Promise<void>): () => void {
    if (Number.isNaN(dueAt)) throw new RangeError(`a timer needs a finite delay in ms: its due time is ${dueAt}`);
    const timer: Timer = { id: this.nextId++, dueAt, fire };
    this.timers.set(timer.id, timer);
    // A timer due at Infinity never fires (it stays pending until cancelled or disposed).
    if (this.clock.kind === 'real' && dueAt !== Infinity) {
      // The delay is measured on the platform clock; the chain re-arms on the host's own.
      const handle = setLongTimeout(() => void this.fire(timer), dueAt - this.clock.now(), { unref: true, host: this.host });
      this.handles.set(timer.id, handle);
    }
    return () => this.cancel(timer.id);
  }

  /** Fire every timer due by now (the virtual clock calls this after each advance). */
  async runDue(): Promise<void> {
    const due = [...this.timers.values()].filter((t) => t.dueAt <= this.clock.now()).sort((a, b) => a.dueAt - b.dueAt || a.id - b.id);
    for (const t of due) await this.fire(t);
  }

  get pending(): number {
    return this.timers.size;
  }

  dispose(): void {
    for (const h of this.handles.values()) h.cancel();
    this.handles.clear();
    this.timers.clear();
  }

  private cancel(id: number): void {
    const h = this.handles.get(id);
    h?.cancel();
    this.handles.delete(id);
    this.timers.delete(id);
  }

  private async fire(t: Timer): Promise<void> {
    if (!this.timers.has(t.id)) return;
    this.cancel(t.id);
    await t.fire();
  }
}
