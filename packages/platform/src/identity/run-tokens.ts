import { errors, type SimError } from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { generateSigningKey, signingKeyFromPem, signJwt, verifyJwt, type SigningKey } from './jwt';
import type { PlatformRuntime } from '../platform-context';

/** Audience of AML run tokens: the workspace's AML service, not ARM. */
export const RUN_TOKEN_AUDIENCE = 'https://ml.azure.com/';

/**
 * `chn` binds the token to the run's control-plane channel (docs/security.md): a token that
 * leaves its channel is refused on any other, even with a valid signature and scope.
 */
export type RunTokenClaims = { iss: string; aud: string; ws: string; wsn: string; run: string; chn: string; iat: number; exp: number; jti: string };

/**
 * S1.3: AML issues compute targets a short-lived token scoped to the workspace (and here, the
 * run). Signed ES256 by the AML service's own key; the value is handed to the compute target
 * only — the log records its id, fingerprint and expiry.
 */
/** A new key for signing a session's run tokens. */
export const runTokenSigningKey = (session: string): SigningKey => generateSigningKey(`aml-run-${session}`);

/** The session's key again, from its saved PEM (identity/resumable-session.ts). */
export const runTokenSigningKeyFromPem = (session: string, pem: string): SigningKey => signingKeyFromPem(`aml-run-${session}`, pem);

/** What the run-token service uses of the platform (wired by createPlatform). */
export type RunTokenDeps = Pick<PlatformRuntime, 'clock' | 'ids' | 'secrets' | 'session'>;

export class RunTokenService {
  private readonly key: SigningKey;
  private readonly keys: Map<string, SigningKey>;
  /** Tokens whose signature verified (or that this service signed), with their claims: see `signed`. */
  private readonly verified = new Map<string, Partial<RunTokenClaims>>();

  /**
   * @param key the session's signing key: a new one, or — for a session resumed after its
   * simulator died (identity/resumable-session.ts) — the one its live runs' tokens were signed with.
   */
  constructor(
    private readonly p: RunTokenDeps,
    key: SigningKey = runTokenSigningKey(p.session),
  ) {
    this.key = key;
    this.keys = new Map([[this.key.kid, this.key]]);
  }

  issue(run: { runId: string; workspaceId: string; workspace: string; region: string }, ttlMs: number, channel: string) {
    const now = this.p.clock.now();
    const tokenId = this.p.ids.next('rtok');
    const expMs = now + ttlMs;
    const claims: RunTokenClaims = {
      iss: `https://${run.region}.api.azureml.ms/`,
      aud: RUN_TOKEN_AUDIENCE,
      ws: run.workspaceId,
      wsn: run.workspace,
      run: run.runId,
      chn: channel,
      iat: Math.floor(now / 1000),
      // Expiry in milliseconds precision matters for short TTLs in scenarios; JWT exp is seconds.
      exp: Math.ceil(expMs / 1000),
      jti: tokenId,
    };
    const token = signJwt(this.key, claims);
    this.p.secrets.add(token, 'run token');
    this.remember(token, claims);
    return { token, tokenId, fingerprint: fingerprint(token), expiresAtMs: claims.exp * 1000 };
  }

  /**
   * The claims of a token whose signature verifies (else the verification's error). A run makes
   * a handful of calls with one token; its signature is checked once, on the first, and the
   * claims kept by the token's exact text — the same bytes carry the same signature. Expiry,
   * audience and scope are still checked on every call (`verify`).
   */
  private signed(token: string): Partial<RunTokenClaims> {
    const known = this.verified.get(token);
    if (known) return known;
    const claims = verifyJwt(token, this.keys) as Partial<RunTokenClaims>;
    this.remember(token, claims);
    return claims;
  }

  private remember(token: string, claims: Partial<RunTokenClaims>): void {
    // Bounded: the oldest goes first (a Map keeps insertion order); a token it forgot is verified again.
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, claims);
  }

  /**
   * The run a genuine token names (its signature verifies), whatever its expiry or scope: what
   * the record of a refused call says about whose token was presented. Never grants anything.
   */
  runOf(token: string | undefined): string | undefined {
    if (!token) return undefined;
    try {
      const claims = verifyJwt(token, this.keys);
      return typeof claims.run === 'string' ? claims.run : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Signature, audience and expiry; then scope: the token's workspace must be the one named in
   * the call (a token of ws1 used for ws2 is AuthorizationFailed), its run the run named, and
   * its channel the channel the call came in on.
   */
  verify(token: string | undefined, target: { workspace: string; runId: string; channel: string }): RunTokenClaims {
    if (!token) throw errors.authenticationFailed('the control-plane call');
    const claims = this.signed(token);
    if (claims.aud !== RUN_TOKEN_AUDIENCE) throw errors.invalidToken(`the audience '${String(claims.aud)}' is not '${RUN_TOKEN_AUDIENCE}'`);
    if (typeof claims.exp !== 'number' || typeof claims.ws !== 'string' || typeof claims.run !== 'string' || typeof claims.jti !== 'string' || typeof claims.chn !== 'string') {
      throw errors.invalidToken('it lacks the run token claims ws, run, chn, exp, jti');
    }
    const now = this.p.clock.now();
    if (claims.exp * 1000 <= now) throw errors.expiredToken(new Date(claims.exp * 1000).toISOString(), new Date(now).toISOString());
    if (claims.wsn !== target.workspace) {
      throw scopeError(`the run token is scoped to workspace '${String(claims.wsn)}' and cannot act on workspace '${target.workspace}' (S1.3)`, claims, target);
    }
    if (claims.run !== target.runId) {
      throw scopeError(`the run token is scoped to run '${claims.run}' and cannot act on run '${target.runId}'`, claims, target);
    }
    if (claims.chn !== target.channel) {
      throw scopeError(`the run token is bound to channel '${claims.chn}' and was presented on channel '${target.channel}'`, claims, target);
    }
    return claims as RunTokenClaims;
  }
}

/** How many verified tokens are kept (a few per live run suffice). */
const VERIFIED_TOKENS_KEPT = 4096;

const scopeError = (why: string, claims: Partial<RunTokenClaims>, target: { workspace: string; runId: string }): SimError =>
  errors.authorizationFailed(`run token ${String(claims.jti)}`, 'control-plane call', `/workspaces/${target.workspace}/runs/${target.runId}`, why);
