import type { IssueDraft } from './issues';
import { stepPath, type DataPath } from './paths';
import type { Position, SourcePositions } from './positions';
import { isRecord } from './rules';
import { referenceSchema, stepIdSchema } from './schemas';
import { allowedList, didYouMean, nearest } from './suggest';
import { FAULT_KINDS, IMPLEMENTED_FAULTS, IMPLEMENTED_VERBS, stepExpectSchemas, verbArgSchemas, VERBS, type StepExpect, type Verb } from './verbs';
import { draftsFromZod, showValue } from './zod-issues';

/** Keys a step may have besides its verb. */
export const STEP_MODIFIERS = ['as', 'id', 'expect'] as const;

/**
 * One step as far as it could be understood. Invalid parts are left undefined (and reported)
 * so later checks can still run on the rest without cascading errors.
 */
export type StepDraft = {
  index: number;
  path: DataPath;
  /** The verb key's position, or the step's when it has no verb. */
  position: Position;
  verb?: Verb;
  /** The verb's value as written. */
  rawArgs?: unknown;
  /** Normalized arguments; undefined when they are invalid. */
  args?: unknown;
  as?: string;
  id?: string;
  /** Undefined when the step's `expect` is invalid. */
  expect?: StepExpect;
};

const isVerb = (key: string): key is Verb => Object.hasOwn(verbArgSchemas, key);
const isModifier = (key: string) => (STEP_MODIFIERS as readonly string[]).includes(key);
const STEP_KEYS = [...VERBS, ...STEP_MODIFIERS];
const STEP_KEYS_TEXT = `one verb (${VERBS.join(', ')}) and ${STEP_MODIFIERS.join(', ')}`;

/** Validates one step: its verb key, arguments, `as`, `id` and `expect`. */
export function parseStep(raw: unknown, index: number, positions: SourcePositions): { step: StepDraft; issues: IssueDraft[] } {
  const path = stepPath(index);
  const step: StepDraft = { index, path, position: positions.at(path, 'value') };
  if (!isRecord(raw)) {
    const message = `a step is a map with exactly one verb, e.g. '- signIn: alice'; got ${showValue(raw)}`;
    return { step, issues: [{ path, target: 'value', message }] };
  }
  const issues: IssueDraft[] = [];
  const keys = Object.keys(raw);
  const verbs = keys.filter(isVerb);

  for (const key of keys.filter((k) => !isVerb(k) && !isModifier(k))) {
    const suggestion = nearest(key, STEP_KEYS);
    issues.push({
      path: [...path, key],
      target: 'key',
      key,
      message: `unknown key '${key}' in the step; allowed: ${STEP_KEYS_TEXT}${didYouMean(suggestion)}`,
      allowed: STEP_KEYS,
      ...(suggestion ? { suggestion } : {}),
    });
  }
  if (verbs.length === 0 && issues.length === 0) {
    issues.push({ path, target: 'value', message: `the step has no verb; allowed: ${STEP_KEYS_TEXT}`, allowed: [...VERBS] });
  }
  if (verbs.length > 1) {
    issues.push({
      path: [...path, verbs[1]!],
      target: 'key',
      key: verbs[1]!,
      message: `the step has ${verbs.length} verbs (${verbs.join(', ')}); a step has exactly one, so split it into separate steps`,
    });
  }

  const verb = verbs[0];
  if (verb !== undefined) {
    step.verb = verb;
    step.position = positions.at([...path, verb], 'key');
    step.rawArgs = raw[verb];
  }
  // Every verb's arguments are checked, also those of a second verb in the same step: the user
  // splits the step and then needs both to be right (one run reports all).
  for (const each of verbs) {
    const schema = verbArgSchemas[each];
    const parsed = schema.safeParse(raw[each], { reportInput: true });
    if (parsed.success && each === verb) step.args = parsed.data;
    else if (!parsed.success) issues.push(...draftsFromZod(parsed.error, schema, [...path, each]));
    issues.push(...implementationIssues(each, raw[each], [...path, each]));
  }

  if (raw['as'] !== undefined) {
    const parsed = referenceSchema.safeParse(raw['as'], { reportInput: true });
    if (parsed.success) step.as = parsed.data;
    else issues.push(...draftsFromZod(parsed.error, referenceSchema, [...path, 'as']));
  }
  if (raw['id'] !== undefined) {
    const parsed = stepIdSchema.safeParse(raw['id'], { reportInput: true });
    if (parsed.success) step.id = parsed.data;
    else issues.push(...draftsFromZod(parsed.error, stepIdSchema, [...path, 'id']));
  }
  if (raw['expect'] === undefined) {
    step.expect = { kind: 'success' };
  } else if (verb !== undefined) {
    const schema = stepExpectSchemas[verb];
    const parsed = schema.safeParse(raw['expect'], { reportInput: true });
    if (parsed.success) step.expect = parsed.data;
    else issues.push(...draftsFromZod(parsed.error, schema, [...path, 'expect']));
  }

  issues.push(...successOnlyValueIssues(step));
  return { step, issues };
}

function implementationIssues(verb: Verb, rawArgs: unknown, path: DataPath): IssueDraft[] {
  if (!IMPLEMENTED_VERBS.has(verb)) {
    const implemented = [...IMPLEMENTED_VERBS];
    return [
      {
        path,
        target: 'key',
        key: verb,
        message: `verb '${verb}' is part of the scenario language but not implemented in this version of amlsim (implemented: ${implemented.join(', ')})`,
        allowed: implemented,
      },
    ];
  }
  if (verb !== 'fault' || !isRecord(rawArgs)) return [];
  const implemented = [...IMPLEMENTED_FAULTS];
  return (FAULT_KINDS as readonly string[])
    .filter((kind) => rawArgs[kind] !== undefined && !IMPLEMENTED_FAULTS.has(kind))
    .map((kind) => ({
      path: [...path, kind],
      target: 'key' as const,
      key: kind,
      message: `fault '${kind}' is part of the scenario language but not implemented in this version of amlsim (implemented faults: ${implemented.join(', ')})`,
      allowed: implemented,
    }));
}

/**
 * Values the platform itself rejects are allowed only in steps that expect the rejection:
 * docs/scenarios.md shows `regenKey { key: primary }` failing BadRequest, so the parser must let
 * it through there — but in a step expecting success it can only be a typo.
 */
const SUCCESS_ONLY_VALUES: { [V in Verb]?: Record<string, readonly string[]> } = {
  regenKey: { key: ['Primary', 'Secondary'] },
};

function successOnlyValueIssues(step: StepDraft): IssueDraft[] {
  const rules = step.verb === undefined ? undefined : SUCCESS_ONLY_VALUES[step.verb];
  if (rules === undefined || step.expect?.kind !== 'success' || !isRecord(step.args)) return [];
  const args = step.args;
  return Object.entries(rules).flatMap(([key, allowed]) => {
    const value = args[key];
    if (typeof value !== 'string' || allowed.includes(value)) return [];
    const suggestion = nearest(value, allowed);
    return [
      {
        path: [...step.path, step.verb!, key],
        target: 'value' as const,
        key,
        message:
          `bad value ${showValue(value)} for '${key}' in ${step.verb}${allowedList(allowed)}${didYouMean(suggestion)} ` +
          `(only a step expecting an error, e.g. { error: BadRequest }, may use another value)`,
        allowed: [...allowed],
        ...(suggestion ? { suggestion } : {}),
      },
    ];
  });
}
