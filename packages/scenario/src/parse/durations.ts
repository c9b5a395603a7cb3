import { z } from 'zod';

/** A duration in milliseconds. */
export type Duration = number;

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;

// Units in descending order, each at most once: '1h30m', '2m500ms'. Backtracking lets '500ms'
// skip the minutes group even though it starts with '500m'.
const DURATION_RE = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/;

const HOW = 'expected a duration such as 500ms, 30s, 10m, 1h or 1h30m';

/**
 * The longest duration a scenario may give: 576h (24 days). A Node timer holds at most
 * 2^31-1 ms (about 24.8 days) and fires at once beyond it, so a longer `runTokenTtl`, `sleep` or
 * `waitForRun` timeout would have silently run out immediately; the platform chains long timers
 * anyway (runtime/long-timeout.ts), but no scenario needs more, and a typo like `600h` for `600s`
 * is caught here (docs/scenarios.md, "Durations").
 */
export const MAX_DURATION_MS = 576 * UNIT_MS.h;
/** The same limit in whole seconds, for keys counted in seconds (`idleSecondsBeforeScaledown`). */
export const MAX_DURATION_SECONDS = MAX_DURATION_MS / 1_000;
const MAX_TEXT = '576h (24 days)';

/** Parses '500ms', '30s', '10m', '1h', '1h30m' (whitespace between parts allowed) to milliseconds. */
export function parseDuration(text: string): Duration | undefined {
  const compact = text.replace(/\s+/g, '');
  const match = DURATION_RE.exec(compact);
  if (compact === '' || match === null) return undefined;
  const [, h, m, s, ms] = match;
  const parts: Array<[string | undefined, number]> = [
    [h, UNIT_MS.h],
    [m, UNIT_MS.m],
    [s, UNIT_MS.s],
    [ms, UNIT_MS.ms],
  ];
  return Math.round(parts.reduce((total, [amount, unit]) => total + (amount === undefined ? 0 : Number(amount) * unit), 0));
}

/**
 * A duration written with units, at most MAX_DURATION_MS. A bare number is rejected rather than
 * guessed at: '600' could mean seconds or milliseconds, and a wrong guess would silently change
 * what a scenario shows.
 */
const boundedDuration = (positive: boolean) =>
  z.unknown().transform((value, ctx): Duration => {
    if (typeof value === 'number') {
      ctx.addIssue({ code: 'custom', input: value, message: `a duration needs a unit, e.g. ${value}ms, ${value}s or ${value}m` });
      return z.NEVER;
    }
    const parsed = typeof value === 'string' ? parseDuration(value) : undefined;
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', input: value, message: HOW });
      return z.NEVER;
    }
    if (!(parsed <= MAX_DURATION_MS)) {
      ctx.addIssue({ code: 'custom', input: value, message: `a duration may be at most ${MAX_TEXT}` });
      return z.NEVER;
    }
    if (positive && parsed <= 0) {
      ctx.addIssue({ code: 'custom', input: value, message: `expected a duration longer than 0, at most ${MAX_TEXT}` });
      return z.NEVER;
    }
    return parsed;
  });

/** A duration from 0 to MAX_DURATION_MS. */
export const durationSchema = boundedDuration(false);
/** A duration above 0 (a token that lives 0 s is expired when issued), at most MAX_DURATION_MS. */
export const positiveDurationSchema = boundedDuration(true);
