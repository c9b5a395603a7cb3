import { errors } from '../errors/catalog';

/** Audience of tokens for Azure Resource Manager (S1.1, S1.2). */
export const ARM_AUDIENCE = 'https://management.azure.com/';
/** ARM tokens live an hour, like Azure AD's default access-token lifetime. */
export const ARM_TOKEN_LIFETIME_MS = 60 * 60 * 1000;

export type ArmTokenClaims = {
  iss: string;
  aud: string;
  /** Object id of the principal. */
  oid: string;
  /** Tenant id. */
  tid: string;
  /** The principal's name (upn for users, app name for service principals). */
  name: string;
  /** `user` or `app`, like Azure AD's `idtyp`. */
  idtyp: 'user' | 'app';
  iat: number;
  nbf: number;
  exp: number;
  /** Authentication methods: `pwd`, plus `mfa` when a second factor was given (S1.1). */
  amr: string[];
  jti: string;
};

/**
 * The checks every call makes on a token whose signature already verified: format of the
 * claims, audience, issuer, not-before and expiry. Pure: the caller passes the time.
 */
export const checkTokenClaims = (
  claims: Record<string, unknown>,
  expected: { audience: string; issuer: string; nowMs: number },
): ArmTokenClaims => {
  for (const key of ['iss', 'aud', 'oid', 'tid', 'jti', 'name'] as const) {
    if (typeof claims[key] !== 'string') throw errors.invalidToken(`claim '${key}' is missing or not a string`);
  }
  for (const key of ['iat', 'nbf', 'exp'] as const) {
    if (typeof claims[key] !== 'number') throw errors.invalidToken(`claim '${key}' is missing or not a number`);
  }
  if (!Array.isArray(claims.amr)) throw errors.invalidToken(`claim 'amr' is missing`);
  const c = claims as ArmTokenClaims;
  if (c.aud !== expected.audience) {
    throw errors.invalidToken(`the audience '${c.aud}' is not '${expected.audience}'`);
  }
  if (c.iss !== expected.issuer) throw errors.invalidToken(`the issuer '${c.iss}' is not this directory's '${expected.issuer}'`);
  const nowSec = Math.floor(expected.nowMs / 1000);
  if (c.nbf > nowSec) throw errors.invalidToken(`the token is not valid before ${new Date(c.nbf * 1000).toISOString()}`);
  if (c.exp <= nowSec) {
    throw errors.expiredToken(new Date(c.exp * 1000).toISOString(), new Date(expected.nowMs).toISOString());
  }
  return c;
};
