import type { SimClock } from './clock';

type Timer = { id: number; dueAt: number; fire: () => void | Promise<void> };

/**
 * Timers on the platform clock (ARCHITECTURE.md: no XState `after` delays, they are lost when a
 * snapshot is restored). On a real clock a timer is a setTimeout; on a virtual clock due timers
 * fire, in due order, when the clock is advanced past them.
 */
export class Scheduler {
  private readonly timers = new Map<number, Timer>();
  private readonly handles = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  constructor(private readonly clock: SimClock) {}

  /** Run `fire` at `dueAt` (ms since the epoch on the platform clock). Returns a cancel function. */
  at(dueAt: number, fire: () => void | Promise<void>): () => void {
    const timer: Timer = { id: this.nextId++, dueAt, fire };
    this.timers.set(timer.id, timer);
    if (this.clock.kind === 'real') {
      const handle = setTimeout(() => void this.fire(timer), Math.max(0, dueAt - this.clock.now()));
      handle.unref();
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
    for (const h of this.handles.values()) clearTimeout(h);
    this.handles.clear();
    this.timers.clear();
  }

  private cancel(id: number): void {
    const h = this.handles.get(id);
    if (h) clearTimeout(h);
    this.handles.delete(id);
    this.timers.delete(id);
  }

  private async fire(t: Timer): Promise<void> {
    if (!this.timers.has(t.id)) return;
    this.cancel(t.id);
    await t.fire();
  }
}
