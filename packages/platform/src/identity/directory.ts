import {
  ARM_AUDIENCE,
  ARM_TOKEN_LIFETIME_MS,
  errors,
  checkTokenClaims,
  type PrincipalRecord,
} from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { generateSigningKey, signJwt, verifyJwt, type SigningKey } from './jwt';
import { guid } from '../runtime/ids';
import type { CommandContext } from '../runtime/command-bus';
import { streams, type PlatformRuntime } from '../platform-context';

export type TenantConfig = {
  mfa: 'required' | 'optional';
  principals: Record<string, { kind: 'user' | 'servicePrincipal' }>;
  subscriptions: Record<string, { owners: string[] }>;
};

/** What the AAD directory uses of the platform (wired by createPlatform). */
export type DirectoryDeps = Pick<PlatformRuntime, 'bus' | 'clock' | 'ids' | 'secrets' | 'session' | 'world'>;

/**
 * The simulated Azure AD directory (S1.1, S1.2): principals, sign-in with the MFA policy,
 * and ARM access tokens that are real ES256 JWTs, verified on every call.
 */
export class DirectoryService {
  private readonly keys = new Map<string, SigningKey>();
  private readonly signingKey: SigningKey;
  readonly tenantId = guid();
  readonly issuer = `https://sts.windows.net/${this.tenantId}/`;

  constructor(private readonly p: DirectoryDeps) {
    this.signingKey = generateSigningKey(`kid-${this.tenantId.slice(0, 8)}`);
    this.keys.set(this.signingKey.kid, this.signingKey);
  }

  get tenantStream(): string {
    return streams.tenant(this.tenantId);
  }

  /** Create the directory, its principals and subscriptions (with their Owners). */
  async bootstrap(config: TenantConfig): Promise<void> {
    await this.p.bus.run('CreateTenant', (ctx) => {
      const principals = Object.entries(config.principals).map(([principal, { kind }]) => ({
        principal,
        principalId: guid(),
        kind,
      }));
      ctx.emit(this.tenantStream, 'no-stream', [
        { type: 'TenantCreated', data: { tenantId: this.tenantId, mfa: config.mfa, issuer: this.issuer } },
        ...principals.map((pr) => ({ type: 'PrincipalRegistered' as const, data: { tenantId: this.tenantId, ...pr } })),
      ]);
      for (const [subscription, { owners }] of Object.entries(config.subscriptions)) {
        const scope = `/subscriptions/${subscription}`;
        ctx.emit(streams.subscription(this.p.session, subscription), 'no-stream', [
          { type: 'SubscriptionCreated', data: { subscription, scope, owners } },
          ...owners.map((owner) => {
            const rec = this.principalByName(owner);
            return {
              type: 'RoleAssigned' as const,
              data: { assignmentId: this.p.ids.next('ra'), principal: owner, principalId: rec.principalId, role: 'Owner', scope },
            };
          }),
        ]);
      }
    });
  }

  /** Register a platform-made principal (managed identity, support application). */
  registerPrincipal(ctx: CommandContext, principal: string, kind: 'managedIdentity' | 'application'): PrincipalRecord {
    const rec = { principal, principalId: guid(), kind };
    ctx.emitAsPlatform(this.tenantStream, 'any', [{ type: 'PrincipalRegistered', data: { tenantId: this.tenantId, ...rec } }]);
    return rec;
  }

  principalByName(principal: string): PrincipalRecord {
    const rec = this.p.world.directory.byName[principal];
    if (!rec) throw errors.unknownPrincipal(principal, Object.keys(this.p.world.directory.byName));
    return rec;
  }

  /** S1.1: sign in and get an ARM token. Without the second factor where MFA is required: AADSTS50076. */
  async signIn(principal: string, options: { mfa: boolean }): Promise<string> {
    return this.p.bus.run('SignIn', (ctx) => {
      const rec = this.principalByName(principal);
      ctx.principal = principal;
      // Service principals authenticate with a secret or certificate; MFA policies apply to users.
      if (this.p.world.directory.mfa === 'required' && rec.kind === 'user' && !options.mfa) {
        const error = errors.mfaRequired(principal);
        ctx.emit(this.tenantStream, 'any', [{ type: 'SignInFailed', data: { principal, code: error.code, reason: error.message } }]);
        throw error;
      }
      const amr = rec.kind === 'user' ? (options.mfa ? ['pwd', 'mfa'] : ['pwd']) : ['client_secret'];
      const nowMs = this.p.clock.now();
      const iat = Math.floor(nowMs / 1000);
      const exp = Math.floor((nowMs + ARM_TOKEN_LIFETIME_MS) / 1000);
      const jti = this.p.ids.next('tok');
      const token = signJwt(this.signingKey, {
        iss: this.issuer,
        aud: ARM_AUDIENCE,
        oid: rec.principalId,
        tid: this.tenantId,
        name: principal,
        idtyp: rec.kind === 'user' ? 'user' : 'app',
        iat,
        nbf: iat,
        exp,
        amr,
        jti,
      });
      this.p.secrets.add(token, 'ARM token');
      ctx.emit(this.tenantStream, 'any', [
        { type: 'SignInSucceeded', data: { principal, principalId: rec.principalId, amr } },
        {
          type: 'ArmTokenIssued',
          data: {
            principal,
            principalId: rec.principalId,
            tokenId: jti,
            fingerprint: fingerprint(token),
            audience: ARM_AUDIENCE,
            expiresAt: new Date(exp * 1000).toISOString(),
          },
        },
      ]);
      return token;
    });
  }

  /**
   * S1.2: every call presents its token; signature, audience, issuer and expiry are checked, and
   * the principal it names must be one of this directory's. The command bus calls this for every
   * command (runtime/command-bus.ts `execute`); no service checks a token itself.
   */
  verifyToken(token: string): PrincipalRecord {
    const claims = checkTokenClaims(verifyJwt(token, this.keys), {
      audience: ARM_AUDIENCE,
      issuer: this.issuer,
      nowMs: this.p.clock.now(),
    });
    const rec = this.p.world.directory.byId[claims.oid];
    if (!rec || claims.tid !== this.tenantId) throw errors.invalidToken('the token names a principal this directory does not know');
    return rec;
  }
}
