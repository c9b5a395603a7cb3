import { afterEach, describe, expect, it } from 'vitest';
import { SimError, type EventStore, type NewEvent, type StoredEvent } from '@amlsim/core';

const meta = { at: '2024-05-01T12:00:00.000Z', principal: 'alice', correlationId: 'corr-1', causationId: 'cmd-1', session: 'session-1' };
const ev = (type: string, data: Record<string, unknown> = {}): NewEvent => ({ type, data, meta });

/** Runs `fn`, expects a SimError with `code`, and returns it for further checks. */
function thrown(code: string, fn: () => unknown): SimError {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(SimError);
  expect((error as SimError).code).toBe(code);
  return error as SimError;
}

export type EventStoreContractOptions = {
  /**
   * For a store that more than one handle (or process) can open: a second, independent handle
   * on the very log `store` writes to. The suite then checks that a handle whose view is stale
   * still gets the typed WrongExpectedVersion, never a raw database error.
   */
  openSecondHandle?: (store: EventStore) => EventStore;
};

/**
 * The EventStore contract (Emmett-style: one suite, every store). `factory` returns a fresh,
 * empty store on each call; the suite closes what it opened.
 */
export function describeEventStoreContract(name: string, factory: () => EventStore, options: EventStoreContractOptions = {}): void {
  describe(`EventStore contract: ${name}`, () => {
    const opened: EventStore[] = [];
    const open = (): EventStore => {
      const store = factory();
      opened.push(store);
      return store;
    };
    const { openSecondHandle } = options;
    const second = (store: EventStore): EventStore => {
      const other = openSecondHandle!(store);
      opened.push(other);
      return other;
    };

    describe.runIf(openSecondHandle)('two handles on one log', () => {
      it('a stale handle appending at a version it saw gets WrongExpectedVersion (not a raw constraint error) and writes nothing', () => {
        const a = open();
        const b = second(a);
        a.append('run-1', 'no-stream', [ev('RunSubmitted')]);
        b.append('run-1', 1, [ev('RunQueued')]); // b has written version 2 ...
        a.append('run-1', 2, [ev('RunStarted')]); // ... and a moves the stream on behind its back
        const calls: StoredEvent[][] = [];
        b.subscribe((events) => calls.push(events));

        const stale = thrown('WrongExpectedVersion', () => b.append('run-1', 2, [ev('RunCompleted')]));
        expect(stale.details).toEqual({ stream: 'run-1', expected: 2, actual: 3 });
        expect(stale.retryable).toBe(true);
        expect(thrown('WrongExpectedVersion', () => b.append('run-1', 'no-stream', [ev('RunCompleted')])).details).toEqual({
          stream: 'run-1',
          expected: 'no-stream',
          actual: 3,
        });
        // Atomic across streams from the stale handle too.
        thrown('WrongExpectedVersion', () =>
          b.appendMany([
            { stream: 'compute-1', expectedVersion: 'no-stream', events: [ev('ComputeCreated')] },
            { stream: 'run-1', expectedVersion: 2, events: [ev('RunCompleted')] },
          ]),
        );
        expect(calls).toEqual([]);
        expect(a.headPosition()).toBe(3);
        expect(a.streamVersion('compute-1')).toBe(0);
        expect(a.readStream('run-1').map((e) => e.type)).toEqual(['RunSubmitted', 'RunQueued', 'RunStarted']);
        // Retrying at the version the error names succeeds.
        expect(b.append('run-1', 3, [ev('RunCompleted')]).events[0]).toMatchObject({ position: 4, version: 4 });
      });

      it('each handle appends after what the other wrote: positions and versions continue, never collide', () => {
        const a = open();
        const b = second(a);
        a.append('run-1', 'no-stream', [ev('A1')]);
        b.append('run-1', 'any', [ev('B1')]);
        expect(b.append('run-1', 2, [ev('B2')]).events[0]).toMatchObject({ position: 3, version: 3 });
        a.append('run-2', 'no-stream', [ev('A2')]);
        expect(a.append('run-1', 'any', [ev('A3')]).events[0]).toMatchObject({ position: 5, version: 4 });
        expect(b.append('run-2', 1, [ev('B3')]).events[0]).toMatchObject({ position: 6, version: 2 });
        expect([...a.readAll()].map((e) => [e.type, e.position, e.version])).toEqual([...b.readAll()].map((e) => [e.type, e.position, e.version]));
        expect(b.headPosition()).toBe(6);
      });
    });
    afterEach(() => {
      for (const store of opened.splice(0)) store.close();
    });

    it('starts empty', () => {
      const store = open();
      expect(store.headPosition()).toBe(0);
      expect(store.streamVersion('run-1')).toBe(0);
      expect(store.readStream('run-1')).toEqual([]);
      expect([...store.readAll()]).toEqual([]);
      expect(store.loadCheckpoints()).toEqual([]);
    });

    it('assigns gap-free global positions and per-stream versions', () => {
      const store = open();
      const first = store.append('run-1', 'no-stream', [ev('RunSubmitted', { n: 1 }), ev('RunQueued', { n: 2 })]);
      const second = store.append('compute-1', 'no-stream', [ev('ComputeCreated')]);
      const third = store.append('run-1', 2, [ev('RunStarted')]);

      expect(first.events.map((e) => [e.stream, e.position, e.version])).toEqual([
        ['run-1', 1, 1],
        ['run-1', 2, 2],
      ]);
      expect(first.lastPosition).toBe(2);
      expect(second.events.map((e) => [e.stream, e.position, e.version])).toEqual([['compute-1', 3, 1]]);
      expect(third.events.map((e) => [e.stream, e.position, e.version])).toEqual([['run-1', 4, 3]]);
      expect(third.lastPosition).toBe(4);
      expect(store.headPosition()).toBe(4);
      expect(store.streamVersion('run-1')).toBe(3);
      expect(store.streamVersion('compute-1')).toBe(1);
      expect(first.events[0]).toEqual({
        position: 1,
        stream: 'run-1',
        version: 1,
        type: 'RunSubmitted',
        data: { n: 1 },
        meta,
      });
    });

    it('hands back on append exactly what a later read returns (JSON values, no aliasing)', () => {
      const store = open();
      const data = { when: new Date(0), gone: undefined, nested: { list: [1, 2] } };
      const { events } = store.append('run-1', 'any', [ev('RunSubmitted', data)]);
      data.nested.list.push(3); // must not leak into the log

      expect(events[0]!.data).toEqual({ when: '1970-01-01T00:00:00.000Z', nested: { list: [1, 2] } });
      expect('gone' in events[0]!.data).toBe(false);
      expect(store.readStream('run-1')).toEqual(events);
      expect([...store.readAll()]).toEqual(events);

      (store.readStream('run-1')[0]!.data as { nested: { list: number[] } }).nested.list.push(9);
      expect(store.readStream('run-1')[0]!.data).toEqual({ when: '1970-01-01T00:00:00.000Z', nested: { list: [1, 2] } });
    });

    it('rejects a wrong expected version with WrongExpectedVersion and writes nothing', () => {
      const store = open();
      store.append('run-1', 'no-stream', [ev('RunSubmitted')]);
      const calls: StoredEvent[][] = [];
      store.subscribe((events) => calls.push(events));
      const before = store.readStream('run-1');

      const behind = thrown('WrongExpectedVersion', () => store.append('run-1', 0, [ev('RunQueued')]));
      expect(behind.details).toEqual({ stream: 'run-1', expected: 0, actual: 1 });
      expect(behind.retryable).toBe(true);
      expect(behind.message).toContain("'run-1'");
      const ahead = thrown('WrongExpectedVersion', () => store.append('run-1', 5, [ev('RunQueued')]));
      expect(ahead.details).toEqual({ stream: 'run-1', expected: 5, actual: 1 });

      expect(store.headPosition()).toBe(1);
      expect(store.streamVersion('run-1')).toBe(1);
      expect(store.readStream('run-1')).toEqual(before);
      expect([...store.readAll()]).toHaveLength(1);
      expect(calls).toEqual([]);

      // The store is still usable after a conflict, and the next position has no gap.
      expect(store.append('run-1', 1, [ev('RunQueued')]).events[0]).toMatchObject({ position: 2, version: 2 });
    });

    it("'no-stream' requires an empty stream; 'any' appends at any version", () => {
      const store = open();
      store.append('run-1', 'no-stream', [ev('A')]);
      const err = thrown('WrongExpectedVersion', () => store.append('run-1', 'no-stream', [ev('B')]));
      expect(err.details).toEqual({ stream: 'run-1', expected: 'no-stream', actual: 1 });

      expect(store.append('run-1', 'any', [ev('B')]).events[0]).toMatchObject({ version: 2, position: 2 });
      expect(store.append('run-2', 'any', [ev('C')]).events[0]).toMatchObject({ version: 1, position: 3 });
    });

    it('appendMany is atomic across streams: a conflict in the second stream leaves the first unwritten', () => {
      const store = open();
      store.append('run-1', 'no-stream', [ev('RunSubmitted')]);
      const calls: StoredEvent[][] = [];
      store.subscribe((events) => calls.push(events));

      thrown('WrongExpectedVersion', () =>
        store.appendMany([
          { stream: 'compute-1', expectedVersion: 'no-stream', events: [ev('ComputeCreated'), ev('ComputeStarted')] },
          { stream: 'run-1', expectedVersion: 0, events: [ev('RunQueued')] },
        ]),
      );
      expect(store.readStream('compute-1')).toEqual([]);
      expect(store.streamVersion('compute-1')).toBe(0);
      expect(store.headPosition()).toBe(1);
      expect(calls).toEqual([]);

      const result = store.appendMany([
        { stream: 'compute-1', expectedVersion: 'no-stream', events: [ev('ComputeCreated'), ev('ComputeStarted')] },
        { stream: 'run-1', expectedVersion: 1, events: [ev('RunQueued')] },
      ]);
      expect(result.events.map((e) => [e.stream, e.position, e.version])).toEqual([
        ['compute-1', 2, 1],
        ['compute-1', 3, 2],
        ['run-1', 4, 2],
      ]);
      expect(result.lastPosition).toBe(4);
      expect(calls).toEqual([result.events]); // one notification for the whole transaction
    });

    it('an event that cannot be serialized fails the whole append and writes nothing', () => {
      const store = open();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(() =>
        store.appendMany([
          { stream: 'run-1', expectedVersion: 'no-stream', events: [ev('A')] },
          { stream: 'run-2', expectedVersion: 'no-stream', events: [ev('B', cyclic)] },
        ]),
      ).toThrow(TypeError);
      expect(store.headPosition()).toBe(0);
      expect(store.readStream('run-1')).toEqual([]);
    });

    it('appendMany sees its own earlier parts when a stream appears twice', () => {
      const store = open();
      const result = store.appendMany([
        { stream: 'run-1', expectedVersion: 'no-stream', events: [ev('A')] },
        { stream: 'run-1', expectedVersion: 1, events: [ev('B')] },
      ]);
      expect(result.events.map((e) => e.version)).toEqual([1, 2]);
      thrown('WrongExpectedVersion', () =>
        store.appendMany([
          { stream: 'run-1', expectedVersion: 2, events: [ev('C')] },
          { stream: 'run-1', expectedVersion: 2, events: [ev('D')] },
        ]),
      );
      expect(store.streamVersion('run-1')).toBe(2);
    });

    it('an empty append still checks the expected version, writes nothing and notifies no one', () => {
      const store = open();
      store.append('run-1', 'no-stream', [ev('A')]);
      let calls = 0;
      store.subscribe(() => calls++);
      expect(store.append('run-1', 1, [])).toEqual({ events: [], lastPosition: 1 });
      thrown('WrongExpectedVersion', () => store.append('run-1', 0, []));
      expect(calls).toBe(0);
    });

    it('readStream returns the events after a version, in version order', () => {
      const store = open();
      for (let i = 1; i <= 5; i++) {
        store.append('run-1', i - 1, [ev('Step', { i })]);
        store.append('other', 'any', [ev('Noise', { i })]);
      }
      expect(store.readStream('run-1').map((e) => e.data.i)).toEqual([1, 2, 3, 4, 5]);
      expect(store.readStream('run-1', 3).map((e) => [e.version, e.data.i])).toEqual([
        [4, 4],
        [5, 5],
      ]);
      expect(store.readStream('run-1', 5)).toEqual([]);
      expect(store.readStream('run-1').every((e) => e.stream === 'run-1')).toBe(true);
    });

    it('readAll returns every event after a position, in position order, and can be iterated again', () => {
      const store = open();
      for (let i = 1; i <= 6; i++) store.append(`run-${i % 3}`, 'any', [ev('Step', { i })]);
      expect([...store.readAll()].map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6]);
      const tail = store.readAll(4);
      expect([...tail].map((e) => [e.position, e.data.i])).toEqual([
        [5, 5],
        [6, 6],
      ]);
      expect([...tail].map((e) => e.position)).toEqual([5, 6]);
      expect([...store.readAll(6)]).toEqual([]);
    });

    it('readAll yields the log as it was when iteration began, even if the consumer appends', () => {
      const store = open();
      store.append('run-1', 'any', [ev('A'), ev('B')]);
      const seen: number[] = [];
      for (const event of store.readAll()) {
        seen.push(event.position);
        store.append('run-2', 'any', [ev('Reaction')]);
      }
      expect(seen).toEqual([1, 2]);
      expect(store.headPosition()).toBe(4);
    });

    it('notifies subscribers after commit with the committed events, until they unsubscribe', () => {
      const store = open();
      const calls: Array<{ events: StoredEvent[]; head: number; stream: StoredEvent[] }> = [];
      const unsubscribe = store.subscribe((events) =>
        // What the store answers from inside the listener shows the commit already happened.
        calls.push({ events, head: store.headPosition(), stream: store.readStream('run-1') }),
      );
      const result = store.append('run-1', 'no-stream', [ev('A'), ev('B')]);
      expect(calls).toHaveLength(1);
      expect(calls[0]!.events).toEqual(result.events);
      expect(calls[0]!.head).toBe(2);
      expect(calls[0]!.stream).toEqual(result.events);

      unsubscribe();
      store.append('run-1', 2, [ev('C')]);
      expect(calls).toHaveLength(1);
      unsubscribe(); // twice is harmless
    });

    it('delivers to every subscriber in commit order even when a subscriber appends', () => {
      const store = open();
      const first: number[] = [];
      const second: number[] = [];
      store.subscribe((events) => {
        first.push(...events.map((e) => e.position));
        if (events.some((e) => e.type === 'RunSubmitted')) store.append('run-1', 'any', [ev('RunQueued')]);
      });
      store.subscribe((events) => second.push(...events.map((e) => e.position)));

      store.append('run-1', 'no-stream', [ev('RunSubmitted')]);
      expect(first).toEqual([1, 2]);
      expect(second).toEqual([1, 2]);
    });

    it('saves and loads checkpoints; saving again replaces', () => {
      const store = open();
      store.saveCheckpoint('runs', 10, { 'run-1': { status: 'Running' } });
      store.saveCheckpoint('metrics', 3, [1, 2, 3]);
      store.saveCheckpoint('runs', 12, { 'run-1': { status: 'Completed' } });
      expect(store.loadCheckpoints()).toEqual([
        { name: 'metrics', position: 3, state: [1, 2, 3] },
        { name: 'runs', position: 12, state: { 'run-1': { status: 'Completed' } } },
      ]);
    });

    it('close is idempotent', () => {
      const store = open();
      store.close();
      expect(() => store.close()).not.toThrow();
    });
  });
}
