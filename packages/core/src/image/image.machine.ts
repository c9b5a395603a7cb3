import { assign, setup, type SnapshotFrom } from 'xstate';
import type { EventDataMap, MachineEvent } from '../events/catalog';
import type { StoredEvent } from '../events/envelope';
import { defineAggregate, type EffectOf } from '../aggregate/define-aggregate';

/**
 * An image's lifecycle (S8.5), with the platform's image statuses as tags: Running while it is
 * built, checked and pushed; then Succeeded or Failed. Entry actions name the effects
 * (`buildImage`, `checkScoringScript`, `pushImage`, `completeImage`) the platform carries out.
 */
type Ev<K extends keyof EventDataMap> = MachineEvent<K>;
export type ImageMachineEvent =
  | Ev<'ImageBuilt'>
  | Ev<'ImageScoringScriptChecked'>
  | Ev<'ImagePushed'>
  | Ev<'ImageCreated'>
  | Ev<'ImageCreationFailed'>
  | Ev<'ImageCreationTimedOut'>;

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
          on: { ImageBuilt: { target: 'checking', actions: assign({ tag: ({ event }) => event.tag }) } },
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
          },
        },
        pushing: {
          tags: ['Running'],
          entry: { type: 'pushImage', params: ({ context }) => ({ tag: context.tag! }) },
          on: { ImagePushed: { target: 'completing', actions: assign({ location: ({ event }) => `${event.registry}/${event.repository}@${event.digest}` }) } },
        },
        completing: { tags: ['Running'], entry: 'completeImage', on: { ImageCreated: '#image.succeeded' } },
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
export const foldImage = (events: readonly StoredEvent[]): ImageSnapshot | undefined => imageAggregate.fold(events);
