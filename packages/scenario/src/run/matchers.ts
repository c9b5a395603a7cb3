import type { StoredEvent } from '@amlsim/core';

import type { EventMatcher } from '../parse';
export type { EventMatcher };

/**
 * docs/scenarios.md: a matcher matches an event whose `type` equals and whose data has each other
 * key. Keys use the scenario's names: `principal` also matches who acted (meta.principal),
 * and a value that is a step id (`run: r1`) also matches what that step made.
 */
export const matches = (m: EventMatcher, e: StoredEvent, aliases: Readonly<Record<string, string>> = {}): boolean => {
  if (m.type !== e.type) return false;
  for (const [key, want] of Object.entries(m)) {
    if (key === 'type') continue;
    const candidates = [e.data[key], e.data[`${key}Id`]];
    if (key === 'principal') candidates.push(e.meta.principal);
    const alias = typeof want === 'string' ? aliases[want] : undefined;
    // A list in the payload (e.g. amr) matches when it holds the wanted value.
    const hit = (have: unknown) => have === want || (alias !== undefined && have === alias) || (Array.isArray(have) && have.includes(want));
    if (!candidates.some(hit)) return false;
  }
  return true;
};

export const describeMatcher = (m: EventMatcher): string =>
  `{ ${Object.entries(m)
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(', ')} }`;

/**
 * `expect.order`: the matchers match events in this relative order. Greedy earliest match
 * is optimal for a subsequence check. Returns the index of the first matcher that could
 * not be placed, or -1 when all were.
 */
export const checkOrder = (
  matchers: readonly EventMatcher[],
  events: readonly StoredEvent[],
  aliases: Readonly<Record<string, string>>,
): { failedAt: number; after?: StoredEvent; matched: StoredEvent[] } => {
  let from = 0;
  const matched: StoredEvent[] = [];
  for (let i = 0; i < matchers.length; i++) {
    // From the last match on, not from the start: one pass over the events for all matchers.
    let idx = -1;
    for (let j = from; j < events.length; j++) {
      if (matches(matchers[i]!, events[j]!, aliases)) {
        idx = j;
        break;
      }
    }
    if (idx < 0) return { failedAt: i, ...(matched.at(-1) ? { after: matched.at(-1)! } : {}), matched };
    matched.push(events[idx]!);
    from = idx + 1;
  }
  return { failedAt: -1, matched };
};
