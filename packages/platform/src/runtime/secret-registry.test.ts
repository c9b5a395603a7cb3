import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretRegistry } from './secret-registry';

/** The plain definition the registry must agree with: every value compared with `includes`. */
const naiveFindIn = (values: Array<[string, string]>, text: string): string[] => values.filter(([v]) => text.includes(v)).map(([, kind]) => kind);

describe('SecretRegistry', () => {
  it('finds a value anywhere in a text, at its edges too, and ignores values shorter than 8 characters', () => {
    const s = new SecretRegistry();
    s.add('hunter22', 'password');
    s.add('short', 'password');
    expect(s.findIn('hunter22')).toEqual(['password']);
    expect(s.findIn('xhunter22')).toEqual(['password']);
    expect(s.findIn('hunter22x and hunter22')).toEqual(['password']);
    expect(s.findIn('hunter2 2 hunter2')).toEqual([]);
    expect(s.findIn('short short')).toEqual([]);
    expect(s.findIn('')).toEqual([]);
  });

  it('tells tokens apart that share everything but their tail, and values that share their tail', () => {
    const s = new SecretRegistry();
    const header = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.';
    const a = `${header}${randomBytes(24).toString('base64url')}`;
    const b = `${header}${randomBytes(24).toString('base64url')}`;
    const c1 = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k1;EndpointSuffix=core.windows.net';
    const c2 = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k2;EndpointSuffix=core.windows.net';
    s.add(a, 'token a');
    s.add(b, 'token b');
    s.add(c1, 'connection 1');
    s.add(c2, 'connection 2');
    expect(s.findIn(`{"t":"${b}"}`)).toEqual(['token b']);
    expect(s.findIn(`${header}xyz`)).toEqual([]);
    expect(s.findIn(`${c2} ${a}`)).toEqual(['token a', 'connection 2']);
    expect(s.findIn('EndpointSuffix=core.windows.net')).toEqual([]);
  });

  it('agrees with comparing every value, on random texts holding random values', () => {
    const alphabet = 'ab';
    const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
    for (let round = 0; round < 30; round++) {
      const s = new SecretRegistry();
      const values: Array<[string, string]> = [];
      for (let i = 0; i < 20; i++) {
        const v = word(8 + Math.floor(Math.random() * 6));
        if (values.some(([known]) => known === v)) continue;
        values.push([v, `k${i}`]);
        s.add(v, `k${i}`);
      }
      const text = word(200);
      expect(s.findIn(text)).toEqual(naiveFindIn(values, text));
      // Redaction leaves none of them behind.
      const redacted = s.redact(text);
      expect(values.filter(([v]) => redacted.includes(v))).toEqual([]);
    }
  });

  it('redacts each value with its kind, overlapping values as one span, and leaves the rest alone', () => {
    const s = new SecretRegistry();
    const key = 'c2VjcmV0LWtleS12YWx1ZQ==';
    const conn = `AccountName=a;AccountKey=${key};EndpointSuffix=core.windows.net`;
    s.add(key, 'storage key');
    s.add(conn, 'connection string');
    s.add('hunter22', 'password');
    expect(s.redact('nothing here')).toBe('nothing here');
    expect(s.redact(`pw=hunter22; key=${key}.`)).toBe('pw=[redacted password]; key=[redacted storage key].');
    expect(s.redact(`conn: ${conn}!`)).toBe('conn: [redacted connection string]!');
    expect(s.redact('hunter22hunter22')).toBe('[redacted password][redacted password]');
  });
});
