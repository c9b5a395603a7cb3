import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { createSubscribers } from './subscribers';

const event = (position: number): StoredEvent => ({
  position,
  stream: 'run-1',
  version: position,
  type: 'Step',
  data: {},
  meta: { at: '2024-05-01T12:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's' },
});

describe('subscribers', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a throwing listener neither fails the publish nor starves the others; its error surfaces on a microtask', () => {
    const deferred: Array<() => void> = [];
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((callback) => void deferred.push(callback));
    const subscribers = createSubscribers();
    const boom = new Error('projection bug');
    const seen: number[] = [];
    subscribers.subscribe(() => {
      throw boom;
    });
    subscribers.subscribe((events) => seen.push(...events.map((e) => e.position)));

    expect(() => subscribers.publish([event(1)])).not.toThrow();
    expect(seen).toEqual([1]);
    expect(deferred).toHaveLength(1);
    expect(() => deferred[0]!()).toThrow(boom);
  });

  it('clear drops every listener', () => {
    const subscribers = createSubscribers();
    const listener = vi.fn();
    subscribers.subscribe(listener);
    subscribers.clear();
    subscribers.publish([event(1)]);
    expect(listener).not.toHaveBeenCalled();
  });
});
