import { describe, expect, it } from 'vitest';
import { SimError } from '@amlsim/core';
import { generateSigningKey, signJwt, type SigningKey } from './jwt';
import { fingerprint } from '../crypto/sealed-box';
import { virtualClock, VIRTUAL_EPOCH } from '../runtime/clock';
import { SecretRegistry } from '../runtime/secret-registry';
import { RUN_TOKEN_AUDIENCE, RunTokenService, type RunTokenDeps } from './run-tokens';

/** The run token rules alone (S1.3): signature, audience, expiry, workspace, run and channel scope. */
const setup = () => {
  const clock = virtualClock();
  const secrets = new SecretRegistry();
  let n = 0;
  const context: RunTokenDeps = { session: 's1', clock, secrets, ids: { next: (prefix?: string) => `${prefix}_${++n}` } };
  const tokens = new RunTokenService(context);
  const runA = { runId: 'run_A', workspaceId: 'wsid_1', workspace: 'ws1', region: 'eastus' };
  const runB = { runId: 'run_B', workspaceId: 'wsid_1', workspace: 'ws1', region: 'eastus' }; // a sibling: same workspace
  const a = tokens.issue(runA, 60_000, 'chan-A');
  const b = tokens.issue(runB, 60_000, 'chan-B');
  // The service's own key, to mint tokens that are genuine but malformed (what a bug elsewhere might issue).
  const key = (tokens as unknown as { key: SigningKey }).key;
  return { clock, secrets, tokens, a, b, key };
};

const refusal = (fn: () => unknown): SimError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimError);
    return err as SimError;
  }
  throw new Error('expected the token to be refused');
};

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('run tokens (S1.3)', () => {
  it('issues a signed token scoped to its workspace, run and channel, registered as a secret; the log gets only id, fingerprint and expiry', () => {
    const { a, secrets } = setup();
    expect(claimsOf(a.token)).toEqual({
      iss: 'https://eastus.api.azureml.ms/',
      aud: RUN_TOKEN_AUDIENCE,
      ws: 'wsid_1',
      wsn: 'ws1',
      run: 'run_A',
      chn: 'chan-A',
      iat: Math.floor(VIRTUAL_EPOCH / 1000),
      exp: Math.ceil((VIRTUAL_EPOCH + 60_000) / 1000),
      jti: a.tokenId,
    });
    expect(a.tokenId).toBe('rtok_1');
    expect(a.fingerprint).toBe(fingerprint(a.token));
    expect(a.expiresAtMs).toBe(VIRTUAL_EPOCH + 60_000);
    expect(secrets.findIn(`x${a.token}x`)).toEqual(['run token']);
  });

  it('a token verified once is still checked for expiry on every call, and a copy with another signature or payload is verified anew and refused', () => {
    const { tokens, a, clock } = setup();
    const target = { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' };
    expect(tokens.verify(a.token, target).jti).toBe(a.tokenId);
    const [header, payload, signature] = a.token.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(refusal(() => tokens.verify(`${header}.${payload}.${flipped}`, target)).code).toBe('InvalidAuthenticationToken');
    const widened = Buffer.from(JSON.stringify({ ...claimsOf(a.token), run: 'run_B' })).toString('base64url');
    expect(refusal(() => tokens.verify(`${header}.${widened}.${signature}`, { ...target, runId: 'run_B' })).code).toBe('InvalidAuthenticationToken');
    clock.advance(61_000);
    expect(refusal(() => tokens.verify(a.token, target)).code).toBe('ExpiredAuthenticationToken');
  });

  it('an expiry that is not a whole second is rounded up, never down', () => {
    const { tokens } = setup();
    const t = tokens.issue({ runId: 'r', workspaceId: 'w', workspace: 'ws1', region: 'eastus' }, 1_500, 'c');
    expect(t.expiresAtMs).toBe(VIRTUAL_EPOCH + 2_000);
  });

  it('accepts a token on its own workspace, run and channel', () => {
    const { tokens, a, b } = setup();
    expect(tokens.verify(a.token, { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' })).toMatchObject({ run: 'run_A', wsn: 'ws1', jti: a.tokenId });
    expect(tokens.verify(b.token, { workspace: 'ws1', runId: 'run_B', channel: 'chan-B' })).toMatchObject({ run: 'run_B' });
  });

  it.each([
    ['on its own channel', 'chan-A'],
    ["on the sibling's channel", 'chan-B'],
  ])("refuses run A's token for sibling run B of the same workspace (%s): AuthorizationFailed naming both runs", (_, channel) => {
    const { tokens, a } = setup();
    const err = refusal(() => tokens.verify(a.token, { workspace: 'ws1', runId: 'run_B', channel }));
    expect(err.code).toBe('AuthorizationFailed');
    expect(err.status).toBe(403);
    expect(err.message).toContain("scoped to run 'run_A' and cannot act on run 'run_B'");
    expect(err.details).toMatchObject({ principal: `run token ${a.tokenId}`, scope: '/workspaces/ws1/runs/run_B' });
  });

  it("refuses a token for another workspace, even for a run id it names (the workspace check comes first)", () => {
    const { tokens, a } = setup();
    const err = refusal(() => tokens.verify(a.token, { workspace: 'ws2', runId: 'run_A', channel: 'chan-A' }));
    expect(err.code).toBe('AuthorizationFailed');
    expect(err.message).toContain("scoped to workspace 'ws1' and cannot act on workspace 'ws2'");
  });

  it('refuses a token presented on another channel', () => {
    const { tokens, a } = setup();
    const err = refusal(() => tokens.verify(a.token, { workspace: 'ws1', runId: 'run_A', channel: 'chan-B' }));
    expect(err.code).toBe('AuthorizationFailed');
    expect(err.message).toContain("bound to channel 'chan-A'");
  });

  it('a token is alive until its expiry and dead from that instant on', () => {
    const { tokens, a, clock } = setup();
    const target = { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' };
    clock.advance(59_999);
    expect(tokens.verify(a.token, target).run).toBe('run_A');
    clock.advance(1);
    const err = refusal(() => tokens.verify(a.token, target));
    expect(err.code).toBe('ExpiredAuthenticationToken');
    expect(err.details).toEqual({ expiredAt: new Date(VIRTUAL_EPOCH + 60_000).toISOString(), now: new Date(VIRTUAL_EPOCH + 60_000).toISOString() });
  });

  it('an expired token is refused as expired before its scope is looked at', () => {
    const { tokens, a, clock } = setup();
    clock.advance(120_000);
    expect(refusal(() => tokens.verify(a.token, { workspace: 'ws2', runId: 'run_B', channel: 'chan-B' })).code).toBe('ExpiredAuthenticationToken');
  });

  it('refuses no token at all as AuthenticationFailed', () => {
    const { tokens } = setup();
    expect(refusal(() => tokens.verify(undefined, { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' })).code).toBe('AuthenticationFailed');
    expect(refusal(() => tokens.verify('', { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' })).code).toBe('AuthenticationFailed');
  });

  it('refuses a token signed by another key, or altered, as InvalidAuthenticationToken', () => {
    const { tokens, a } = setup();
    const target = { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' };
    const other = signJwt(generateSigningKey((tokens as unknown as { key: SigningKey }).key.kid), claimsOf(a.token));
    expect(refusal(() => tokens.verify(other, target)).code).toBe('InvalidAuthenticationToken');
    const [h, , s] = a.token.split('.');
    const widened = `${h}.${Buffer.from(JSON.stringify({ ...claimsOf(a.token), run: 'run_B' })).toString('base64url')}.${s}`;
    expect(refusal(() => tokens.verify(widened, { ...target, runId: 'run_B' })).code).toBe('InvalidAuthenticationToken');
  });

  it.each([
    ['another audience', { aud: 'https://management.azure.com/' }, "the audience 'https://management.azure.com/' is not"],
    ['no expiry', { exp: undefined }, 'lacks the run token claims'],
    ['no workspace id', { ws: undefined }, 'lacks the run token claims'],
    ['no run', { run: undefined }, 'lacks the run token claims'],
    ['no token id', { jti: undefined }, 'lacks the run token claims'],
    ['no channel', { chn: undefined }, 'lacks the run token claims'],
    ['an expiry that is not a number', { exp: '9999999999' }, 'lacks the run token claims'],
  ])('refuses a genuinely signed token with %s as InvalidAuthenticationToken', (_, change, why) => {
    const { tokens, a, key } = setup();
    const token = signJwt(key, { ...claimsOf(a.token), ...change });
    const err = refusal(() => tokens.verify(token, { workspace: 'ws1', runId: 'run_A', channel: 'chan-A' }));
    expect(err.code).toBe('InvalidAuthenticationToken');
    expect(err.message).toContain(why);
  });

  it('runOf names the run of a genuine token, whatever its expiry, and nothing for a forged one', () => {
    const { tokens, a, clock } = setup();
    clock.advance(120_000);
    expect(tokens.runOf(a.token)).toBe('run_A');
    expect(tokens.runOf(undefined)).toBeUndefined();
    expect(tokens.runOf(`${a.token.slice(0, -4)}AAAA`)).toBeUndefined();
    expect(tokens.runOf('not-a-jwt')).toBeUndefined();
  });
});
