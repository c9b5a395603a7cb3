import {
  STREAMS,
  type EventDataMap,
  type EventMeta,
  type EventStore,
  type EventType,
  type ExpectedVersion,
  type IdGenerator,
  type StoredEvent,
  isSimError,
} from '@amlsim/core';
import type { SimClock } from './clock';

export type EventToAppend = { [K in EventType]: { type: K; data: EventDataMap[K] } }[EventType];

/**
 * One command in flight: it carries the correlation id every event it causes shares, and
 * counts what it appended, so a refused command can be recorded as exactly one
 * `CommandRejected` and nothing else (ARCHITECTURE.md "Flow of one command").
 */
export class CommandContext {
  /** Set once the caller's token verified: events then name who acted. */
  principal: string | undefined;
  private appended = 0;

  constructor(
    readonly command: string,
    readonly correlationId: string,
    private readonly store: EventStore,
    private readonly clock: SimClock,
    private readonly session: string,
  ) {}

  get appendedCount(): number {
    return this.appended;
  }

  /**
   * Append facts to one stream (optimistic concurrency on `expectedVersion`). `caller` names the
   * control-plane channel and run token of the call that reported them, when one did (S1.3).
   */
  emit(stream: string, expectedVersion: ExpectedVersion, events: EventToAppend[], caller?: Pick<EventMeta, 'channel' | 'tokenId'>): StoredEvent[] {
    const result = this.store.append(
      stream,
      expectedVersion,
      events.map((e) => {
        const envelope = this.envelope(e, this.correlationId);
        return caller ? { ...envelope, meta: { ...envelope.meta, ...caller } } : envelope;
      }),
    );
    this.appended += result.events.length;
    return result.events;
  }

  /** Append facts the platform did on its own account (no user initiated them: S2.6 support apps, S2.5 grants). */
  emitAsPlatform(stream: string, expectedVersion: ExpectedVersion, events: EventToAppend[]): StoredEvent[] {
    const result = this.store.append(
      stream,
      expectedVersion,
      events.map((e) => {
        const { principal: _initiator, ...meta } = this.envelope(e, this.correlationId).meta;
        return { type: e.type, data: e.data as unknown as Record<string, unknown>, meta };
      }),
    );
    this.appended += result.events.length;
    return result.events;
  }

  /** Append facts to several streams in one transaction. */
  emitMany(appends: Array<{ stream: string; expectedVersion: ExpectedVersion; events: EventToAppend[] }>): StoredEvent[] {
    const result = this.store.appendMany(
      appends.map((a) => ({ stream: a.stream, expectedVersion: a.expectedVersion, events: a.events.map((e) => this.envelope(e, this.correlationId)) })),
    );
    this.appended += result.events.length;
    return result.events;
  }

  private envelope(e: EventToAppend, causationId: string) {
    return {
      type: e.type,
      data: e.data as unknown as Record<string, unknown>,
      meta: {
        at: new Date(this.clock.now()).toISOString(),
        ...(this.principal ? { principal: this.principal } : {}),
        correlationId: this.correlationId,
        causationId,
        session: this.session,
      },
    };
  }
}

export class CommandBus {
  constructor(
    private readonly store: EventStore,
    private readonly clock: SimClock,
    private readonly session: string,
    private readonly ids: IdGenerator,
  ) {}

  /** A context for facts no command caused directly (a scoring request seen by App Insights). */
  context(command: string): CommandContext {
    return new CommandContext(command, this.ids.next('cmd'), this.store, this.clock, this.session);
  }

  /**
   * Run a command. A SimError thrown before the command appended anything is a refusal:
   * it is recorded as `CommandRejected { code, reason }` (a lesson shows refusals too) and
   * rethrown. An error after events were appended is a failure those events already tell.
   */
  async run<T>(command: string, fn: (ctx: CommandContext) => Promise<T> | T): Promise<T> {
    const ctx = new CommandContext(command, this.ids.next('cmd'), this.store, this.clock, this.session);
    try {
      return await fn(ctx);
    } catch (error) {
      if (isSimError(error) && ctx.appendedCount === 0) {
        const details = error.details;
        ctx.emit(STREAMS.rejections(this.session), 'any', [
          {
            type: 'CommandRejected',
            data: {
              command,
              code: error.code,
              reason: error.message,
              ...(ctx.principal ? { principal: ctx.principal } : {}),
              ...(typeof details.scope === 'string' ? { scope: details.scope } : {}),
              ...(typeof details.action === 'string' ? { action: details.action } : {}),
            },
          },
        ]);
      }
      throw error;
    }
  }
}
