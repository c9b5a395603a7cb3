import { describe, expect, it } from 'vitest';
import { EVENT_CATALOG, LANES, arrowOf, isLane } from './catalog';

describe('the event catalog', () => {
  it('gives every event type an arrow between two known parties', () => {
    const wrong = Object.entries(EVENT_CATALOG).flatMap(([type, entry]) => {
      const { from, to } = entry as { from?: unknown; to?: unknown };
      return [
        ...(typeof from === 'string' && isLane(from) ? [] : [`${type}: from ${String(from)} is not one of ${LANES.join(', ')}`]),
        ...(typeof to === 'string' && isLane(to) ? [] : [`${type}: to ${String(to)} is not one of ${LANES.join(', ')}`]),
      ];
    });
    expect(wrong).toEqual([]);
  });

  it('draws the arrows the flows of the seed describe', () => {
    expect(arrowOf('RunStatusReported')).toEqual({ from: 'Compute', to: 'RP' });
    expect(arrowOf('ArmTokenIssued')).toEqual({ from: 'AAD', to: 'Client' });
    expect(arrowOf('MetricsWrittenBack')).toEqual({ from: 'Compute', to: 'CosmosDB' });
    expect(arrowOf('CommandRejected')).toEqual({ from: 'Client', to: 'ARM' });
    expect(arrowOf('ScoringRequestRecorded')).toEqual({ from: 'Webservice', to: 'AppInsights' });
    expect(arrowOf('NoSuchEvent')).toEqual({ from: 'Platform', to: 'Platform' });
  });

  it('lists every lane once', () => {
    expect(new Set(LANES).size).toBe(LANES.length);
    expect(isLane('Compute')).toBe(true);
    expect(isLane('compute')).toBe(false);
  });
});
