/**
 * Every secret value the session has minted or been handed (tokens, keys, connection
 * strings, passwords). Used to check that none reaches the event log, and to scrub any
 * that might reach terminal output. Values are held in memory only.
 */
export class SecretRegistry {
  private readonly values = new Map<string, string>();

  add(value: string, kind: string): void {
    if (value.length >= 8) this.values.set(value, kind);
  }

  /** Kinds of the secrets found in `text` (empty when it holds none). */
  findIn(text: string): string[] {
    const found: string[] = [];
    for (const [value, kind] of this.values) if (text.includes(value)) found.push(kind);
    return found;
  }

  redact(text: string): string {
    let out = text;
    for (const [value, kind] of this.values) if (out.includes(value)) out = out.split(value).join(`[redacted ${kind}]`);
    return out;
  }

  all(): Array<{ value: string; kind: string }> {
    return [...this.values].map(([value, kind]) => ({ value, kind }));
  }
}
