import { describe, expect, it } from 'vitest';
import { SecretRegistry } from '@amlsim/platform';
import { checkInvariants } from './invariants';

describe('no-password-in-vault (S6.2)', () => {
  const vaults = (value: string) => () => [
    { vault: 'ws1kvabc', secret: 'workspace-storage-connection-string', value: 'AccountKey=xyz' },
    { vault: 'amlplatformabc', secret: 'ws1-vm1-ssh-private-key', value },
  ];

  it('holds when no vault holds a password the scenario used', () => {
    const found = checkInvariants([], { secrets: new SecretRegistry(), passwords: ['Correct-Horse-42'], vaultSecrets: vaults('-----BEGIN PRIVATE KEY-----') });
    expect(found).toEqual([]);
  });

  it('names the vault and secret that hold one, wherever in the value', () => {
    const found = checkInvariants([], { secrets: new SecretRegistry(), passwords: ['wrong-one', 'Correct-Horse-42'], vaultSecrets: vaults('user=azureuser;password=Correct-Horse-42') });
    expect(found.map((v) => [v.invariant, v.message])).toEqual([
      ['no-password-in-vault', "key vault 'amlplatformabc' secret 'ws1-vm1-ssh-private-key' holds a password the scenario used"],
    ]);
  });
});

describe('run and node invariants', () => {
  const e = (position: number, type: string, data: Record<string, unknown>, at = '2025-01-01T09:00:00.000Z') => ({
    position,
    stream: 'run-r1',
    version: position,
    type,
    data: { runId: 'r1', ...data },
    meta: { at, correlationId: 'c', causationId: 'c', session: 's' },
  });

  it('node-lifecycle reports what the node statechart refused', () => {
    const found = checkInvariants([], { secrets: new SecretRegistry(), nodeAnomalies: ['cpu: NodeAssigned on node-1 while leaving'] });
    expect(found.map((v) => v.invariant)).toEqual(['node-lifecycle']);
  });

  it('webservice-lifecycle reports a service fact its state does not allow, and passes a lawful life', () => {
    const svc = (position: number, type: string) => ({ ...e(position, type, { serviceId: 'svc_1', service: 'svc' }), stream: 'service-svc_1' });
    const lawful = [svc(1, 'WebserviceDeploymentRequested'), svc(2, 'WebserviceHealthy'), svc(3, 'WebserviceUnhealthy'), svc(4, 'WebserviceDeleted')];
    expect(checkInvariants(lawful, { secrets: new SecretRegistry() }).map((v) => v.invariant)).not.toContain('webservice-lifecycle');
    const refused = checkInvariants([svc(1, 'WebserviceDeploymentRequested'), svc(2, 'WebserviceUnhealthy'), svc(3, 'WebserviceFailed'), svc(4, 'ServiceKeyRegenerated')], { secrets: new SecretRegistry() });
    expect(refused.filter((v) => v.invariant === 'webservice-lifecycle').map((v) => v.message)).toEqual([
      'the web service statechart refused WebserviceUnhealthy on svc while Transitioning',
      'the web service statechart refused ServiceKeyRegenerated on svc while Failed',
    ]);
  });

  it('run-lifecycle-order catches a container started before its token was issued', () => {
    const found = checkInvariants([e(1, 'ContainerStarted', {}), e(2, 'RunTokenIssued', { expiresAt: '2025-01-01T10:00:00Z' })], { secrets: new SecretRegistry() });
    expect(found.map((v) => v.invariant)).toContain('run-lifecycle-order');
  });

  it('no-call-outside-token-lifetime catches a call accepted after the token was revoked', () => {
    const found = checkInvariants(
      [e(1, 'RunTokenIssued', { expiresAt: '2025-01-01T10:00:00Z' }), e(2, 'RunTokenRevoked', {}), e(3, 'MetricsWrittenBack', { rows: [] })],
      { secrets: new SecretRegistry() },
    );
    expect(found.map((v) => v.invariant)).toContain('no-call-outside-token-lifetime');
  });

  it('no-leftovers names what is still there', () => {
    expect(checkInvariants([], { secrets: new SecretRegistry(), leftovers: ['container abc'] })[0]?.message).toContain('container abc');
  });
});

describe('inference invariants', () => {
  const ev = (position: number, type: string, data: Record<string, unknown>) => ({
    position,
    stream: 's',
    version: position,
    type,
    data,
    meta: { at: '2025-01-01T09:00:00.000Z', correlationId: 'c', causationId: 'c', session: 's' },
  });

  it('image-before-deployment catches a deployment from an image that was never pushed', () => {
    const found = checkInvariants([ev(1, 'WebserviceDeploymentRequested', { serviceId: 'svc1', service: 'svc', imageId: 'img1' }), ev(2, 'ReplicaStarted', { serviceId: 'svc1', service: 'svc' })], {
      secrets: new SecretRegistry(),
    });
    expect(found.map((v) => v.invariant)).toEqual(['image-before-deployment', 'image-before-deployment']);
    expect(
      checkInvariants([ev(1, 'ImagePushed', { imageId: 'img1' }), ev(2, 'WebserviceDeploymentRequested', { serviceId: 'svc1', imageId: 'img1' }), ev(3, 'ReplicaStarted', { serviceId: 'svc1' })], {
        secrets: new SecretRegistry(),
      }),
    ).toEqual([]);
  });

  it('one-app-insights-record-per-request compares records with what the gateway answered', () => {
    const records = [ev(1, 'ScoringRequestRecorded', { RequestId: 'a' }), ev(2, 'ScoringRequestRecorded', { RequestId: 'b' })];
    expect(checkInvariants(records, { secrets: new SecretRegistry(), scoringRequests: 2 })).toEqual([]);
    expect(checkInvariants(records, { secrets: new SecretRegistry(), scoringRequests: 3 }).map((v) => v.invariant)).toEqual(['one-app-insights-record-per-request']);
  });
});
