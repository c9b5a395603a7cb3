import { imageAggregate, imageStatusOf, type EventDataMap, type EventStore, type SimError, type StoredEvent } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { describe, expect, it } from 'vitest';
import { virtualClock } from './clock';
import { CommandBus } from './command-bus';
import { EffectRunner, type FactOf, type OutcomeHandlers } from './effect-runner';
import { nanoIds } from './ids';

/** The runner over the image aggregate (packages/core/src/image/image.machine.ts), with handlers that do nothing outside. */
const requested = (imageId: string): EventDataMap['ImageCreationRequested'] => ({
  workspaceId: 'ws_1',
  workspace: 'ws1',
  imageId,
  image: 'img',
  version: 1,
  models: [],
  scoringScript: 'score.js',
  dependencies: [],
});
const ref = (imageId: string) => ({ workspaceId: 'ws_1', workspace: 'ws1', imageId, image: 'img' });

type Deferred = { promise: Promise<void>; resolve: () => void };
const deferred = (): Deferred => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

const setUp = (options: { gate?: (imageId: string) => Promise<void>; store?: EventStore; recordsStart?: Array<'buildImage' | 'pushImage'> } = {}) => {
  const store = options.store ?? createMemoryEventStore();
  const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
  const trace: string[] = [];
  const ids: Array<{ type: string; effectId: string; id: string | undefined }> = [];
  const handlers: OutcomeHandlers<typeof imageAggregate> = {
    buildImage: async (effect, { snapshot, effectId, stream }) => {
      const { imageId } = snapshot.context;
      ids.push({ type: effect.type, effectId, id: effect.id });
      const last = store.readStream(stream).at(-1)!;
      trace.push(`build ${imageId} start${last.type === 'EffectStarted' ? ` (recorded ${String(last.data.effectId)})` : ''}`);
      await options.gate?.(imageId);
      trace.push(`build ${imageId} end`);
      return [{ type: 'ImageBuilt', data: { ...ref(imageId), tag: `t-${imageId}`, reused: false } }];
    },
    checkScoringScript: (effect, { snapshot, effectId }) => {
      ids.push({ type: effect.type, effectId, id: effect.id });
      return [{ type: 'ImageScoringScriptChecked', data: { ...ref(snapshot.context.imageId), ok: true, detail: effect.params.tag } }];
    },
    pushImage: (effect, { snapshot, effectId }) => {
      ids.push({ type: effect.type, effectId, id: effect.id });
      return [{ type: 'ImagePushed', data: { ...ref(snapshot.context.imageId), registry: 'r', repository: 'azureml/img', digest: 'sha256:1' } }];
    },
    completeImage: (effect, { snapshot, effectId }) => {
      ids.push({ type: effect.type, effectId, id: effect.id });
      return [{ type: 'ImageCreated', data: { ...ref(snapshot.context.imageId), location: snapshot.context.location ?? '' } }];
    },
  };
  const runner = new EffectRunner<typeof imageAggregate>({ store, aggregate: imageAggregate, handlers, ...(options.recordsStart ? { recordsStart: options.recordsStart } : {}) });
  const create = (imageId: string) =>
    runner.execute(bus.context('CreateImage'), `image-${imageId}`, (current) => (current ? [] : [{ type: 'ImageCreationRequested', data: requested(imageId) }]), {});
  const events = (stream?: string): StoredEvent[] => [...store.readAll()].filter((e) => !stream || e.stream === stream);
  return { store, bus, runner, trace, ids, create, events, handlers };
};

describe('the effect runner (runtime/effect-runner.ts)', () => {
  it('carries out every effect the machine names, appending each outcome and feeding it back, until it names no more', async () => {
    const { create, events } = setUp();
    const final = await create('img_1');
    expect(imageStatusOf(final)).toBe('Succeeded');
    expect(events('image-img_1').map((e) => e.type)).toEqual(['ImageCreationRequested', 'ImageBuilt', 'ImageScoringScriptChecked', 'ImagePushed', 'ImageCreated']);
    expect(events('image-img_1').map((e) => e.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('stamps each effect with the position of the fact that named it and its index: <position>:<index>', async () => {
    const { create, events, ids } = setUp();
    await create('img_1');
    const [requestedAt, built, checked, pushed] = events('image-img_1').map((e) => e.position);
    expect(ids).toEqual([
      { type: 'buildImage', effectId: `${requestedAt}:0`, id: `${requestedAt}:0` },
      { type: 'checkScoringScript', effectId: `${built}:0`, id: `${built}:0` },
      { type: 'pushImage', effectId: `${checked}:0`, id: `${checked}:0` },
      { type: 'completeImage', effectId: `${pushed}:0`, id: `${pushed}:0` },
    ]);
  });

  it('runs two commands on one stream one after the other: the second decides only once the first has carried out everything', async () => {
    const gates = new Map<string, Deferred>();
    const { runner, bus, trace, create } = setUp({ gate: (id) => (gates.get(id) ?? deferred()).promise });
    gates.set('img_1', deferred());
    const first = create('img_1');
    const second = runner.execute(
      bus.context('Second'),
      'image-img_1',
      (current) => {
        trace.push(`second decides at version ${current?.version}`);
        return [];
      },
      {},
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(trace).toEqual(['build img_1 start']);
    gates.get('img_1')!.resolve();
    await Promise.all([first, second]);
    expect(trace).toEqual(['build img_1 start', 'build img_1 end', 'second decides at version 5']);
  });

  it('runs commands on different streams concurrently: one waiting on its effect does not hold up another stream', async () => {
    const gates = new Map([['img_1', deferred()]]);
    const { trace, create } = setUp({ gate: (id) => gates.get(id)?.promise ?? Promise.resolve() });
    const first = create('img_1');
    const other = await create('img_2');
    expect(imageStatusOf(other)).toBe('Succeeded');
    expect(trace).toEqual(['build img_1 start', 'build img_2 start', 'build img_2 end']);
    gates.get('img_1')!.resolve();
    expect(imageStatusOf(await first)).toBe('Succeeded');
  });

  it('a command that fails does not stop the next one on its stream', async () => {
    const { runner, bus, create } = setUp();
    const failing = runner.execute(bus.context('Failing'), 'image-img_1', () => {
      throw new Error('refused');
    }, {});
    const next = create('img_1');
    await expect(failing).rejects.toThrow('refused');
    expect(imageStatusOf(await next)).toBe('Succeeded');
  });

  it('an append that finds the stream moved on is the store\'s WrongExpectedVersion, and nothing of it is written', async () => {
    const gate = deferred();
    const { store, create, events, runner } = setUp({ gate: () => gate.promise });
    const creating = create('img_1');
    await new Promise((r) => setTimeout(r, 10));
    // Another writer appends to the stream while the build is under way.
    store.append('image-img_1', 'any', [{ type: 'ImageCreationTimedOut', data: { ...ref('img_1'), afterMs: 1 }, meta: { at: new Date(0).toISOString(), correlationId: 'c', causationId: 'c', session: 's_test' } }]);
    gate.resolve();
    const error = (await creating.catch((e: unknown) => e)) as SimError;
    expect(error.code).toBe('WrongExpectedVersion');
    expect(events('image-img_1').map((e) => e.type)).toEqual(['ImageCreationRequested', 'ImageCreationTimedOut']);
    // What the runner holds follows the log: the other writer's fact is folded in.
    expect(imageStatusOf(runner.load('image-img_1')!.snapshot)).toBe('TimedOut');
  });

  it('holds each stream folded and reads only the facts appended since (no re-fold per call)', async () => {
    const store = createMemoryEventStore();
    const reads: Array<number | undefined> = [];
    const spied: EventStore = { ...store, readStream: (stream, after) => (reads.push(after), store.readStream(stream, after)) };
    const { create, runner } = setUp({ store: spied });
    await create('img_1');
    reads.length = 0;
    runner.load('image-img_1');
    runner.load('image-img_1');
    expect(reads).toEqual([5, 5]);
    expect(runner.load('image-none')).toBeUndefined();
  });

  it('maps a handler that throws, or one that takes too long, to the outcome the aggregate gives it', async () => {
    const store = createMemoryEventStore();
    const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
    const { handlers } = setUp({ store });
    const runner = new EffectRunner<typeof imageAggregate>({
      store,
      aggregate: imageAggregate,
      handlers: {
        ...handlers,
        checkScoringScript: () => {
          throw new Error('no engine');
        },
        pushImage: () => new Promise(() => {}),
      },
      failed: (_e, error, { context }) => [{ type: 'ImageCreationFailed', data: { ...ref(context.imageId), reason: (error as Error).message } }],
      timeout: { ms: () => 20, outcome: (_e, { context }, afterMs) => [{ type: 'ImageCreationTimedOut', data: { ...ref(context.imageId), afterMs } }] },
    });
    const failed = await runner.execute(bus.context('C'), 'image-img_1', () => [{ type: 'ImageCreationRequested', data: requested('img_1') }], {});
    expect(failed.context.reason).toBe('no engine');
    const late = new EffectRunner<typeof imageAggregate>({
      store,
      aggregate: imageAggregate,
      handlers: { ...handlers, pushImage: () => new Promise(() => {}) },
      timeout: { ms: () => 20, outcome: (_e, { context }, afterMs) => [{ type: 'ImageCreationTimedOut', data: { ...ref(context.imageId), afterMs } }] },
    });
    const timedOut = await late.execute(bus.context('C'), 'image-img_2', () => [{ type: 'ImageCreationRequested', data: requested('img_2') }], {});
    expect(imageStatusOf(timedOut)).toBe('TimedOut');
  });

  it('records the start of an effect that acts outside the log before its handler acts, and its outcome after', async () => {
    const { create, events, trace } = setUp({ recordsStart: ['buildImage', 'pushImage'] });
    await create('img_1');
    const log = events('image-img_1');
    expect(log.map((e) => e.type)).toEqual([
      'ImageCreationRequested',
      'EffectStarted',
      'ImageBuilt',
      'ImageScoringScriptChecked',
      'EffectStarted',
      'ImagePushed',
      'ImageCreated',
    ]);
    expect(log[1]!.data).toEqual({ effect: 'buildImage', effectId: `${log[0]!.position}:0` });
    expect(log[4]!.data).toEqual({ effect: 'pushImage', effectId: `${log[3]!.position}:0`, params: { tag: 't-img_1' } });
    expect(trace[0]).toBe(`build img_1 start (recorded ${log[0]!.position}:0)`);
  });

  it('does not carry out again an effect whose start the stream records (a crash between start and outcome)', async () => {
    const store = createMemoryEventStore();
    // The first simulator records the build's start and dies before its outcome.
    const crashed = setUp({ store, recordsStart: ['buildImage'], gate: () => new Promise(() => {}) });
    void crashed.create('img_1');
    await new Promise((r) => setTimeout(r, 10));
    expect(crashed.events('image-img_1').map((e) => e.type)).toEqual(['ImageCreationRequested', 'EffectStarted']);
    // The next one carries out what the stream's facts named, by their ids: the build is not started twice.
    const next = setUp({ store, recordsStart: ['buildImage'] });
    const { effects } = imageAggregate.history(store.readStream('image-img_1'))!;
    const buildId = `${crashed.events('image-img_1')[0]!.position}:0`;
    expect(effects.map((e) => e.id)).toEqual([buildId]);
    const { snapshot, skipped } = await next.runner.carryOut(next.bus.context('Resume'), 'image-img_1', effects, {});
    expect(skipped).toEqual([buildId]);
    expect(next.trace).toEqual([]);
    expect(imageStatusOf(snapshot)).toBe('Running');
    expect(next.events('image-img_1').map((e) => e.type)).toEqual(['ImageCreationRequested', 'EffectStarted']);
  });

  it('carries out effects named earlier whose start was never recorded, by their own ids', async () => {
    const store = createMemoryEventStore();
    const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
    bus.context('Requested').emit('image-img_1', 'no-stream', [{ type: 'ImageCreationRequested', data: requested('img_1') }]);
    const { runner, ids, events } = setUp({ store, recordsStart: ['buildImage'] });
    const { effects } = imageAggregate.history(store.readStream('image-img_1'))!;
    const { snapshot, skipped } = await runner.carryOut(bus.context('Resume'), 'image-img_1', effects, {});
    expect(skipped).toEqual([]);
    expect(imageStatusOf(snapshot)).toBe('Succeeded');
    expect(ids[0]).toMatchObject({ type: 'buildImage', effectId: `${events('image-img_1')[0]!.position}:0` });
  });

  it('with `takes`, drops the facts the machine would not take now, each checked against the state those before it lead to', async () => {
    const store = createMemoryEventStore();
    const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
    const { handlers } = setUp({ store });
    const checked: string[] = [];
    const runner = new EffectRunner<typeof imageAggregate>({
      store,
      aggregate: imageAggregate,
      handlers: {
        ...handlers,
        // A second report of the same build: taken after the first, the machine no longer takes it.
        buildImage: () => [
          { type: 'ImageBuilt', data: { ...ref('img_1'), tag: 't-1', reused: false } },
          { type: 'ImageBuilt', data: { ...ref('img_1'), tag: 't-again', reused: false } },
        ],
      },
      takes: (snapshot, fact) => {
        checked.push(`${fact.type} in ${imageStatusOf(snapshot)}:${JSON.stringify(snapshot.value)}`);
        return imageAggregate.accepts(snapshot, { type: fact.type, ...fact.data } as Parameters<typeof imageAggregate.accepts>[1]);
      },
    });
    const final = await runner.execute(bus.context('C'), 'image-img_1', () => [{ type: 'ImageCreationRequested', data: requested('img_1') }], {});
    expect(imageStatusOf(final)).toBe('Succeeded');
    expect(final.context.tag).toBe('t-1');
    const log = () => store.readStream('image-img_1').map((e) => e.type);
    expect(log()).toEqual(['ImageCreationRequested', 'ImageBuilt', 'ImageScoringScriptChecked', 'ImagePushed', 'ImageCreated']);
    expect(checked.slice(0, 2)).toEqual(['ImageBuilt in Running:{"making":"building"}', 'ImageBuilt in Running:{"making":"checking"}']);
    // A command's late report is dropped too: nothing is appended, the state is returned as it is.
    const late = await runner.execute(bus.context('Late'), 'image-img_1', () => [{ type: 'ImageCreationTimedOut', data: { ...ref('img_1'), afterMs: 1 } }], {});
    expect(imageStatusOf(late)).toBe('Succeeded');
    expect(log()).toHaveLength(5);
  });

  it('with `derive`, holds a value made from each fact alongside the state, the same whether advanced by its appends or folded from the log', async () => {
    const store = createMemoryEventStore();
    const bus = new CommandBus(store, virtualClock(), 's_test', nanoIds());
    const { handlers } = setUp({ store });
    const seen: string[] = [];
    const make = () =>
      new EffectRunner<typeof imageAggregate, object, FactOf<typeof imageAggregate>, string[]>({
        store,
        aggregate: imageAggregate,
        handlers,
        derive: (statuses, snapshot, fact) => {
          seen.push(fact.type);
          const status = imageStatusOf(snapshot);
          return statuses?.at(-1) === status ? statuses : [...(statuses ?? []), status];
        },
      });
    const runner = make();
    await runner.execute(bus.context('C'), 'image-img_1', () => [{ type: 'ImageCreationRequested', data: requested('img_1') }], {});
    expect(runner.load('image-img_1')!.derived).toEqual(['Running', 'Succeeded']);
    expect(seen).toEqual(['ImageCreationRequested', 'ImageBuilt', 'ImageScoringScriptChecked', 'ImagePushed', 'ImageCreated']);
    // Another runner folds it from the log to the same value; a fact another writer appended is folded in.
    expect(make().load('image-img_1')!.derived).toEqual(['Running', 'Succeeded']);
    bus.context('Other').emit('image-img_2', 'no-stream', [{ type: 'ImageCreationRequested', data: requested('img_2') }]);
    expect(runner.load('image-img_2')!.derived).toEqual(['Running']);
    bus.context('Other').emit('image-img_2', 1, [{ type: 'ImageCreationFailed', data: { ...ref('img_2'), reason: 'no' } }]);
    expect(runner.load('image-img_2')!.derived).toEqual(['Running', 'Failed']);
  });

  it('takes a handler for every effect, each with its own params (the compiler checks)', () => {
    const { handlers } = setUp();
    const { completeImage: _missing, ...partial } = handlers;
    // @ts-expect-error completeImage has no handler
    const incomplete: OutcomeHandlers<typeof imageAggregate> = partial;
    const wrongParams: OutcomeHandlers<typeof imageAggregate> = {
      ...handlers,
      // @ts-expect-error pushImage's params are { tag }, not { resource }
      pushImage: (effect: { type: 'pushImage'; params: { resource: string } }) => [],
    };
    expect([incomplete, wrongParams]).toHaveLength(2);
  });
});
