import { z } from 'zod';
import { nearest } from './suggest';

/** A plain map (YAML mapping), not a list or scalar. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Params of custom zod issues this parser raises; `zod-issues.ts` turns them into messages
 * (it knows the path, hence the key and its context, which a schema does not).
 */
export type CustomIssueParams =
  /** A bad value; `allowed`/`suggestion` are appended to the message. */
  | { kind?: 'value'; allowed?: string[]; suggestion?: string }
  /** Zero or several of a set of mutually exclusive keys. */
  | { kind: 'exactlyOne'; keys: string[]; present: string[] }
  /** A key that must stand alone (step `expect: { error }`). */
  | { kind: 'exclusive'; alone: string }
  /** A map of names with no entry; `example` shows one. */
  | { kind: 'empty'; example: string }
  /** A key that is a near-miss of a required one, in a map that otherwise takes any key. */
  | { kind: 'misspelledKey'; suggestion: string };

// Refinements that inspect several keys run even when a property failed (zod skips them by
// default), so a file with many problems reports them all in one go.
const whenMap = { when: (payload: { value: unknown }) => isRecord(payload.value) };

/** Requires exactly one of `keys` (assignRole's scope, submitRun's source|snapshot, fault kinds). */
export function exactlyOneOf<S extends z.ZodObject>(schema: S, keys: readonly string[]): S {
  return schema.superRefine((value, ctx) => {
    const present = keys.filter((k) => (value as Record<string, unknown>)[k] !== undefined);
    if (present.length === 1) return;
    const params: CustomIssueParams = { kind: 'exactlyOne', keys: [...keys], present };
    // Point at the second key when there are too many (the first one is presumably meant).
    ctx.addIssue({ code: 'custom', message: 'exactly one', input: value, path: present.length > 1 ? [present[1]!] : [], params });
  }, whenMap) as S;
}

/** Requires a record (map of names) to have at least one entry. */
export function nonEmpty<S extends z.ZodRecord>(schema: S, hint: string): S {
  return schema.superRefine((value, ctx) => {
    if (Object.keys(value as object).length > 0) return;
    const params: CustomIssueParams = { kind: 'empty', example: hint };
    ctx.addIssue({ code: 'custom', message: 'empty', input: value, params });
  }, whenMap) as S;
}

/**
 * An open vocabulary: any string of the right shape is accepted (users may name codes or
 * statuses this parser has never heard of), but one that is *almost* a known word is a typo —
 * `AuthorisationFailed` would otherwise make a scenario expect an error that never comes.
 */
export function vocabulary(spec: {
  known: readonly string[];
  /** What a word is, for the message: 'error code'. */
  noun: string;
  shape: RegExp;
  /** Said when the shape is wrong: 'expected a PascalCase code such as Conflict'. */
  shapeHint: string;
  /** Words never treated as near-misses (numbered codes differ by design, not by typo). */
  typoExempt?: RegExp;
}) {
  return z.string().superRefine((word, ctx) => {
    if (spec.known.includes(word)) return;
    const suggestion = spec.typoExempt?.test(word) ? undefined : nearest(word, spec.known, 2);
    const wellShaped = spec.shape.test(word);
    if (wellShaped && suggestion === undefined) return;
    const params: CustomIssueParams = { suggestion };
    ctx.addIssue({ code: 'custom', message: wellShaped ? `not a known ${spec.noun}` : spec.shapeHint, input: word, params });
  });
}
