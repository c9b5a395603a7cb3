/**
 * Every secret value the session has minted or been handed (tokens, keys, connection
 * strings, passwords). Used to check that none reaches the event log, and to scrub any
 * that might reach terminal output. Values are held in memory only.
 *
 * A text is searched in one pass whatever the number of secrets (a scenario of many
 * sign-ins mints as many tokens, and every event is searched for all of them): each value
 * is indexed by a rolling hash of its last {@link GRAM} characters (a JWT's header is the
 * same for every token, its signature is not), the text is hashed at every position, and
 * only a value whose tail hash matches there is compared. Same answers as comparing every
 * value with `includes`, in time linear in the text.
 */
const GRAM = 8;
const BASE = 0x01000193;
/** BASE^(GRAM-1) mod 2^32: what the character leaving the window weighed. */
const TOP = (() => {
  let p = 1;
  for (let i = 1; i < GRAM; i++) p = Math.imul(p, BASE);
  return p;
})();

const gramHash = (text: string, from: number): number => {
  let h = 0;
  for (let i = from; i < from + GRAM; i++) h = (Math.imul(h, BASE) + text.charCodeAt(i)) | 0;
  return h;
};

type Entry = { value: string; kind: string; order: number };

export class SecretRegistry {
  private readonly values = new Map<string, Entry>();
  /** Tail hash -> the values ending in a window with that hash. */
  private readonly byTail = new Map<number, Entry[]>();

  add(value: string, kind: string): void {
    if (value.length < GRAM) return;
    const known = this.values.get(value);
    if (known) {
      known.kind = kind;
      return;
    }
    const entry: Entry = { value, kind, order: this.values.size };
    this.values.set(value, entry);
    const tail = gramHash(value, value.length - GRAM);
    const bucket = this.byTail.get(tail);
    if (bucket) bucket.push(entry);
    else this.byTail.set(tail, [entry]);
  }

  /** Kinds of the secrets found in `text` (empty when it holds none), one per distinct value, in the order they were added. */
  findIn(text: string): string[] {
    const found = new Set<Entry>();
    for (const m of this.occurrences(text)) found.add(m.entry);
    return [...found].sort((a, b) => a.order - b.order).map((e) => e.kind);
  }

  /** `text` with every secret value in it replaced by `[redacted <kind>]` (overlapping values are redacted as one span). */
  redact(text: string): string {
    const hits = this.occurrences(text).sort((a, b) => a.start - b.start || b.end - a.end);
    if (hits.length === 0) return text;
    let out = '';
    let at = 0;
    for (let i = 0; i < hits.length; ) {
      const { start, entry } = hits[i]!;
      let end = hits[i]!.end;
      // Merge every value overlapping this span: none may leave a piece of itself behind.
      for (i++; i < hits.length && hits[i]!.start < end; i++) end = Math.max(end, hits[i]!.end);
      out += `${text.slice(at, start)}[redacted ${entry.kind}]`;
      at = end;
    }
    return out + text.slice(at);
  }

  all(): Array<{ value: string; kind: string }> {
    return [...this.values.values()].map(({ value, kind }) => ({ value, kind }));
  }

  /** Every place a known value occurs in `text` (start inclusive, end exclusive). */
  private occurrences(text: string): Array<{ start: number; end: number; entry: Entry }> {
    const hits: Array<{ start: number; end: number; entry: Entry }> = [];
    if (this.values.size === 0 || text.length < GRAM) return hits;
    let h = gramHash(text, 0);
    for (let end = GRAM; ; end++) {
      const bucket = this.byTail.get(h);
      if (bucket) {
        for (const entry of bucket) {
          const start = end - entry.value.length;
          if (start >= 0 && text.startsWith(entry.value, start)) hits.push({ start, end, entry });
        }
      }
      if (end >= text.length) break;
      h = (Math.imul(h - Math.imul(text.charCodeAt(end - GRAM), TOP), BASE) + text.charCodeAt(end)) | 0;
    }
    return hits;
  }
}
