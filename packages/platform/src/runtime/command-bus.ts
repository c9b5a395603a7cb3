import {
  STREAMS,
  actions,
  errors,
  type AuthorizationDecision,
  type AuthorizationEvaluation,
  type EventDataMap,
  type EventMeta,
  type EventStore,
  type EventType,
  type ExpectedVersion,
  type IdGenerator,
  type StoredEvent,
  type IdentityGrantTarget,
  type PrincipalRecord,
  type WorkspaceRecord,
  isSimError,
} from '@amlsim/core';
import type { SimClock } from './clock';

const isEvaluation = (value: unknown): value is AuthorizationEvaluation =>
  typeof value === 'object' && value !== null && Array.isArray((value as AuthorizationEvaluation).considered);

export type EventToAppend = { [K in EventType]: { type: K; data: EventDataMap[K] } }[EventType];

/**
 * One command in flight: it carries the correlation id every event it causes shares, and
 * counts what it appended, so a refused command can be recorded as exactly one
 * `CommandRejected` and nothing else (docs/architecture.md "Flow of one command").
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


/** An ARM action of the S2.2 table and its neighbours (packages/core/src/rbac/operations.ts). */
export type Action = (typeof actions)[keyof typeof actions];
const KNOWN_ACTIONS: ReadonlySet<string> = new Set(Object.values(actions));

/** One RBAC check: may the caller do `action` at `scope`? */
export type Check = { action: Action; scope: string };

/**
 * What a command acts on, found from its arguments: the scope (or scopes) its action is
 * checked at, and the workspace, when it acts in one.
 */
export type Target = { readonly scope: string | readonly string[]; readonly ws?: WorkspaceRecord };

/**
 * A command as the bus runs it, declared once: its name (as `CommandRejected` records it), the
 * call it is (as an authentication error names it), and its access rule: the RBAC action and
 * how its scope is found from the arguments, or authentication only (a command that acts in no
 * workspace, such as creating the user's own VM).
 */
export type CommandDeclaration<A, T extends Target> = {
  readonly name: string;
  readonly verb: string;
} & (
  | {
      /** The action checked at the target's scope (S2.2). */
      readonly action: Action;
      /**
       * What the command acts on, found once the caller is authenticated and before RBAC; a
       * refusal thrown here (unknown workspace, invalid argument) is recorded like any other.
       */
      readonly target: (args: A) => T;
      /** Actions needed besides `action`, checked before it (a new resource group needs the right to create one). */
      readonly requires?: (target: T) => readonly Check[];
      /**
       * S2.5: grants of the workspace identity the command goes through; one that was revoked
       * refuses the command (ManagedIdentityAccessDenied) before it does anything.
       */
      readonly identity?: T extends { ws: WorkspaceRecord } ? readonly IdentityGrantTarget[] : never;
      readonly authenticationOnly?: never;
    }
  | { readonly authenticationOnly: true; readonly action?: never }
);

/** The target of a command that acts on nothing RBAC guards (authentication only). */
export type NoTarget = { readonly scope: readonly [] };

/** A declared command (made by {@link declareCommand}, so its action is known to be one of the catalog). */
export type Command<A, T extends Target> = CommandDeclaration<A, T> & { readonly declared: true };

/** What a handler is given: the verified principal and what the command acts on (its workspace, where it has one). */
export type Caller<T> = { readonly principal: PrincipalRecord } & T;

/**
 * Declare a command. Its action must be one of the catalog's (packages/core/src/rbac/operations.ts):
 * the compiler says so for TypeScript callers; an action it does not know, or none, is refused here.
 */
export const declareCommand = <A, T extends Target = NoTarget>(declaration: CommandDeclaration<A, T>): Command<A, T> => {
  if (!/^[A-Z][A-Za-z]+$/.test(declaration.name)) throw new Error(`command name '${declaration.name}' is not PascalCase`);
  if (declaration.authenticationOnly !== true) {
    const { action, target } = declaration as { action?: unknown; target?: unknown };
    if (typeof action !== 'string' || !KNOWN_ACTIONS.has(action)) {
      throw new Error(
        `command ${declaration.name} declares ${action === undefined ? 'no RBAC action' : `the unknown action '${String(action)}'`}: ` +
          `name one of packages/core/src/rbac/operations.ts, or declare it authenticationOnly`,
      );
    }
    if (typeof target !== 'function') throw new Error(`command ${declaration.name} does not say how its scope is found from its arguments`);
  }
  return { ...declaration, declared: true } as Command<A, T>;
};

/** S2.5: how a refusal names each grant of the workspace identity. */
const GRANT_NAMES: Record<IdentityGrantTarget, string> = {
  storage: 'storage account',
  workspace: 'workspace (compute access)',
  keyVault: 'key vault',
  registry: 'registry',
  resourceGroup: 'resource group',
  keyVaultResourceGroup: 'key vault resource group',
};

/** How the bus applies RBAC's decision: refuse (`enforce`), record and let pass (`soft`), or not ask (`off`). */
export type RbacMode = 'enforce' | 'soft' | 'off';

/**
 * What the bus asks of the directory and of RBAC (ports: the runtime knows no service).
 * `verify` checks the token (signature, audience, issuer, expiry: S1.2) and names its
 * principal; `decide` is the pure S2.2 decision; `mode` the enforcement mode of the platform.
 */
export type CommandGate = {
  verify(token: string): PrincipalRecord;
  decide(who: PrincipalRecord, action: string, scope: string): AuthorizationDecision;
  mode(): RbacMode;
};

export class CommandBus {
  constructor(
    private readonly store: EventStore,
    private readonly clock: SimClock,
    private readonly session: string,
    private readonly ids: IdGenerator,
  ) {}

  private gate: CommandGate | undefined;

  /** Give the bus the directory's token check and RBAC (done once, by the composition root). */
  guardWith(gate: CommandGate): void {
    this.gate = gate;
  }

  /**
   * Run a command a caller asked for with a token: the one pipeline of docs/architecture.md
   * "Flow of one command". Authenticate the token (S1.2), find the target from
   * the arguments, authorize each check per the RBAC mode (enforce: refuse; soft: record an
   * `AuthorizationViolationRecorded` and go on; off: let be, S2.2), refuse a command whose
   * workspace identity lost a grant it needs (S2.5), then hand the handler the verified
   * principal and the target. Any refusal is recorded as one `CommandRejected`, as in {@link run}.
   */
  async execute<A, T extends Target, R>(
    command: Command<A, T>,
    token: string | undefined,
    args: A,
    handler: (ctx: CommandContext, caller: Caller<T>) => Promise<R> | R,
  ): Promise<R> {
    const gate = this.gate;
    if (!gate) throw new Error(`the command bus has no gate: ${command.name} cannot be authenticated (guardWith was not called)`);
    return this.run(command.name, async (ctx) => {
      if (!token) throw errors.authenticationFailed(command.verb);
      const principal = gate.verify(token);
      ctx.principal = principal.principal;
      if (command.authenticationOnly) return handler(ctx, { principal, scope: [] } as unknown as Caller<T>);
      const target = command.target(args);
      const scopes = typeof target.scope === 'string' ? [target.scope] : target.scope;
      for (const check of [...(command.requires?.(target) ?? []), ...scopes.map((scope) => ({ action: command.action, scope }))]) {
        this.authorize(ctx, gate, principal, check);
      }
      const ws = target.ws;
      for (const grant of (command.identity ?? []) as readonly IdentityGrantTarget[]) {
        if (ws?.revoked.includes(grant)) throw errors.managedIdentityAccessDenied(ws.workspace, GRANT_NAMES[grant], command.verb);
      }
      return handler(ctx, { ...target, principal });
    });
  }

  /** S2.2: the principal may do the action at the scope, per the enforcement mode. */
  private authorize(ctx: CommandContext, gate: CommandGate, who: PrincipalRecord, { action, scope }: Check): void {
    const mode = gate.mode();
    if (mode === 'off') return;
    const decision = gate.decide(who, action, scope);
    if (decision.allowed) return;
    if (mode === 'soft') {
      ctx.emit(STREAMS.rejections(this.session), 'any', [
        { type: 'AuthorizationViolationRecorded', data: { principal: who.principal, action, scope, why: decision.why, mode: 'soft' } },
      ]);
      return;
    }
    throw errors.authorizationFailed(who.principal, action, scope, decision.why, decision.evaluation);
  }

  /** A context for facts no command caused directly (a scoring request seen by App Insights). */
  context(command: string): CommandContext {
    return new CommandContext(command, this.ids.next('cmd'), this.store, this.clock, this.session);
  }

  /**
   * Run a command that presents no token: the directory's own (creating the tenant, signing
   * in) and the platform's (sweeps, clock, faults). A caller's command goes through
   * {@link execute}. A SimError thrown before the command appended anything is a refusal:
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
              // The RBAC evaluation behind an AuthorizationFailed: which assignments were weighed
              // and what decided (the dashboard explains a refused call with it).
              ...(isEvaluation(details.evaluation) ? { evaluation: details.evaluation } : {}),
            },
          },
        ]);
      }
      throw error;
    }
  }
}
