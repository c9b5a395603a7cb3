import type { StoredEvent } from '@amlsim/core';
import { describe, expect, it } from 'vitest';
import { dodge, tokenBars, xOf } from './token-bars';

let position = 0;
const T0 = Date.parse('2026-01-01T10:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const ev = (type: string, s: number, data: Record<string, unknown>, meta: Partial<StoredEvent['meta']> = {}): StoredEvent => ({
  type,
  data,
  position: ++position,
  stream: 'x',
  version: 1,
  meta: { at: at(s), correlationId: meta.correlationId ?? `cmd_${position}`, causationId: 'c', session: 's1', ...meta },
});

const session = (): StoredEvent[] => {
  position = 0;
  const ref = { workspaceId: 'ws_1', workspace: 'ws1', runId: 'r1' };
  return [
    ev('ArmTokenIssued', 0, { principal: 'alice', tokenId: 'tok_a', fingerprint: 'sha256:aaaa', expiresAt: at(3600) }, { principal: 'alice', correlationId: 'sign' }),
    ev('ResourceGroupCreated', 1, { scope: '/s/rg' }, { principal: 'alice', correlationId: 'rg' }),
    ev('CommandRejected', 2, { command: 'SubmitRun', code: 'AuthorizationFailed' }, { principal: 'alice', correlationId: 'rej' }),
    ev('RunSubmitted', 3, ref, { principal: 'alice', correlationId: 'sub' }),
    ev('RunTokenIssued', 3, { ...ref, tokenId: 'rtok_1', fingerprint: 'sha256:rrrr', expiresAt: at(10) }, { principal: 'alice', correlationId: 'sub' }),
    ev('MetricsWrittenBack', 4, { ...ref, rows: [] }, { principal: 'alice', correlationId: 'sub', tokenId: 'rtok_1' }),
    ev('RunTokenExpired', 10, { ...ref, tokenId: 'rtok_1' }, { principal: 'alice', correlationId: 'exp' }),
    ev('RunCallRefused', 11, { ...ref, call: 'POST heartbeat', code: 'ExpiredAuthenticationToken' }, { principal: 'alice', correlationId: 'sub' }),
    ev('WebserviceDeploymentRequested', 12, { serviceId: 'svc_1', service: 'svc', tokenAuthEnabled: true }, { principal: 'alice', correlationId: 'dep' }),
    ev('ServiceTokenIssued', 13, { serviceId: 'svc_1', service: 'svc', tokenId: 'stok_1', fingerprint: 'sha256:ssss', expiresAt: at(20), refreshBy: at(16) }, { principal: 'alice', correlationId: 'get' }),
    ev('ScoringRequestRecorded', 14, { serviceId: 'svc_1', service: 'svc', StatusCode: 200, HTTPMethod: 'POST', RequestUrl: '/score' }),
    ev('ScoringRequestRecorded', 15, { serviceId: 'svc_1', service: 'svc', StatusCode: 401, HTTPMethod: 'POST', RequestUrl: '/score' }),
    ev('ClockAdvanced', 25, { byMs: 10_000 }),
  ];
};

describe('tokenBars', () => {
  it('draws one bar per issued token, by fingerprint, of its kind', () => {
    const { bars } = tokenBars(session());
    expect(bars.map((b) => [b.fingerprint, b.kind, b.owner])).toEqual([
      ['sha256:aaaa', 'arm', 'alice'],
      ['sha256:rrrr', 'run', 'r1'],
      ['sha256:ssss', 'service', 'svc'],
    ]);
    expect(bars[2]!.refreshBy).toBe(T0 + 16_000);
  });

  it('ends a run token at the fact that ended it, and a service token at its expiry once the shown time passed it', () => {
    const { bars, start, now } = tokenBars(session());
    expect(start).toBe(T0);
    expect(now).toBe(T0 + 25_000);
    const [arm, run, service] = bars;
    expect(arm!.state).toBe('live');
    expect(arm!.endedAt).toBeUndefined();
    expect(run!.state).toBe('expired');
    expect(run!.endedBy).toEqual({ position: 7, type: 'RunTokenExpired' });
    expect(service!.state).toBe('expired');
    expect(service!.endedAt).toBe(T0 + 20_000);
  });

  it('ticks each use: meta.tokenId for run tokens, refusals red, ARM commands by their principal', () => {
    const { bars } = tokenBars(session());
    const [arm, run, service] = bars;
    expect(run!.ticks.map((t) => [t.type, t.ok, t.inferred])).toEqual([
      ['MetricsWrittenBack', true, false],
      ['RunCallRefused', false, true],
    ]);
    // One tick per command (correlation id): the run's own facts are not ARM calls.
    expect(arm!.ticks.map((t) => [t.type, t.ok])).toEqual([
      ['ResourceGroupCreated', true],
      ['CommandRejected', false],
      ['RunSubmitted', true],
      ['WebserviceDeploymentRequested', true],
      ['ServiceTokenIssued', true],
    ]);
    expect(service!.ticks.map((t) => t.ok)).toEqual([true, false]);
  });

  it('rebuilds at an earlier point from the first events only', () => {
    const early = tokenBars(session(), 6);
    expect(early.bars.map((b) => b.kind)).toEqual(['arm', 'run']);
    expect(early.bars[1]!.state).toBe('live');
    expect(early.bars[1]!.ticks).toHaveLength(1);
    expect(tokenBars(session(), 0).bars).toEqual([]);
  });

  it('ends a token a resumed run replaced', () => {
    position = 0;
    const ref = { runId: 'r1' };
    const events = [
      ev('RunTokenIssued', 0, { ...ref, tokenId: 'rtok_1', fingerprint: 'f1', expiresAt: at(600) }),
      ev('RunResumed', 5, { ...ref, replacedToken: 'rtok_1' }),
      ev('RunTokenIssued', 5, { ...ref, tokenId: 'rtok_2', fingerprint: 'f2', expiresAt: at(600) }),
    ];
    const { bars } = tokenBars(events);
    expect(bars.map((b) => b.state)).toEqual(['revoked', 'live']);
  });
});

describe('xOf', () => {
  it('maps a time onto the axis, clamped', () => {
    expect(xOf(5, 0, 10, 200)).toBe(100);
    expect(xOf(50, 0, 10, 200)).toBe(200);
    expect(xOf(-5, 0, 10, 200)).toBe(0);
    expect(xOf(5, 3, 3, 200)).toBe(0);
  });
});

describe('dodge', () => {
  it('sets ticks that would cover one another side by side, within the track', () => {
    expect(dodge([10, 10, 11, 50], 12, 100)).toEqual([10, 22, 34, 50]);
    expect(dodge([98, 99, 100], 12, 100)).toEqual([76, 88, 100]);
    expect(dodge([], 12, 100)).toEqual([]);
  });
});
