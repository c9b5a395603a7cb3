import { assign, setup, type SnapshotFrom } from 'xstate';
import type { EventDataMap, MachineEvent } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { defineAggregate, type EffectOf } from '../aggregate/define-aggregate';

/**
 * An image's lifecycle (S8.5), with the platform's image statuses as tags: Running while it is
 * built, checked and pushed; then Succeeded or Failed. Entry actions name the effects
 * (`buildImage`, `checkScoringScript`, `pushImage`, `completeImage`) the platform carries out.
 * `ImageCreationResumed` (a resumed session going on with an image its dead simulator left
 * being made) re-enters the step under way, so its effect is named again with a new id and
 * carried out again: the effect runner never carries out a started effect id twice
 * (packages/platform/src/runtime/effect-runner.ts), and each step is safe to repeat.
 */
type Ev<K extends keyof EventDataMap> = MachineEvent<K>;
export type ImageMachineEvent =
  | Ev<'ImageBuilt'>
  | Ev<'ImageScoringScriptChecked'>
  | Ev<'ImagePushed'>
  | Ev<'ImageCreated'>
  | Ev<'ImageCreationFailed'>
  | Ev<'ImageCreationTimedOut'>
  | Ev<'ImageCreationResumed'>;

export type ImageStatus = 'Running' | 'Succeeded' | 'Failed' | 'TimedOut';

export type ImageContext = EventDataMap['ImageCreationRequested'] & { tag?: string; location?: string; reason?: string };

export const imageMachine = setup({
  types: { context: {} as ImageContext, events: {} as ImageMachineEvent, input: {} as EventDataMap['ImageCreationRequested'] },
  actions: {
    buildImage: () => {},
    checkScoringScript: (_: unknown, _params: { tag: string }) => {},
    pushImage: (_: unknown, _params: { tag: string }) => {},
    completeImage: () => {},
  },
  guards: { scriptOk: ({ event }) => event.type === 'ImageScoringScriptChecked' && event.ok },
}).createMachine({
  id: 'image',
  context: ({ input }) => ({ ...input }),
  initial: 'making',
  states: {
    // Failing or timing out ends an image only while it is being made: one that ended stays as it ended.
    making: {
      initial: 'building',
      on: {
        ImageCreationFailed: { target: 'failed', actions: assign({ reason: ({ event }) => event.reason }) },
        ImageCreationTimedOut: { target: 'timedOut', actions: assign({ reason: ({ event }) => `no result within ${event.afterMs} ms` }) },
      },
      states: {
        building: {
          tags: ['Running'],
          entry: 'buildImage',
          on: { ImageBuilt: { target: 'checking', actions: assign({ tag: ({ event }) => event.tag }) }, ImageCreationResumed: { target: 'building', reenter: true } },
        },
        checking: {
          tags: ['Running'],
          entry: { type: 'checkScoringScript', params: ({ context }) => ({ tag: context.tag! }) },
          // A broken scoring script fails the image with its error (the platform records why).
          on: {
            ImageScoringScriptChecked: [
              { guard: 'scriptOk', target: 'pushing' },
              // The failure itself follows as ImageCreationFailed, with the script's error.
              { actions: assign({ reason: ({ event }) => (event.type === 'ImageScoringScriptChecked' ? event.detail : undefined) }) },
            ],
            ImageCreationResumed: { target: 'checking', reenter: true },
          },
        },
        pushing: {
          tags: ['Running'],
          entry: { type: 'pushImage', params: ({ context }) => ({ tag: context.tag! }) },
          on: {
            ImagePushed: { target: 'completing', actions: assign({ location: ({ event }) => `${event.registry}/${event.repository}@${event.digest}` }) },
            ImageCreationResumed: { target: 'pushing', reenter: true },
          },
        },
        completing: { tags: ['Running'], entry: 'completeImage', on: { ImageCreated: '#image.succeeded', ImageCreationResumed: { target: 'completing', reenter: true } } },
      },
    },
    succeeded: { tags: ['Succeeded'], type: 'final' },
    failed: { tags: ['Failed'], type: 'final' },
    timedOut: { tags: ['TimedOut'], type: 'final' },
  },
});

export type ImageSnapshot = SnapshotFrom<typeof imageMachine>;

/** The effects the image statechart names, carried out by the platform's image service. */
export const IMAGE_EFFECTS = ['buildImage', 'checkScoringScript', 'pushImage', 'completeImage'] as const;
export type ImageEffect = EffectOf<typeof imageMachine, (typeof IMAGE_EFFECTS)[number]>;

export const imageAggregate = defineAggregate(imageMachine, { startsWith: 'ImageCreationRequested', effects: IMAGE_EFFECTS });

export const startImage = (requested: EventDataMap['ImageCreationRequested'], position?: number): [ImageSnapshot, ImageEffect[]] => imageAggregate.start(requested, position);
export const advanceImage = (snapshot: ImageSnapshot, event: ImageMachineEvent, position?: number): [ImageSnapshot, ImageEffect[]] =>
  imageAggregate.advance(snapshot, event, position);
export const imageStatusOf = (snapshot: ImageSnapshot): ImageStatus => [...snapshot.tags][0] as ImageStatus;

/** The effect of the step an image being made is at (what `ImageCreationResumed` carries out again); undefined once it ended. */
export const imageStepEffect = (snapshot: ImageSnapshot): (typeof IMAGE_EFFECTS)[number] | undefined => {
  if (imageStatusOf(snapshot) !== 'Running') return undefined;
  const step = (snapshot.value as { making?: string }).making;
  return ({ building: 'buildImage', checking: 'checkScoringScript', pushing: 'pushImage', completing: 'completeImage' } as const)[step as 'building'];
};
export const foldImage = (events: readonly StoredEvent[]): ImageSnapshot | undefined => imageAggregate.fold(events);
