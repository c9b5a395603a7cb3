import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { applyProjection } from './projection';
import { webservicesProjection, type WebservicesState } from './webservices';

/** The web services read model (S8.5, S1.4): status through the statechart, key fingerprints only, refused facts recorded. */
let n = 0;
const ev = (type: string, data: Record<string, unknown> = {}): StoredEvent =>
  ({ position: ++n, stream: 'service-svc_1', version: n, type, data: { serviceId: 'svc_1', service: 'svc', ...data }, meta: { at: 'x', correlationId: 'c', causationId: 'c', session: 's' } }) as StoredEvent;
const fold = (events: StoredEvent[]): WebservicesState => events.reduce((s, e) => applyProjection(webservicesProjection, s, e), webservicesProjection.initial());
const requested = ev('WebserviceDeploymentRequested', { workspaceId: 'w1', workspace: 'ws1', imageId: 'img1', target: 'AKS', authEnabled: true, tokenAuthEnabled: false, replicas: 2, compute: 'aks1' });
const keys = ev('ServiceKeysGenerated', { primary: 'sha256:p1', secondary: 'sha256:s1' });
const healthy = ev('WebserviceHealthy', { scoringUri: 'https://127.0.0.1:1/api/v1/service/svc/score' });

describe('web services read model', () => {
  it('a deployed service: Transitioning, then Healthy with its scoring URI and key fingerprints', () => {
    expect(fold([requested]).svc).toEqual({ serviceId: 'svc_1', service: 'svc', workspaceId: 'w1', workspace: 'ws1', imageId: 'img1', target: 'AKS', authEnabled: true, tokenAuthEnabled: false, replicas: 2, compute: 'aks1', status: 'Transitioning' });
    const s = fold([requested, keys, healthy]).svc!;
    expect(s).toMatchObject({ status: 'Healthy', scoringUri: 'https://127.0.0.1:1/api/v1/service/svc/score', keyFingerprints: { Primary: 'sha256:p1', Secondary: 'sha256:s1' } });
    expect(s.anomalies).toBeUndefined();
    const aci = fold([ev('WebserviceDeploymentRequested', { workspaceId: 'w1', workspace: 'ws1', imageId: 'img1', target: 'ACI', authEnabled: false, tokenAuthEnabled: false, replicas: 1 })]).svc!;
    expect('compute' in aci).toBe(false);
  });

  it('a regenerated key replaces that key fingerprint only', () => {
    const s = fold([requested, keys, healthy, ev('ServiceKeyRegenerated', { key: 'Secondary', fingerprint: 'sha256:s2' })]).svc!;
    expect(s.keyFingerprints).toEqual({ Primary: 'sha256:p1', Secondary: 'sha256:s2' });
    // No keys yet: nothing to regenerate, and nothing changes.
    expect(fold([requested, ev('ServiceKeyRegenerated', { key: 'Primary', fingerprint: 'sha256:x' })]).svc!.keyFingerprints).toBeUndefined();
  });

  it('says why it is unhealthy, failed or unschedulable', () => {
    expect(fold([requested, healthy, ev('WebserviceUnhealthy', { replica: 'r1', reason: 'exited 1' })]).svc).toMatchObject({ status: 'Unhealthy', reason: 'r1: exited 1' });
    expect(fold([requested, ev('WebserviceFailed', { reason: 'image broken' })]).svc).toMatchObject({ status: 'Failed', reason: 'image broken' });
    expect(fold([requested, ev('WebserviceUnschedulable', { replicas: 5, compute: 'aks1', capacity: 4 })]).svc).toMatchObject({ reason: "5 replicas do not fit on 'aks1' (room for 4)" });
  });

  it('a fact its status does not allow is recorded and changes nothing', () => {
    const s = fold([requested, ev('WebserviceFailed', { reason: 'image broken' }), healthy, ev('ServiceKeyRegenerated', { key: 'Primary', fingerprint: 'sha256:x' })]).svc!;
    expect(s.status).toBe('Failed');
    expect(s.scoringUri).toBeUndefined();
    expect(s.anomalies).toEqual(['WebserviceHealthy while Failed']);
    expect(fold([requested, ev('WebserviceUnhealthy', { replica: 'r1', reason: 'x' })]).svc).toMatchObject({ status: 'Transitioning', anomalies: ['WebserviceUnhealthy while Transitioning'] });
  });

  it('a deleted service is gone; facts of unknown services are ignored', () => {
    expect(fold([requested, healthy, ev('WebserviceDeleted')])).toEqual({});
    expect(fold([healthy, keys, ev('WebserviceDeleted')])).toEqual({});
  });
});
