import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { errors } from '@amlsim/core';

/**
 * Real signed JWTs (ES256 over P-256, as Azure AD signs with asymmetric keys) built on
 * node:crypto alone. Verification checks format, algorithm, key id and signature; the
 * claim rules (audience, expiry) live in the pure core (`checkTokenClaims`).
 */
export type SigningKey = { kid: string; privateKey: KeyObject; publicKey: KeyObject };

export const generateSigningKey = (kid: string): SigningKey => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, publicKey };
};

export const signingKeyFromPem = (kid: string, privatePem: string): SigningKey => {
  const privateKey = createPrivateKey(privatePem);
  return { kid, privateKey, publicKey: createPublicKey(privateKey) };
};

const b64url = (value: Buffer | string): string => Buffer.from(value).toString('base64url');

export const signJwt = (key: SigningKey, claims: Record<string, unknown>): string => {
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: key.kid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${payload}.${b64url(signature)}`;
};

const parseJsonPart = (part: string, what: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw errors.invalidToken(`the ${what} is not base64url-encoded JSON`);
};

/** Verify a JWT's signature with one of `keys`; returns its claims (unchecked otherwise). */
export const verifyJwt = (token: string, keys: ReadonlyMap<string, SigningKey>): Record<string, unknown> => {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
    throw errors.invalidToken('it is not a JWT (expected three non-empty dot-separated parts)');
  }
  const [h, p, s] = parts as [string, string, string];
  const header = parseJsonPart(h, 'header');
  if (header.alg !== 'ES256') throw errors.invalidToken(`the algorithm '${String(header.alg)}' is not accepted (ES256 only)`);
  const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
  if (!key) throw errors.invalidToken(`the signing key '${String(header.kid)}' is not one of this issuer's keys`);
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!ok) throw errors.invalidToken('the signature does not verify');
  return parseJsonPart(p, 'payload');
};
