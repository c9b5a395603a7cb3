import { afterEach, describe, expect, it, vi } from 'vitest';
import { realClock } from './clock';
import { MAX_TIMER_DELAY_MS, setLongTimeout, type TimerHost } from './long-timeout';
import { Scheduler } from './scheduler';

const HOUR = 3_600_000;

/**
 * A fake timer host that behaves as Node does: a delay above 2^31-1 ms fires after 1 ms. A
 * plain setTimeout on it shows the bug; everything built on setLongTimeout must not.
 */
const fakeHost = (start = 1_000_000) => {
  let now = start;
  let next = 1;
  const pending = new Map<number, { at: number; fire: () => void }>();
  const delays: number[] = [];
  const host: TimerHost = {
    setTimeout: (fire, ms) => {
      delays.push(ms);
      const id = next++;
      pending.set(id, { at: now + (ms > MAX_TIMER_DELAY_MS ? 1 : Math.max(0, ms)), fire });
      return id;
    },
    clearTimeout: (id) => void pending.delete(id as number),
    now: () => now,
  };
  /** Move time forward to `to`, firing every timer due on the way, in order. */
  const advanceTo = async (to: number) => {
    for (;;) {
      const due = [...pending.entries()].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      pending.delete(due[0]);
      now = Math.max(now, due[1].at);
      due[1].fire();
      await Promise.resolve();
    }
    now = to;
  };
  return { host, delays, pending, advanceTo, now: () => now };
};

describe('setLongTimeout', () => {
  it('the fake host fires a plain timer past 2^31-1 ms at once, as Node does (the bug it guards against)', async () => {
    const t = fakeHost();
    const fire = vi.fn();
    t.host.setTimeout(fire, 600 * HOUR);
    await t.advanceTo(t.now() + 10);
    expect(fire).toHaveBeenCalledOnce();
  });

  it('fires a 600 h timer after 600 h, not before, with no link longer than a timer holds', async () => {
    const t = fakeHost();
    const start = t.now();
    const fire = vi.fn();
    setLongTimeout(fire, 600 * HOUR, { host: t.host });
    await t.advanceTo(start + 1);
    expect(fire).not.toHaveBeenCalled();
    await t.advanceTo(start + 600 * HOUR - 1);
    expect(fire).not.toHaveBeenCalled();
    await t.advanceTo(start + 600 * HOUR);
    expect(fire).toHaveBeenCalledOnce();
    expect(Math.max(...t.delays)).toBeLessThanOrEqual(MAX_TIMER_DELAY_MS);
    expect(t.delays.length).toBeGreaterThan(1);
  });

  it('measures the deadline on the clock: a link that fires late does not push the end back', async () => {
    const t = fakeHost();
    const start = t.now();
    const fire = vi.fn();
    setLongTimeout(fire, 100, { host: t.host, maxChunkMs: 40 });
    // The first link (due at +40) runs only at +70, as on a busy event loop.
    await t.advanceTo(start + 70);
    expect(fire).not.toHaveBeenCalled();
    await t.advanceTo(start + 100);
    expect(fire).toHaveBeenCalledOnce();
  });

  it('a short delay is one ordinary timer', async () => {
    const t = fakeHost();
    const fire = vi.fn();
    setLongTimeout(fire, 250, { host: t.host });
    expect(t.delays).toEqual([250]);
    await t.advanceTo(t.now() + 250);
    expect(fire).toHaveBeenCalledOnce();
  });

  it('never fires synchronously, even for 0 or a past deadline', () => {
    const t = fakeHost();
    const fire = vi.fn();
    setLongTimeout(fire, -5, { host: t.host });
    setLongTimeout(fire, 0, { host: t.host });
    expect(fire).not.toHaveBeenCalled();
    expect(t.delays).toEqual([0, 0]);
  });

  it('cancel stops it at any link of the chain', async () => {
    const t = fakeHost();
    const start = t.now();
    const fire = vi.fn();
    const timer = setLongTimeout(fire, 600 * HOUR, { host: t.host });
    await t.advanceTo(start + 300 * HOUR);
    timer.cancel();
    timer.cancel();
    await t.advanceTo(start + 700 * HOUR);
    expect(fire).not.toHaveBeenCalled();
    expect(t.pending.size).toBe(0);
  });

  it('refuses a delay that is not a number of ms', () => {
    expect(() => setLongTimeout(() => {}, Number.NaN)).toThrow(/finite delay/);
    expect(() => setLongTimeout(() => {}, Infinity)).toThrow(/finite delay/);
  });
});

describe('Scheduler on a real clock', () => {
  // vitest's fake timers behave as Node does past 2^31-1 ms (they fire at once).
  afterEach(() => vi.useRealTimers());

  it('fires a timer due in 600 h (a long run token TTL) then, not at once', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scheduler = new Scheduler(realClock());
    const fire = vi.fn();
    scheduler.at(Date.now() + 600 * HOUR, fire);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fire).not.toHaveBeenCalled();
    expect(scheduler.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(600 * HOUR - 1_001);
    expect(fire).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(fire).toHaveBeenCalledOnce();
    expect(scheduler.pending).toBe(0);
  });

  it('an idle timeout of 3,000,000 s is not cut short, and cancelling it stops the chain', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scheduler = new Scheduler(realClock());
    const fire = vi.fn();
    const cancel = scheduler.at(Date.now() + 3_000_000_000, fire);
    await vi.advanceTimersByTimeAsync(2_999_999_999);
    expect(fire).not.toHaveBeenCalled();
    cancel();
    await vi.advanceTimersByTimeAsync(10 * HOUR);
    expect(fire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('dispose cancels long timers too', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scheduler = new Scheduler(realClock());
    const fire = vi.fn();
    scheduler.at(Date.now() + 600 * HOUR, fire);
    await vi.advanceTimersByTimeAsync(HOUR);
    scheduler.dispose();
    await vi.advanceTimersByTimeAsync(700 * HOUR);
    expect(fire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never fires a timer due at Infinity, and refuses a due time that is not a number', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scheduler = new Scheduler(realClock());
    const fire = vi.fn();
    scheduler.at(Infinity, fire);
    await vi.advanceTimersByTimeAsync(10_000 * HOUR);
    expect(fire).not.toHaveBeenCalled();
    expect(scheduler.pending).toBe(1);
    expect(() => scheduler.at(Number.NaN, fire)).toThrow(/finite delay/);
    expect(scheduler.pending).toBe(1);
  });

  it('takes an injected timer host', async () => {
    const t = fakeHost();
    const scheduler = new Scheduler(realClock(t.host), t.host);
    const fire = vi.fn();
    scheduler.at(t.now() + 600 * HOUR, fire);
    await t.advanceTo(t.now() + 599 * HOUR);
    expect(fire).not.toHaveBeenCalled();
    await t.advanceTo(t.now() + HOUR);
    expect(fire).toHaveBeenCalledOnce();
  });
});

describe('realClock.sleep', () => {
  afterEach(() => vi.useRealTimers());

  it('sleep(600 h) waits 600 h, on fake timers that behave as Node does', async () => {
    vi.useFakeTimers({ now: 0 });
    const done = vi.fn();
    void realClock().sleep(600 * HOUR).then(done);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(done).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(598 * HOUR);
    expect(done).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(done).toHaveBeenCalledOnce();
  });

  it('on a fake host, a 600 h sleep is not over after a second', async () => {
    const t = fakeHost();
    const done = vi.fn();
    void realClock(t.host).sleep(600 * HOUR).then(done);
    await t.advanceTo(t.now() + 1_000);
    await Promise.resolve();
    expect(done).not.toHaveBeenCalled();
    await t.advanceTo(t.now() + 600 * HOUR);
    await Promise.resolve();
    expect(done).toHaveBeenCalledOnce();
  });
});
