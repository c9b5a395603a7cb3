import type { ActivityLogEntry } from '@amlsim/core';

/**
 * Verb-specific `expect` keys (docs/scenarios.md): each compares a step's result with what the
 * scenario says. A check returns a list of mismatches, each saying what was expected and what came.
 */
type Check = (result: unknown, expected: unknown) => string[];

type ActivityMatcher = string | { operation?: string | undefined; initiator?: string | undefined; status?: string | undefined };

const activityMatches = (m: ActivityMatcher, e: ActivityLogEntry): boolean =>
  typeof m === 'string'
    ? e.operation.toLowerCase() === m.toLowerCase()
    : (m.operation === undefined || m.operation.toLowerCase() === e.operation.toLowerCase()) &&
      (m.initiator === undefined || m.initiator === e.initiator) &&
      (m.status === undefined || m.status === e.status);

const showEntries = (entries: readonly ActivityLogEntry[]) =>
  entries.length ? entries.map((e) => `${e.operation} by ${e.initiator} (${e.status})`).join('; ') : '(empty)';

export const STEP_CHECKS: Record<string, Check> = {
  contains: (result, expected) => {
    const entries = result as ActivityLogEntry[];
    return (expected as ActivityMatcher[])
      .filter((m) => !entries.some((e) => activityMatches(m, e)))
      .map((m) => `activity log lacks ${JSON.stringify(m)}; it holds: ${showEntries(entries)}`);
  },
  lacks: (result, expected) => {
    const entries = result as ActivityLogEntry[];
    return (expected as ActivityMatcher[])
      .filter((m) => entries.some((e) => activityMatches(m, e)))
      .map((m) => `activity log contains ${JSON.stringify(m)}, which it should not`);
  },
  status: (result, expected) => {
    const r = result as { status: string; reason?: string };
    return r.status === expected ? [] : [`status: expected ${String(expected)}, got ${r.status}${r.reason ? ` (${r.reason.split('\n')[0]})` : ''}`];
  },
  reason: (result, expected) => {
    const r = result as { reason?: string };
    return r.reason?.includes(String(expected)) ? [] : [`reason: expected it to contain '${String(expected)}', got ${r.reason ? `'${r.reason}'` : 'none'}`];
  },
  httpStatus: (result, expected) => {
    const r = result as { httpStatus: number; body: unknown };
    return r.httpStatus === expected ? [] : [`httpStatus: expected ${String(expected)}, got ${r.httpStatus} (${JSON.stringify(r.body).slice(0, 200)})`];
  },
  body: (result, expected) => {
    const r = result as { body: unknown };
    return JSON.stringify(r.body) === JSON.stringify(expected) ? [] : [`body: expected ${JSON.stringify(expected)}, got ${JSON.stringify(r.body)}`];
  },
  count: (result, expected) => {
    const records = result as unknown[];
    return records.length === expected ? [] : [`count: expected ${String(expected)} records, got ${records.length}`];
  },
  fields: (result, expected) => {
    const records = result as Array<Record<string, unknown>>;
    const want = expected as Record<string, unknown>;
    const hit = records.some((r) => Object.entries(want).every(([k, v]) => r[k] === v));
    return hit ? [] : [`fields: no record has ${JSON.stringify(want)}; records: ${JSON.stringify(records.map((r) => ({ StatusCode: r.StatusCode, HTTPMethod: r.HTTPMethod, UserAgent: r.UserAgent })))}`];
  },
  statuses: (result, expected) => {
    const have = (result as { statuses: string[] }).statuses;
    const want = expected as string[];
    return JSON.stringify(have) === JSON.stringify(want) ? [] : [`statuses: expected ${want.join(' → ')}, got ${have.join(' → ')}`];
  },
  metrics: (result, expected) => {
    // getMetrics answers { metrics: {...} }; queryWorkspaceMetrics answers the counters directly.
    const r = result as Record<string, unknown>;
    const have = (r.metrics && typeof r.metrics === 'object' ? r.metrics : r) as Record<string, unknown>;
    return Object.entries(expected as Record<string, unknown>).flatMap(([name, want]) =>
      compareValue(have[name], want) ? [] : [`metric '${name}': expected ${String(want)}, got ${have[name] === undefined ? '(none)' : String(have[name])}`],
    );
  },
};

/** A number, or a comparison string: "<0.5", ">=1", "~0.9" (within 1%). */
export const compareValue = (have: unknown, want: unknown): boolean => {
  // A metric logged several times is a list: compare its latest value (what the portal shows).
  if (Array.isArray(have)) return compareValue(have.at(-1), want);
  if (typeof want === 'number') return have === want;
  if (typeof want !== 'string' || typeof have !== 'number') return have === want;
  const m = /^(<=|>=|==|!=|<|>|~|=)?\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/i.exec(want.trim());
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1]) {
    case '<':
      return have < n;
    case '<=':
      return have <= n;
    case '>':
      return have > n;
    case '>=':
      return have >= n;
    case '!=':
      return have !== n;
    case '~':
      return Math.abs(have - n) <= Math.abs(n) * 0.01;
    default:
      return have === n;
  }
};
