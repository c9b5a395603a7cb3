import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { advanceImage, foldImage, imageStatusOf, imageStepEffect, startImage, type ImageMachineEvent, type ImageSnapshot } from './image.machine';

/** An image's lifecycle (S8.5): built, its scoring script checked, pushed, created; or failed saying why. */
const requested = { imageId: 'img_1', image: 'sentiment-img', workspaceId: 'w1', workspace: 'ws1', version: 1, models: ['m1'], scoringScript: 'score.js' } as never;
const e = {
  built: { type: 'ImageBuilt', tag: 'amlsim/img:1' },
  scriptOk: { type: 'ImageScoringScriptChecked', ok: true, detail: 'init() and run() found' },
  scriptBad: { type: 'ImageScoringScriptChecked', ok: false, detail: 'SyntaxError: Unexpected token' },
  pushed: { type: 'ImagePushed', registry: 'cr1.azurecr.io', repository: 'sentiment-img', digest: 'sha256:abc' },
  created: { type: 'ImageCreated' },
  failed: { type: 'ImageCreationFailed', reason: 'SyntaxError: Unexpected token' },
  timedOut: { type: 'ImageCreationTimedOut', afterMs: 600000 },
  resumed: { type: 'ImageCreationResumed' },
} as unknown as Record<string, ImageMachineEvent>;

const play = (names: string[]) => {
  let [s, effects] = startImage(requested);
  const all = [...effects];
  for (const name of names) {
    let next: ImageSnapshot;
    [next, effects] = advanceImage(s, e[name]!);
    s = next;
    all.push(...effects);
  }
  return { s, effects: all };
};

describe('image machine', () => {
  it('builds, checks the script with the built tag, pushes it, completes: Running until Succeeded, with its registry location', () => {
    const run = play(['built', 'scriptOk', 'pushed']);
    expect(imageStatusOf(run.s)).toBe('Running');
    const done = play(['built', 'scriptOk', 'pushed', 'created']);
    expect(imageStatusOf(done.s)).toBe('Succeeded');
    expect(done.effects).toEqual([
      { type: 'buildImage', params: undefined },
      { type: 'checkScoringScript', params: { tag: 'amlsim/img:1' } },
      { type: 'pushImage', params: { tag: 'amlsim/img:1' } },
      { type: 'completeImage', params: undefined },
    ]);
    expect(done.s.context).toMatchObject({ tag: 'amlsim/img:1', location: 'cr1.azurecr.io/sentiment-img@sha256:abc' });
  });

  it('a broken scoring script is not pushed: the reason is kept and the failure that follows ends it', () => {
    const bad = play(['built', 'scriptBad']);
    expect(imageStatusOf(bad.s)).toBe('Running');
    expect(bad.s.context.reason).toBe('SyntaxError: Unexpected token');
    expect(bad.effects.map((x) => x.type)).not.toContain('pushImage');
    expect(bad.s.can(e.pushed!)).toBe(false);
    const failed = play(['built', 'scriptBad', 'failed']);
    expect([imageStatusOf(failed.s), failed.s.context.reason]).toEqual(['Failed', 'SyntaxError: Unexpected token']);
  });

  it('nothing is pushed or created out of order', () => {
    const [s] = startImage(requested);
    for (const name of ['scriptOk', 'pushed', 'created']) expect(s.can(e[name]!), name).toBe(false);
    expect(play(['built']).s.can(e.pushed!)).toBe(false);
    expect(play(['built', 'scriptOk']).s.can(e.created!)).toBe(false);
  });

  it('times out from any running state, saying after how long', () => {
    for (const upTo of [[], ['built'], ['built', 'scriptOk'], ['built', 'scriptOk', 'pushed']]) {
      const t = play([...upTo, 'timedOut']);
      expect([imageStatusOf(t.s), t.s.context.reason]).toEqual(['TimedOut', 'no result within 600000 ms']);
    }
  });

  it('foldImage replays a stream; anything else is no image', () => {
    const stored = [{ type: 'ImageCreationRequested', ...(requested as object) }, e.built, e.scriptOk, e.pushed, e.created].map((x, i) => {
      const { type, ...data } = x as { type: string };
      return { position: i + 1, stream: 'image-img_1', version: i + 1, type, data, meta: { at: 'x', correlationId: 'c', causationId: 'c', session: 's' } } as StoredEvent;
    });
    expect(imageStatusOf(foldImage(stored)!)).toBe('Succeeded');
    expect(foldImage([])).toBeUndefined();
    expect(foldImage(stored.slice(1))).toBeUndefined();
  });
});

describe('image machine: resumed after a restart', () => {
  it('ImageCreationResumed names the effect of the step under way again, with a new id, and the image goes on from there', () => {
    for (const [upTo, effect, params] of [
      [[], 'buildImage', undefined],
      [['built'], 'checkScoringScript', { tag: 'amlsim/img:1' }],
      [['built', 'scriptOk'], 'pushImage', { tag: 'amlsim/img:1' }],
      [['built', 'scriptOk', 'pushed'], 'completeImage', undefined],
    ] as const) {
      let [s] = startImage(requested, 1);
      upTo.forEach((name, i) => ([s] = advanceImage(s, e[name]!, i + 2)));
      expect(imageStepEffect(s)).toBe(effect);
      const [again, named] = advanceImage(s, e.resumed!, 10);
      expect(named).toEqual([{ type: effect, params, id: '10:0' }]);
      expect(imageStatusOf(again)).toBe('Running');
      expect(again.context.tag).toBe(s.context.tag);
    }
    const done = play(['built', 'resumed', 'scriptOk', 'resumed', 'pushed', 'created']);
    expect(imageStatusOf(done.s)).toBe('Succeeded');
  });

  it('an image that ended is not resumed: it has no step under way', () => {
    expect(play(['built', 'scriptOk', 'pushed', 'created']).s.can(e.resumed!)).toBe(false);
    expect(play(['failed']).s.can(e.resumed!)).toBe(false);
    expect(imageStepEffect(play(['timedOut']).s)).toBeUndefined();
  });
});

describe('image machine: an ended image stays as it ended', () => {
  it('a late ImageCreationFailed or ImageCreationTimedOut changes nothing once the image Succeeded', () => {
    const requested = { workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', version: 1, models: [], scoringScript: 's.js', dependencies: [] };
    let [s] = startImage(requested);
    for (const e of [
      { type: 'ImageBuilt', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', tag: 't', reused: false },
      { type: 'ImageScoringScriptChecked', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', ok: true, detail: 'ok' },
      { type: 'ImagePushed', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', registry: 'r', repository: 'img', digest: 'sha256:0' },
      { type: 'ImageCreated', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', location: 'r/img@sha256:0' },
      { type: 'ImageCreationFailed', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', reason: 'late' },
      { type: 'ImageCreationTimedOut', workspaceId: 'w1', workspace: 'ws1', imageId: 'i1', image: 'img', afterMs: 1 },
    ] as unknown as ImageMachineEvent[])
      [s] = advanceImage(s, e);
    expect(imageStatusOf(s)).toBe('Succeeded');
    expect(s.context.reason).toBeUndefined();
  });
});
