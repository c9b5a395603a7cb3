import type { z } from 'zod';
import type { Duration } from './durations';
import type { PathRoots } from './file-paths';
import type { eventMatcherSchema } from './schemas';
import type { StepExpect, Verb, VerbArgs } from './verbs';

/** Matches an event whose `type` equals and whose data has each other key with that value. */
export type EventMatcher = z.output<typeof eventMatcherSchema>;

/** One validated step. `args` is normalized per verb; narrow it with `isStepOf`. */
export type Step = {
  /** 0-based. */
  index: number;
  /** Position of the step's verb key (1-based). */
  line: number;
  col: number;
  verb: string;
  args: unknown;
  /** The principal acting; declared in `tenant.principals`. */
  as?: string;
  id?: string;
  expect: StepExpect;
};

/** A step whose verb is known, with its arguments typed. */
export type StepOf<V extends Verb> = Step & { verb: V; args: VerbArgs[V] };

/** A parsed, validated scenario with every default filled in. */
export type Scenario = {
  file: string;
  name: string;
  cites: string[];
  tenant: {
    mfa: 'required' | 'optional';
    principals: Record<string, { kind: 'user' | 'servicePrincipal' }>;
  };
  subscriptions: Record<string, { owners: string[] }>;
  options: {
    runTokenTtl: Duration;
    clock: 'real' | 'virtual';
    rbac: 'enforce' | 'soft' | 'off';
    driver?: 'docker' | 'process';
  };
  steps: Step[];
  expect: {
    order: EventMatcher[];
    never: EventMatcher[];
    count: Array<{ event: EventMatcher; times: number }>;
  };
  /** Step ids and the step each names. */
  ids: Record<string, { verb: string; stepIndex: number }>;
  /** Where the scenario's file paths resolve and may lead (checked again when a step runs). */
  paths: PathRoots;
};

/** Narrows a step to its verb, typing its arguments. */
export function isStepOf<V extends Verb>(step: Step, verb: V): step is StepOf<V> {
  return step.verb === verb;
}
