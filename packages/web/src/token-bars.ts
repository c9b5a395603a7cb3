import type { StoredEvent } from '@amlsim/core';

/**
 * Tokens on a time axis (the Tokens tab, packages/web/src/views/tokens.tsx), derived from the
 * events alone so the tab rebuilds at any point of the slider.
 *
 * One bar per token the log shows issued: ARM tokens (ArmTokenIssued, S1.1/S1.2), run tokens
 * (RunTokenIssued, S1.3) and web-service tokens (ServiceTokenIssued, S1.6). The log holds no
 * token value (docs/events.md): a bar is named by the token's fingerprint.
 *
 * A bar ends at the fact that ended the token (RunTokenRevoked, RunTokenExpired, or RunResumed
 * naming it as `replacedToken`: its value died with the simulator), or at its `expiresAt` once
 * the shown time has passed it (ARM and service tokens expire by the clock, not by a fact).
 *
 * Uses, one tick each:
 * - run tokens: every fact that carries the token in `meta.tokenId` (a control-plane call the
 *   platform verified it on, packages/core/src/events/envelope.ts). A `RunCallRefused` records
 *   no token id; it is put on the token of `tokenRun` when the refused call presented another
 *   run's genuine token, else on the run's own token current then, and marked `inferred`.
 * - ARM tokens: the log records which principal made a call, not which token it presented
 *   (the command bus checks one on every command, packages/platform/src/identity/directory.ts).
 *   A command (the events of one correlation id) made by a principal is put on that principal's
 *   newest ARM token issued before it, and marked `inferred`; a refused one (CommandRejected) is red.
 * - service tokens: a scoring request of a token-auth service (ScoringRequestRecorded) is put on
 *   that service's newest token issued before it, `inferred`; an answer of 401 is red.
 */
export type TokenKind = 'arm' | 'run' | 'service';
export type TokenState = 'live' | 'revoked' | 'expired';

export type TokenTick = {
  /** Log position of the event the tick stands for (a click selects it). */
  position: number;
  /** Milliseconds since the epoch, from the event's `meta.at`. */
  at: number;
  /** Accepted (true) or refused (false). */
  ok: boolean;
  type: string;
  /** What the call was, for the tick's title. */
  label: string;
  /** True when the log does not name the token and the tick was attributed (see above). */
  inferred: boolean;
};

export type TokenBar = {
  tokenId: string;
  fingerprint: string;
  kind: TokenKind;
  /** Whose it is: the principal (ARM), the run id (run) or the service (service). */
  owner: string;
  issuedAt: number;
  issuedPosition: number;
  expiresAt: number;
  /** Service tokens: when the holder should get a new one (S1.6). */
  refreshBy?: number;
  /** Where the bar ends on the axis: the ending fact's time, expiresAt, or undefined (still live). */
  endedAt?: number;
  /** The fact that ended it (revoked, expired by a fact, or replaced), when one did. */
  endedBy?: { position: number; type: string };
  state: TokenState;
  ticks: TokenTick[];
};

export type TokenAxis = { bars: TokenBar[]; start: number; now: number };

const ms = (iso: unknown): number => (typeof iso === 'string' ? Date.parse(iso) : Number.NaN);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The tokens of the first `count` events of a session, with their uses, on the session's time axis. */
export function tokenBars(events: readonly StoredEvent[], count: number = events.length): TokenAxis {
  const shown = events.slice(0, Math.max(0, Math.min(count, events.length)));
  const bars: TokenBar[] = [];
  const byId = new Map<string, TokenBar>();
  // Newest token first-looked-up: per principal (ARM), per run (run), per service id (service).
  const armOf = new Map<string, TokenBar>();
  const runOf = new Map<string, TokenBar>();
  const serviceOf = new Map<string, TokenBar>();
  const tokenAuthServices = new Set<string>();
  const armCorrelations = new Set<string>();
  const signInCorrelations = new Set<string>();

  const issue = (e: StoredEvent, kind: TokenKind, owner: string, refreshBy?: string): TokenBar | undefined => {
    const tokenId = str(e.data['tokenId']);
    if (!tokenId) return undefined;
    const bar: TokenBar = {
      tokenId,
      fingerprint: str(e.data['fingerprint']) ?? tokenId,
      kind,
      owner,
      issuedAt: ms(e.meta.at),
      issuedPosition: e.position,
      expiresAt: ms(e.data['expiresAt']),
      state: 'live',
      ticks: [],
    };
    if (refreshBy) bar.refreshBy = ms(refreshBy);
    bars.push(bar);
    byId.set(tokenId, bar);
    return bar;
  };
  const end = (bar: TokenBar | undefined, e: StoredEvent, state: Exclude<TokenState, 'live'>): void => {
    if (!bar || bar.endedBy) return;
    bar.state = state;
    bar.endedAt = ms(e.meta.at);
    bar.endedBy = { position: e.position, type: e.type };
  };
  const tick = (bar: TokenBar | undefined, e: StoredEvent, ok: boolean, label: string, inferred: boolean): void => {
    bar?.ticks.push({ position: e.position, at: ms(e.meta.at), ok, type: e.type, label, inferred });
  };

  for (const e of shown) {
    const d = e.data;
    switch (e.type) {
      case 'ArmTokenIssued': {
        const principal = str(d['principal']) ?? '?';
        const bar = issue(e, 'arm', principal);
        if (bar) armOf.set(principal, bar);
        signInCorrelations.add(e.meta.correlationId);
        continue;
      }
      case 'RunTokenIssued': {
        const runId = str(d['runId']) ?? '?';
        const bar = issue(e, 'run', runId);
        if (bar) runOf.set(runId, bar);
        continue;
      }
      case 'ServiceTokenIssued': {
        const bar = issue(e, 'service', str(d['service']) ?? '?', str(d['refreshBy']));
        const serviceId = str(d['serviceId']);
        if (bar && serviceId) serviceOf.set(serviceId, bar);
        break; // getToken is itself a call made with an ARM token
      }
      // The platform's and the clock's own facts: never a call anyone made.
      case 'RunTokenRevoked':
        end(byId.get(str(d['tokenId']) ?? ''), e, 'revoked');
        continue;
      case 'RunTokenExpired':
        end(byId.get(str(d['tokenId']) ?? ''), e, 'expired');
        continue;
      case 'RunResumed': {
        const replaced = str(d['replacedToken']);
        if (replaced) end(byId.get(replaced), e, 'revoked');
        continue;
      }
      case 'ServiceTokenRefreshDue':
        continue;
      case 'WebserviceDeploymentRequested':
        if (d['tokenAuthEnabled'] === true && str(d['serviceId'])) tokenAuthServices.add(str(d['serviceId'])!);
        break;
      case 'ScoringRequestRecorded': {
        const serviceId = str(d['serviceId']) ?? '';
        if (!tokenAuthServices.has(serviceId)) continue;
        const status = Number(d['StatusCode']);
        tick(serviceOf.get(serviceId), e, status !== 401 && status !== 403, `${str(d['HTTPMethod']) ?? ''} ${str(d['RequestUrl']) ?? ''} → ${status}`, true);
        continue;
      }
      case 'RunCallRefused': {
        const byToken = str(e.meta.tokenId);
        const tokenRun = str(d['tokenRun']);
        const bar = byToken ? byId.get(byToken) : runOf.get(tokenRun ?? str(d['runId']) ?? '');
        tick(bar, e, false, `${str(d['call']) ?? 'call'} refused: ${str(d['code']) ?? ''}`, !byToken);
        continue;
      }
      case 'CommandRejected': {
        const principal = e.meta.principal ?? str(d['principal']);
        if (principal) tick(armOf.get(principal), e, false, `${str(d['command']) ?? 'command'} refused: ${str(d['code']) ?? ''}`, true);
        armCorrelations.add(e.meta.correlationId);
        continue;
      }
    }
    if (e.meta.tokenId) {
      tick(byId.get(e.meta.tokenId), e, true, e.type, false);
      continue;
    }
    // The first event of a command a principal made: one accepted ARM call.
    const principal = e.meta.principal;
    if (principal && !signInCorrelations.has(e.meta.correlationId) && !armCorrelations.has(e.meta.correlationId)) {
      armCorrelations.add(e.meta.correlationId);
      const bar = armOf.get(principal);
      if (bar && (Number.isNaN(bar.expiresAt) || ms(e.meta.at) < bar.expiresAt)) tick(bar, e, true, e.type, true);
    }
  }

  const start = shown.length > 0 ? ms(shown[0]!.meta.at) : 0;
  const now = shown.length > 0 ? ms(shown.at(-1)!.meta.at) : 0;
  for (const bar of bars) {
    if (bar.state === 'live' && bar.expiresAt <= now) {
      bar.state = 'expired';
      bar.endedAt = bar.expiresAt;
    }
  }
  return { bars, start, now };
}

/** Where a time falls on an axis of `width` from `start` to `end`, clamped to it. */
export const xOf = (t: number, start: number, end: number, width: number): number => {
  if (!(end > start)) return 0;
  return Math.max(0, Math.min(width, ((t - start) / (end - start)) * width));
};

/**
 * Ticks closer than `gap` pixels would cover one another (a run's calls come milliseconds
 * apart), and a covered tick cannot be clicked: each is set at least `gap` after the one before,
 * then pulled back from the right end. `xs` are in time order; the result keeps that order.
 */
export const dodge = (xs: readonly number[], gap: number, width: number): number[] => {
  const out = [...xs];
  for (let i = 1; i < out.length; i++) out[i] = Math.max(out[i]!, out[i - 1]! + gap);
  for (let i = out.length - 1; i >= 0; i--) {
    const limit = i === out.length - 1 ? width : out[i + 1]! - gap;
    if (out[i]! > limit) out[i] = limit;
  }
  return out.map((x) => Math.max(0, x));
};
