import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SimError } from '@amlsim/core';
import { generateSigningKey, signingKeyFromPem, signJwt, verifyJwt } from './jwt';

/** ES256 JWTs: format, algorithm, key id and signature are checked before any claim is read. */
const key = generateSigningKey('k1');
const keys = new Map([[key.kid, key]]);
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

const why = (token: string): string => {
  try {
    verifyJwt(token, keys);
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    expect((err as SimError).code).toBe('InvalidAuthenticationToken');
    return (err as SimError).message;
  }
  throw new Error('expected the token to be refused');
};

/** A token signed by `key` over any header and payload text. */
const signed = (header: string, payload: string) => {
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${header}.${payload}.${signature.toString('base64url')}`;
};

describe('JWTs (ES256)', () => {
  it('signs a header with alg, typ and kid, and verifies to the claims', () => {
    const token = signJwt(key, { sub: 'alice', n: 1 });
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    expect(verifyJwt(token, keys)).toEqual({ sub: 'alice', n: 1 });
  });

  it('a key rebuilt from its PEM verifies what the original signed, and signs what the original verifies', () => {
    const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const again = signingKeyFromPem('k1', pem);
    expect(again.kid).toBe('k1');
    expect(verifyJwt(signJwt(key, { a: 1 }), new Map([['k1', again]]))).toEqual({ a: 1 });
    expect(verifyJwt(signJwt(again, { b: 2 }), keys)).toEqual({ b: 2 });
  });

  it.each([
    ['two parts', 'a.b', 'three non-empty dot-separated parts'],
    ['four parts', 'a.b.c.d', 'three non-empty dot-separated parts'],
    ['an empty header', '.b.c', 'three non-empty dot-separated parts'],
    ['an empty payload', 'a..c', 'three non-empty dot-separated parts'],
    ['an empty signature', 'a.b.', 'three non-empty dot-separated parts'],
  ])('refuses a token with %s as not a JWT', (_, token, message) => {
    expect(why(token)).toContain(message);
  });

  it.each([
    ['not JSON', 'not json'],
    ['a JSON array', [1, 2]],
    ['a JSON string', 'just text'],
    ['JSON null', null],
  ])('refuses a header that is %s', (_, header) => {
    const h = typeof header === 'string' && header !== 'just text' ? Buffer.from(header).toString('base64url') : b64(JSON.stringify(header));
    expect(why(`${h}.${b64({ a: 1 })}.c2ln`)).toContain('the header is not base64url-encoded JSON');
  });

  it.each([
    ['none', { alg: 'none', kid: 'k1' }],
    ['HS256', { alg: 'HS256', kid: 'k1' }],
    ['missing', { kid: 'k1' }],
  ])('refuses the algorithm %s (ES256 only)', (_, header) => {
    expect(why(signed(b64(header), b64({ a: 1 })))).toContain(`the algorithm '${String((header as { alg?: string }).alg)}' is not accepted (ES256 only)`);
  });

  it('refuses an unknown or missing key id', () => {
    expect(why(signed(b64({ alg: 'ES256', kid: 'k2' }), b64({ a: 1 })))).toContain("the signing key 'k2' is not one of this issuer's keys");
    expect(why(signed(b64({ alg: 'ES256' }), b64({ a: 1 })))).toContain("the signing key 'undefined'");
    expect(why(signed(b64({ alg: 'ES256', kid: 7 }), b64({ a: 1 })))).toContain("the signing key '7'");
  });

  it('refuses a signature by another key with the same kid, an altered payload, and a truncated signature', () => {
    const other = generateSigningKey('k1');
    expect(why(signJwt(other, { a: 1 }))).toContain('the signature does not verify');
    const [h, , s] = signJwt(key, { admin: false }).split('.');
    expect(why(`${h}.${b64({ admin: true })}.${s}`)).toContain('the signature does not verify');
    const good = signJwt(key, { a: 1 });
    expect(why(good.slice(0, -8))).toContain('the signature does not verify');
  });

  it('refuses a genuinely signed payload that is not a JSON object', () => {
    const header = b64({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    expect(why(signed(header, b64('[1]')))).toContain('the payload is not base64url-encoded JSON');
    expect(why(signed(header, Buffer.from('{oops').toString('base64url')))).toContain('the payload is not base64url-encoded JSON');
  });

  it('a key of another curve cannot stand in for a P-256 key', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const foreign = signingKeyFromPem('k1', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(() => verifyJwt(signJwt(foreign, { a: 1 }), keys)).toThrow(SimError);
  });
});
