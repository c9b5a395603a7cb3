import { z } from 'zod';
import type { IssueDraft } from './issues';
import { contextOf, describePath, type DataPath } from './paths';
import type { CustomIssueParams } from './rules';
import { allowedList, didYouMean, nearest } from './suggest';

type ZodIssue = z.core.$ZodIssue;

/**
 * Turns zod issues into drafts with short, precise messages that name the key, what is
 * allowed, and the nearest valid name. `base` is where the validated value sits in the file;
 * `schema` is what validated it (needed to list the keys an object allows).
 */
export function draftsFromZod(error: z.ZodError, schema: z.ZodType, base: DataPath): IssueDraft[] {
  return error.issues.flatMap((issue) => flattenUnion(issue, [])).flatMap(({ issue, at }) => draft(issue, at, schema, base));
}

type Placed = { issue: ZodIssue; at: DataPath };

/**
 * zod reports a failed union as one issue per branch. Users meant one branch: the one whose
 * value had the right type (`signIn: { principl: alice }` meant the map form). Only when every
 * branch rejects the type outright is it reported as one "must be X or Y" issue.
 */
function flattenUnion(issue: ZodIssue, prefix: DataPath): Placed[] {
  const at = [...prefix, ...(issue.path as DataPath)];
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ issue, at }];
  const rootMismatch = (branch: ZodIssue[]) =>
    branch.every((i) => i.code === 'invalid_type' && i.path.length === 0) ||
    branch.every((i) => i.code === 'invalid_union' && i.path.length === 0 && i.errors.every(rootMismatch));
  const plausible = issue.errors.filter((branch) => !rootMismatch(branch));
  if (plausible.length === 0) {
    const expected = issue.errors.flatMap((branch) => branch.flatMap(expectedOf));
    const merged = { code: 'invalid_type', expected: 'union', path: [], input: issue.input, message: oneOf([...new Set(expected)]) };
    return [{ issue: merged as unknown as ZodIssue, at }];
  }
  const best = plausible.reduce((a, b) => (b.length < a.length ? b : a));
  return best.flatMap((inner) => flattenUnion(inner, at));
}

/** 'a, b or c' */
function oneOf(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}

function expectedOf(issue: ZodIssue): string[] {
  if (issue.code === 'invalid_type') return [typeName(issue.expected)];
  if (issue.code === 'invalid_union') return issue.errors.flatMap((b) => b.flatMap(expectedOf));
  return [];
}

function draft(issue: ZodIssue, at: DataPath, schema: z.ZodType, base: DataPath): IssueDraft[] {
  const path = [...base, ...at];
  const { key, context } = describePath(path);
  const input = 'input' in issue ? issue.input : undefined;
  const bad = (detail: string, extra: Partial<IssueDraft> = {}): IssueDraft[] => [
    {
      path,
      target: 'value',
      key,
      message: `bad value ${showValue(input)} for '${key}' in ${context}${detail}${allowedList(extra.allowed)}${didYouMean(extra.suggestion)}`,
      ...extra,
    },
  ];

  // A key the file does not have at all (YAML has no undefined: an empty value is null). zod
  // reports it by what the key's schema wanted (an enum's values, a type); the user needs to
  // hear that the key is missing.
  if (input === undefined && issue.code !== 'unrecognized_keys' && issue.code !== 'custom' && issue.code !== 'invalid_union') {
    const allowed = issue.code === 'invalid_value' ? issue.values.map(String) : undefined;
    // zod says 'nonoptional' for a key that takes any value but must be there (callWebservice.data).
    const expected = issue.code === 'invalid_type' ? String(issue.expected) : undefined;
    const wanted = expected !== undefined && expected !== 'union' && expected !== 'nonoptional' ? `; expected ${typeName(expected)}` : '';
    return [
      {
        path,
        target: 'value',
        key,
        message: `missing key '${key}' in ${context}${allowed ? `; expected one of: ${allowed.join(', ')}` : wanted}`,
        ...(allowed ? { allowed } : {}),
      },
    ];
  }

  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = objectKeysAt(schema, at);
      return issue.keys.map((unknown) => {
        const suggestion = allowed ? nearest(unknown, allowed) : undefined;
        return {
          path: [...path, unknown],
          target: 'key' as const,
          key: unknown,
          message: `unknown key '${unknown}' in ${contextOf(path)}${allowedList(allowed)}${didYouMean(suggestion)}`,
          ...(allowed ? { allowed } : {}),
          ...(suggestion ? { suggestion } : {}),
        };
      });
    }
    case 'invalid_type': {
      // A merged union issue carries its "expected" list in `message`.
      const expected = issue.expected === ('union' as string) ? issue.message : typeName(issue.expected);
      return [{ path, target: 'value', key, message: `'${key}' in ${context} must be ${expected}, not ${showType(input)}` }];
    }
    case 'invalid_value': {
      const allowed = issue.values.map(String);
      const suggestion = typeof input === 'string' ? nearest(input, allowed) : undefined;
      return bad('', { allowed, ...(suggestion ? { suggestion } : {}) });
    }
    case 'too_small': {
      if (issue.origin === 'array' || issue.origin === 'string') {
        const what = issue.origin === 'array' ? 'item' : 'character';
        const n = Number(issue.minimum);
        return [{ path, target: 'value', key, message: `'${key}' in ${context} needs at least ${n} ${what}${n === 1 ? '' : 's'}` }];
      }
      return bad(`; expected at least ${String(issue.minimum)}`);
    }
    case 'too_big':
      // A schema may say why there is a limit (`.max(n, { error })`); zod's own text starts "Too big".
      return bad(`; ${/^too big/i.test(issue.message) ? `expected at most ${String(issue.maximum)}` : issue.message}`);
    case 'invalid_key': {
      const reason = issue.issues[0]?.message ?? 'invalid name';
      return [{ path, target: 'key', key, message: `bad name '${key}' in ${context}; ${reason}` }];
    }
    case 'custom':
      return custom(issue.params as CustomIssueParams | undefined, issue.message, path, key, context, bad);
    default:
      return bad(`; ${issue.message}`);
  }
}

function custom(
  params: CustomIssueParams | undefined,
  message: string,
  path: DataPath,
  key: string,
  context: string,
  bad: (detail: string, extra?: Partial<IssueDraft>) => IssueDraft[],
): IssueDraft[] {
  switch (params?.kind) {
    case 'exactlyOne': {
      const options = params.keys.join(', ');
      if (params.present.length === 0) {
        // The path is the object itself: point at its key, where the missing one belongs.
        const here = contextOf(path);
        return [{ path, target: 'key', message: `${here} needs exactly one of: ${options}`, allowed: params.keys }];
      }
      const [first, second] = params.present;
      return [
        {
          path,
          target: 'key',
          key,
          message: `'${first}' and '${second}' cannot be combined in ${context}; give exactly one of: ${options}`,
          allowed: params.keys,
        },
      ];
    }
    case 'empty':
      return [{ path, target: 'value', key, message: `'${key}' in ${context} needs at least one entry, e.g. ${params.example}` }];
    case 'misspelledKey':
      return [
        {
          path,
          target: 'key',
          key,
          message: `key '${key}' in ${context} looks misspelled${didYouMean(params.suggestion)}`,
          suggestion: params.suggestion,
        },
      ];
    case 'exclusive':
      return [
        {
          path,
          target: 'key',
          key,
          message: `'${key}' cannot be combined with '${params.alone}' in ${context}: a step either fails with a code or succeeds`,
        },
      ];
    default: {
      const extra: Partial<IssueDraft> = {};
      if (params?.allowed) extra.allowed = params.allowed;
      if (params?.suggestion) extra.suggestion = params.suggestion;
      return bad(`; ${message}`, extra);
    }
  }
}

/**
 * The keys the object schema at `path` allows (for "allowed: …" after an unknown key). Walks
 * wrappers (optional, default, pipe) and, in a union, takes the branch that is an object.
 */
export function objectKeysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return objectKeysAt(def['innerType'] as z.core.$ZodType, path);
    case 'pipe':
      return objectKeysAt(def['in'] as z.core.$ZodType, path);
    case 'union':
      for (const option of def['options'] as z.core.$ZodType[]) {
        const keys = objectKeysAt(option, path);
        if (keys) return keys;
      }
      return undefined;
    case 'object': {
      const shape = def['shape'] as Record<string, z.core.$ZodType>;
      if (path.length === 0) return Object.keys(shape);
      const next = shape[String(path[0])] ?? (def['catchall'] as z.core.$ZodType | undefined);
      return next ? objectKeysAt(next, path.slice(1)) : undefined;
    }
    case 'array':
      return path.length === 0 ? undefined : objectKeysAt(def['element'] as z.core.$ZodType, path.slice(1));
    case 'record':
      return path.length === 0 ? undefined : objectKeysAt(def['valueType'] as z.core.$ZodType, path.slice(1));
    default:
      return undefined;
  }
}

function typeName(expected: string): string {
  const names: Record<string, string> = {
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'a boolean (true/false)',
    object: 'a map',
    record: 'a map',
    array: 'a list',
    null: 'null',
  };
  return names[expected] ?? expected;
}

/** A value as written in the file, short: `'eastu'`, `3`, `{…}`. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 37)}...` : value}'`;
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return '[…]';
  if (typeof value === 'object') return '{…}';
  return String(value);
}

/** What kind of value was given, for "must be a string, not a list". */
function showType(value: unknown): string {
  if (value === null) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return showValue(value);
}
