import { describe, expect, it } from 'vitest';
import { ARM_AUDIENCE, checkTokenClaims } from './token-rules';

const now = Date.parse('2025-01-01T10:00:00Z');
const sec = Math.floor(now / 1000);
const claims = { iss: 'https://sts/t/', aud: ARM_AUDIENCE, oid: 'o', tid: 't', name: 'alice', jti: 'j', iat: sec - 60, nbf: sec - 60, exp: sec + 60, amr: ['pwd'] };
const expected = { audience: ARM_AUDIENCE, issuer: 'https://sts/t/', nowMs: now };

describe('checkTokenClaims', () => {
  it('accepts a current token for the audience', () => expect(checkTokenClaims(claims, expected).name).toBe('alice'));
  it.each([
    [{ aud: 'https://storage.azure.com/' }, 'InvalidAuthenticationToken', /audience/],
    [{ iss: 'https://evil/' }, 'InvalidAuthenticationToken', /issuer/],
    [{ exp: sec }, 'ExpiredAuthenticationToken', /expired at 2025-01-01T10:00:00.000Z/],
    [{ nbf: sec + 5 }, 'InvalidAuthenticationToken', /not valid before/],
    [{ oid: 42 }, 'InvalidAuthenticationToken', /claim 'oid'/],
    [{ amr: undefined }, 'InvalidAuthenticationToken', /amr/],
  ])('refuses %j with %s', (patch, code, message) => {
    expect(() => checkTokenClaims({ ...claims, ...patch }, expected)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});
