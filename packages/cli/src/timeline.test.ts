import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@amlsim/core';
import { formatEvent } from './timeline';

const event = (type: string, data: Record<string, unknown>, meta: Record<string, unknown> = {}): StoredEvent =>
  ({ position: 1, stream: 'run-r1', version: 1, type, data, meta: { at: '2025-01-01T09:00:01.000Z', correlationId: 'c', causationId: 'c', session: 's', ...meta } }) as StoredEvent;

describe('timeline', () => {
  const start = Date.parse('2025-01-01T09:00:00.000Z');

  it('a refused control-plane call stands out like a refused command', () => {
    const line = formatEvent(event('RunCallRefused', { runId: 'r1', call: 'POST metrics', code: 'AuthorizationFailed', reason: 'bound to channel ch_a' }), start, false);
    expect(line).toMatch(/RP\s+✗ RunCallRefused/);
    expect(line).toContain('— bound to channel ch_a');
  });

  it('a fact a compute target reported names the channel it came in on; the token id stays hidden', () => {
    const line = formatEvent(event('MetricsWrittenBack', { runId: 'r1', batch: 1, count: 2 }, { channel: 'ch_a', tokenId: 'rtok_1' }), start, false);
    expect(line).toContain('via=ch_a');
    expect(line).not.toContain('rtok_1');
    expect(formatEvent(event('RunCompleted', { runId: 'r1' }), start, false)).not.toContain('via=');
  });
});
