import {
  ARM_AUDIENCE,
  ARM_TOKEN_LIFETIME_MS,
  errors,
  checkTokenClaims,
  type PrincipalRecord,
  type SimError,
} from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { generateSigningKey, signJwt, verifyJwt, type SigningKey } from './jwt';
import { guid } from '../runtime/ids';
import type { CommandContext } from '../runtime/command-bus';
import { hashPassword, verifyPassword } from '../crypto/password-hash';
import { PLATFORM_PRINCIPAL, streams, type DataPlane, type PlatformRuntime } from '../platform-context';

/**
 * A principal of the tenant. A service principal may carry a client secret and an `appId` (its
 * client id; default: its name), a user a password: what the token endpoint checks (client
 * credentials, resource-owner password). Neither secret is kept but as a salted hash in the
 * directory's own encrypted vault, nor ever logged.
 */
export type TenantPrincipal = { kind: 'user' | 'servicePrincipal'; appId?: string; clientSecret?: string; password?: string };

export type TenantConfig = {
  mfa: 'required' | 'optional';
  principals: Record<string, TenantPrincipal>;
  subscriptions: Record<string, { owners: string[] }>;
};

/** How a token was asked for: the scenario runner's `signIn`, or a grant of the OAuth 2.0 token endpoint. */
export type SignInVia = 'signIn' | 'client_credentials' | 'password';

/** What the AAD directory uses of the platform (wired by createPlatform). */
export type DirectoryDeps = Pick<PlatformRuntime, 'bus' | 'clock' | 'ids' | 'secrets' | 'session' | 'world'> & Pick<DataPlane, 'vaults'>;

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

  /** The public half of the key that signs ARM tokens, as a JWK (what the authority's jwks_uri serves). */
  publicJwk(): Record<string, unknown> {
    return { ...this.signingKey.publicKey.export({ format: 'jwk' }), kid: this.signingKey.kid, use: 'sig', alg: 'ES256' };
  }

  /** The directory's own vault: the hashes of its principals' client secrets and passwords. */
  private get credentialVault(): string {
    return `aad-${this.tenantId.slice(0, 8)}`;
  }

  /** Create the directory, its principals and subscriptions (with their Owners). */
  async bootstrap(config: TenantConfig): Promise<void> {
    await this.p.bus.run('CreateTenant', (ctx) => {
      const principals = Object.entries(config.principals).map(([principal, { kind, appId, clientSecret, password }]) => {
        const credential = kind === 'servicePrincipal' ? clientSecret : password;
        return {
          principal,
          principalId: guid(),
          kind,
          ...(kind === 'servicePrincipal' ? { appId: appId ?? principal } : {}),
          ...(credential !== undefined ? { credential: kind === 'servicePrincipal' ? ('clientSecret' as const) : ('password' as const) } : {}),
        };
      });
      this.storeCredentials(config);
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

  /** Each secret of the tenant file goes into the directory's vault as a salted hash, and into the redaction list. */
  private storeCredentials(config: TenantConfig): void {
    const withSecrets = Object.entries(config.principals).filter(([, p]) => (p.kind === 'servicePrincipal' ? p.clientSecret : p.password) !== undefined);
    if (withSecrets.length === 0) return;
    const vaults = this.p.vaults;
    if (!vaults.exists(this.credentialVault)) vaults.create(this.credentialVault, `/tenants/${this.tenantId}`);
    for (const [principal, p] of withSecrets) {
      const secret = (p.kind === 'servicePrincipal' ? p.clientSecret : p.password)!;
      this.p.secrets.add(secret, p.kind === 'servicePrincipal' ? 'client secret' : 'password');
      vaults.setSecret(PLATFORM_PRINCIPAL, this.credentialVault, `credential-${principal}`, hashPassword(secret));
    }
  }

  /** Whether `secret` is the credential the tenant file gave `principal` (never true when it gave none). */
  private credentialMatches(principal: string, secret: string): boolean {
    if (!this.p.vaults.exists(this.credentialVault)) return false;
    let hash: string;
    try {
      hash = this.p.vaults.getSecret(PLATFORM_PRINCIPAL, this.credentialVault, `credential-${principal}`);
    } catch {
      return false;
    }
    return verifyPassword(secret, hash);
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
      if (this.p.world.directory.mfa === 'required' && rec.kind === 'user' && !options.mfa) this.refuse(ctx, principal, errors.mfaRequired(principal), 'signIn');
      return this.issue(ctx, rec, rec.kind === 'user' ? (options.mfa ? ['pwd', 'mfa'] : ['pwd']) : ['client_secret'], 'signIn');
    });
  }

  /**
   * The OAuth 2.0 client-credentials grant (S1.1): a service principal, named by its client id
   * (its `appId`, else its name), presents its client secret. A wrong or missing secret is
   * AADSTS7000215, an unknown client AADSTS700016, as Azure AD answers.
   */
  async signInWithClientSecret(clientId: string, secret: string): Promise<{ token: string; expiresInS: number }> {
    return this.p.bus.run('SignIn', (ctx) => {
      const rec = this.principalByClientId(clientId);
      if (!rec) this.refuse(ctx, clientId, errors.unknownClient(clientId, this.tenantId), 'client_credentials');
      ctx.principal = rec.principal;
      if (!this.credentialMatches(rec.principal, secret)) this.refuse(ctx, rec.principal, errors.invalidClientSecret(clientId), 'client_credentials');
      return { token: this.issue(ctx, rec, ['client_secret'], 'client_credentials'), expiresInS: Math.floor(ARM_TOKEN_LIFETIME_MS / 1000) };
    });
  }

  /**
   * The OAuth 2.0 resource-owner password grant (S1.1): a user presents a password. It carries
   * no second factor, so where the tenant requires MFA it is refused with AADSTS50076 as Azure
   * AD refuses it; a wrong password (or an unknown user) is AADSTS50126.
   */
  async signInWithPassword(username: string, password: string): Promise<{ token: string; expiresInS: number }> {
    return this.p.bus.run('SignIn', (ctx) => {
      const rec = this.p.world.directory.byName[username];
      ctx.principal = username;
      if (!rec || rec.kind !== 'user' || !this.credentialMatches(rec.principal, password)) this.refuse(ctx, username, errors.invalidUserCredentials(username), 'password');
      if (this.p.world.directory.mfa === 'required') this.refuse(ctx, username, errors.mfaRequired(username), 'password');
      return { token: this.issue(ctx, rec, ['pwd'], 'password'), expiresInS: Math.floor(ARM_TOKEN_LIFETIME_MS / 1000) };
    });
  }

  /** A service principal by its client id: its appId, or (none given) its name. */
  private principalByClientId(clientId: string): PrincipalRecord | undefined {
    const byApp = this.p.world.directory.byAppId?.[clientId];
    if (byApp) return byApp;
    const rec = this.p.world.directory.byName[clientId];
    return rec && rec.kind === 'servicePrincipal' && !rec.appId ? rec : undefined;
  }

  /** A refused sign-in is a fact (SignInFailed, with how it was asked for), then the error. */
  private refuse(ctx: CommandContext, principal: string, error: SimError, via: SignInVia): never {
    ctx.emit(this.tenantStream, 'any', [{ type: 'SignInFailed', data: { principal, code: error.code, reason: error.message, via } }]);
    throw error;
  }

  /** Mint the ARM token of a sign-in; only its fingerprint is recorded. */
  private issue(ctx: CommandContext, rec: PrincipalRecord, amr: string[], via: SignInVia): string {
    const nowMs = this.p.clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.floor((nowMs + ARM_TOKEN_LIFETIME_MS) / 1000);
    const jti = this.p.ids.next('tok');
    const token = signJwt(this.signingKey, {
      iss: this.issuer,
      aud: ARM_AUDIENCE,
      oid: rec.principalId,
      tid: this.tenantId,
      name: rec.principal,
      ...(rec.appId ? { appid: rec.appId } : {}),
      idtyp: rec.kind === 'user' ? 'user' : 'app',
      iat,
      nbf: iat,
      exp,
      amr,
      jti,
    });
    this.p.secrets.add(token, 'ARM token');
    ctx.emit(this.tenantStream, 'any', [
      { type: 'SignInSucceeded', data: { principal: rec.principal, principalId: rec.principalId, amr, via } },
      {
        type: 'ArmTokenIssued',
        data: {
          principal: rec.principal,
          principalId: rec.principalId,
          tokenId: jti,
          fingerprint: fingerprint(token),
          audience: ARM_AUDIENCE,
          expiresAt: new Date(exp * 1000).toISOString(),
        },
      },
    ]);
    return token;
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
