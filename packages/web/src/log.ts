import type { StoredEvent } from '@amlsim/core';

/**
 * The page's copy of the event log (docs/server.md "Endpoints"): the backlog read in pages of
 * `GET /api/events`, then every new fact from the Server-Sent Events stream, which carries the
 * log position as its event id. A stream that drops is reopened by the browser with
 * `Last-Event-ID` (the last position it saw), and the server sends what follows it: no gap and
 * no duplicate. The page still checks both, and counts what it would have had to drop
 * (`anomalies`), so a broken contract shows instead of corrupting the views.
 *
 * Listeners are told at most once per animation frame, however many facts arrived: at 1,000
 * events a second the page renders ~60 times, never once per event.
 */
export type LogAnomalies = { duplicates: number; gaps: number };

export type ServerInfo = { dataDir: string; head: number };

const PAGE = 10_000;
/**
 * Backlog pages asked for at once. One at a time, the server reads and serializes a page while
 * the page waits, then the page parses it while the server waits; with a few in flight the two
 * overlap and the server is never idle (100,000 events, 45 MB, in headless Chromium: ~2.0 s one
 * at a time, ~1.3 s three at a time, ~1.0 s ten at a time, which is the server's own pace).
 */
const IN_FLIGHT = 6;

export class LogClient {
  readonly events: StoredEvent[] = [];
  readonly anomalies: LogAnomalies = { duplicates: 0, gaps: 0 };
  connected = false;
  /** How often the stream was (re)opened: 1 for a page that never lost it. */
  connections = 0;
  info: ServerInfo | undefined;
  /** Set when the server could not be read; shown by the page. */
  error: string | undefined;
  /**
   * True until the backlog is read: the views are drawn once, from all of it, rather than after
   * each page (a view that reads the whole log paid for it again on each of ten pages, and each
   * drawing held back the next page's parse).
   */
  loading = true;
  private readonly listeners = new Set<() => void>();
  private source: EventSource | undefined;
  private scheduled = false;

  get head(): number {
    return this.events.at(-1)?.position ?? 0;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    try {
      this.info = await getJson<ServerInfo>('/api/info');
      // Up to the head /api/info gave: fixed ranges of positions (from, from + PAGE], each of
      // which one page holds whole, IN_FLIGHT asked for at any time and taken in order.
      const range = (from: number) =>
        getJson<{ events: StoredEvent[] }>(`/api/events?from=${from}&limit=${PAGE}`).then((page) => page.events.filter((e) => e.position <= from + PAGE));
      const starts: number[] = [];
      for (let from = 0; from < this.info.head; from += PAGE) starts.push(from);
      const pages: Promise<StoredEvent[]>[] = [];
      const launch = () => {
        if (pages.length >= starts.length) return;
        const page = range(starts[pages.length]!);
        pages.push(page);
        // The next range is asked for as soon as any one is in, not when the oldest is taken:
        // the server is kept busy while the page parses. A failure is reported by the await
        // below that reaches it (and asks for nothing more).
        page.then(launch, () => undefined);
      };
      for (let k = 0; k < IN_FLIGHT; k++) launch();
      for (let i = 0; i < starts.length; i++) this.accept(await pages[i]!);
      // Then what was appended since, page after page.
      let from = this.head;
      for (;;) {
        const page = await getJson<{ events: StoredEvent[]; next: number | null }>(`/api/events?from=${from}&limit=${PAGE}`);
        this.accept(page.events);
        if (page.next === null) break;
        from = this.head;
      }
    } catch (err) {
      this.error = `could not read the log from the server: ${(err as Error).message}`;
      this.loading = false;
      this.notify();
      return;
    }
    this.loading = false;
    this.notify();
    this.open();
  }

  /** Closes the stream and opens it again from the last position seen (as a dropped stream is). */
  reconnect(): void {
    this.source?.close();
    this.open();
  }

  close(): void {
    this.source?.close();
    this.source = undefined;
  }

  private open(): void {
    // The browser itself sends Last-Event-ID when it reopens this stream after an error; the
    // URL's `from` is where this page's copy ends now.
    const source = new EventSource(`/api/events/stream?from=${this.head}`);
    this.source = source;
    source.addEventListener('fact', (message) => this.accept([JSON.parse((message as MessageEvent).data as string) as StoredEvent]));
    source.onopen = () => {
      this.connected = true;
      this.connections++;
      this.notify();
    };
    source.onerror = () => {
      this.connected = false;
      this.notify();
    };
  }

  private accept(batch: readonly StoredEvent[]): void {
    for (const e of batch) {
      const head = this.head;
      if (e.position <= head) {
        this.anomalies.duplicates++;
        continue;
      }
      if (e.position !== head + 1) this.anomalies.gaps++;
      this.events.push(e);
    }
    if (batch.length > 0) this.notify();
  }

  private notify(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const listener of this.listeners) listener();
    });
  }
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const body = (await response.json()) as T & { error?: { code: string; message: string } };
  if (!response.ok) throw new ApiError(response.status, body.error?.code ?? 'Error', body.error?.message ?? response.statusText, body);
  return body;
}

export const postJson = <T>(url: string, body?: unknown): Promise<T> =>
  getJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });

/** An answer of the server's `{ error: { code, message } }` form (docs/server.md). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(`${code}: ${message}`);
  }
}
