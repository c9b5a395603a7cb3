import type { StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import { checkOrder } from './matchers';

const ev = (position: number, type: string, data: Record<string, unknown> = {}): StoredEvent =>
  ({ position, stream: 's', version: position, type, data, meta: { at: '2026-01-01T00:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's' } }) as unknown as StoredEvent;

describe('checkOrder (expect.order)', () => {
  const events = [ev(1, 'A'), ev(2, 'B', { run: 'r-1' }), ev(3, 'A'), ev(4, 'C'), ev(5, 'B', { run: 'r-2' })];

  it('places each matcher after the previous match, the earliest such event', () => {
    const r = checkOrder([{ type: 'A' }, { type: 'B' }, { type: 'A' }, { type: 'B' }], events, {});
    expect(r.failedAt).toBe(-1);
    expect(r.matched.map((e) => e.position)).toEqual([1, 2, 3, 5]);
  });

  it('an event that occurs only before the one it must follow fails at that matcher, naming what it came after', () => {
    const r = checkOrder([{ type: 'C' }, { type: 'A' }], events, {});
    expect(r.failedAt).toBe(1);
    expect(r.after?.position).toBe(4);
  });

  it('a step id matches what that step made', () => {
    expect(checkOrder([{ type: 'B', run: 'second' }, { type: 'A' }], events, { second: 'r-2' }).failedAt).toBe(1);
    expect(checkOrder([{ type: 'A' }, { type: 'B', run: 'second' }], events, { second: 'r-2' }).matched.map((e) => e.position)).toEqual([1, 5]);
  });
});
