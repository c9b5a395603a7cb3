import { describe, expect, it } from 'vitest';
import { nextWebserviceStatus, type WebserviceEvent, type WebserviceStatus } from './webservice.machine';

const walk = (events: WebserviceEvent['type'][], from: WebserviceStatus = 'Transitioning'): Array<WebserviceStatus | undefined> => {
  let status: WebserviceStatus | undefined = from;
  return events.map((type) => (status = status && nextWebserviceStatus(status, { type })));
};

describe('web service lifecycle (S8.5)', () => {
  it('comes up Healthy, goes Unhealthy when replicas go down, and is deleted', () => {
    expect(walk(['ServiceKeysGenerated', 'WebserviceHealthy', 'ServiceKeyRegenerated', 'WebserviceUnhealthy', 'WebserviceUnhealthy', 'ServiceKeyRegenerated', 'WebserviceDeleted'])).toEqual([
      'Transitioning',
      'Healthy',
      'Healthy',
      'Unhealthy',
      'Unhealthy',
      'Unhealthy',
      'Deleted',
    ]);
  });

  it('ends Failed or Unschedulable from Transitioning; both can only be deleted', () => {
    expect(walk(['WebserviceFailed', 'WebserviceDeleted'])).toEqual(['Failed', 'Deleted']);
    expect(walk(['WebserviceUnschedulable', 'WebserviceDeleted'])).toEqual(['Unschedulable', 'Deleted']);
    for (const status of ['Failed', 'Unschedulable'] as const) {
      for (const type of ['WebserviceHealthy', 'WebserviceUnhealthy', 'ServiceKeyRegenerated', 'WebserviceFailed'] as const) {
        expect(nextWebserviceStatus(status, { type }), `${type} while ${status}`).toBeUndefined();
      }
    }
  });

  it('refuses what the state does not allow', () => {
    expect(nextWebserviceStatus('Transitioning', { type: 'WebserviceUnhealthy' })).toBeUndefined(); // never came up
    expect(nextWebserviceStatus('Transitioning', { type: 'ServiceKeyRegenerated' })).toBeUndefined();
    expect(nextWebserviceStatus('Healthy', { type: 'WebserviceHealthy' })).toBeUndefined();
    expect(nextWebserviceStatus('Unhealthy', { type: 'WebserviceFailed' })).toBeUndefined();
    for (const type of ['WebserviceHealthy', 'WebserviceUnhealthy', 'WebserviceDeleted', 'ServiceKeyRegenerated'] as const) {
      expect(nextWebserviceStatus('Deleted', { type })).toBeUndefined();
    }
  });
});
