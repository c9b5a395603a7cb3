import { describe, expect, it } from 'vitest';
import { ARM_TOKEN_LIFETIME_MS, type SimError } from '@amlsim/core';
import { tempDir, testPlatform } from './helpers';

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'success';
  } catch (e) {
    return (e as SimError).code;
  }
};

const tamper = (token: string, claims: Record<string, unknown>): string => {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), ...claims };
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
};

describe('ARM tokens (S1.1, S1.2)', () => {
  it('are ES256 JWTs with iss, aud, oid, tid, iat, exp and amr', async () => {
    using tmp = tempDir();
    const { platform } = await testPlatform(tmp.dir, { mfa: 'required' });
    const token = await platform.directory.signIn('alice', { mfa: true });
    const [h, p] = token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    expect(claims).toMatchObject({ aud: 'https://management.azure.com/', name: 'alice', amr: ['pwd', 'mfa'] });
    for (const k of ['iss', 'oid', 'tid', 'iat', 'exp', 'jti']) expect(claims).toHaveProperty(k);
    expect((claims.exp - claims.iat) * 1000).toBe(ARM_TOKEN_LIFETIME_MS);
  });

  it('MFA policy: a user without the second factor gets AADSTS50076 and no token', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir, { mfa: 'required' });
    expect(await codeOf(platform.directory.signIn('alice', { mfa: false }))).toBe('AADSTS50076');
    expect([...store.readAll()].filter((e) => e.type === 'ArmTokenIssued')).toHaveLength(0);
    expect([...store.readAll()].some((e) => e.type === 'SignInFailed' && e.data.code === 'AADSTS50076')).toBe(true);
  });

  it('are verified on every call: signature, audience, expiry, format, presence', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const create = (t: string | undefined, name: string) => platform.arm.createWorkspace(t, { name, resourceGroup: 'rg1', region: 'eastus' });
    // A claim changed after signing: the signature no longer verifies (e.g. posing as someone else).
    expect(await codeOf(create(tamper(token, { name: 'mallory' }), 'ws-a'))).toBe('InvalidAuthenticationToken');
    expect(await codeOf(create('not-a-jwt', 'ws-b'))).toBe('InvalidAuthenticationToken');
    expect(await codeOf(create(undefined, 'ws-c'))).toBe('AuthenticationFailed');
    // A token signed by another directory's key.
    const other = await testPlatform(tmp.dir);
    expect(await codeOf(create(await other.platform.directory.signIn('alice', { mfa: false }), 'ws-d'))).toBe('InvalidAuthenticationToken');
    expect(await codeOf(create(token, 'ws-ok'))).toBe('success');
    platform.context.clock.advance(ARM_TOKEN_LIFETIME_MS + 1000);
    expect(await codeOf(create(token, 'ws-late'))).toBe('ExpiredAuthenticationToken');
    // Every refusal is a fact, and none of them created anything.
    const rejected = [...store.readAll()].filter((e) => e.type === 'CommandRejected').map((e) => e.data.code);
    expect(rejected).toEqual(['InvalidAuthenticationToken', 'InvalidAuthenticationToken', 'AuthenticationFailed', 'InvalidAuthenticationToken', 'ExpiredAuthenticationToken']);
    expect(Object.keys(platform.world.workspaces.byName)).toEqual(['ws-ok']);
  });

  it('never reach the log: events carry a fingerprint only', async () => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir);
    const token = await platform.directory.signIn('alice', { mfa: false });
    const log = JSON.stringify([...store.readAll()]);
    expect(log).not.toContain(token);
    expect(log).not.toContain(token.split('.')[2]);
    expect(log).toMatch(/"fingerprint":"sha256:[0-9a-f]{16}"/);
  });
});

describe('RBAC enforcement modes', () => {
  it.each([
    ['enforce', 'AuthorizationFailed', 0],
    ['soft', 'success', 2], // resource-group write and workspace write
    ['off', 'success', 0],
  ] as const)('%s: bob without a role creating a workspace -> %s, %i violation(s) recorded', async (mode, outcome, violations) => {
    using tmp = tempDir();
    const { platform, store } = await testPlatform(tmp.dir, { rbacMode: mode });
    const bob = await platform.directory.signIn('bob', { mfa: false });
    expect(await codeOf(platform.arm.createWorkspace(bob, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' }))).toBe(outcome);
    const recorded = [...store.readAll()].filter((e) => e.type === 'AuthorizationViolationRecorded');
    expect(recorded).toHaveLength(violations);
    if (violations) expect(recorded[0]!.data).toMatchObject({ principal: 'bob', action: 'Microsoft.Resources/subscriptions/resourceGroups/write' });
  });
});
