import { distance } from 'fastest-levenshtein';

/**
 * The candidate nearest to `input` (case-insensitive Levenshtein), if it is near enough to be
 * a plausible typo: distance ≤ 2, or ≤ a third of the input's length for long names.
 * Returns undefined for an exact match (nothing to suggest) or when nothing is near.
 */
export function nearest(input: string, candidates: Iterable<string>, maxDistance?: number): string | undefined {
  const needle = input.toLowerCase();
  const limit = maxDistance ?? Math.max(2, Math.floor(input.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === input) return undefined;
    const d = distance(needle, candidate.toLowerCase());
    // A distance as large as the input itself means "replace everything": no resemblance.
    if (d <= limit && d < Math.max(input.length, 1) && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** `; did you mean 'x'?` or nothing, ready to append to a message. */
export function didYouMean(suggestion: string | undefined): string {
  return suggestion === undefined ? '' : `; did you mean '${suggestion}'?`;
}

/** `; allowed: a, b, c` or nothing, ready to append to a message. */
export function allowedList(allowed: readonly string[] | undefined): string {
  return allowed === undefined || allowed.length === 0 ? '' : `; allowed: ${allowed.join(', ')}`;
}
