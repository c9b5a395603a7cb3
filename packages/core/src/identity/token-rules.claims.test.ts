import { describe, expect, it } from 'vitest';
import { SimError } from '../errors/sim-error';
import { ARM_AUDIENCE, checkTokenClaims } from './token-rules';

/** Claim types and time bounds of ARM tokens (S1.1): a claim of the wrong type is refused, never coerced. */
const nowMs = Date.parse('2025-01-01T09:00:00.000Z');
const sec = nowMs / 1000;
const claims = { iss: 'https://sts/t/', aud: ARM_AUDIENCE, oid: 'o', tid: 't', name: 'alice', jti: 'j', iat: sec - 60, nbf: sec - 60, exp: sec + 60, amr: ['pwd'] };
const expected = { audience: ARM_AUDIENCE, issuer: 'https://sts/t/', nowMs };

const refusal = (c: Record<string, unknown>): SimError => {
  try {
    checkTokenClaims(c, expected);
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error('expected the claims to be refused');
};

describe('ARM token claim rules', () => {
  it.each(['iat', 'nbf', 'exp'])("refuses a '%s' that is a numeric string (far future or past), not comparing it as a number", (key) => {
    const far = key === 'nbf' ? String(sec - 3600) : String(sec + 3600);
    const err = refusal({ ...claims, [key]: far });
    expect(err.code).toBe('InvalidAuthenticationToken');
    expect(err.message).toContain(`claim '${key}' is missing or not a number`);
  });

  it.each(['iss', 'aud', 'oid', 'tid', 'jti', 'name'])("refuses a '%s' that is not a string", (key) => {
    expect(refusal({ ...claims, [key]: 7 }).message).toContain(`claim '${key}' is missing or not a string`);
  });

  it('refuses amr that is not a list', () => {
    expect(refusal({ ...claims, amr: 'pwd' }).message).toContain("claim 'amr' is missing");
  });

  it('names the instant a token becomes valid, and accepts it from that second on', () => {
    expect(refusal({ ...claims, nbf: sec + 5 }).message).toContain(`not valid before ${new Date(nowMs + 5000).toISOString()}`);
    expect(checkTokenClaims({ ...claims, nbf: sec }, expected).name).toBe('alice');
  });

  it('expires at exp exactly, naming when', () => {
    const err = refusal({ ...claims, exp: sec });
    expect(err.code).toBe('ExpiredAuthenticationToken');
    expect(err.details).toEqual({ expiredAt: new Date(nowMs).toISOString(), now: new Date(nowMs).toISOString() });
    expect(checkTokenClaims({ ...claims, exp: sec + 1 }, expected).name).toBe('alice');
  });
});
