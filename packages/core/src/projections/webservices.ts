import { defineProjection } from './projection';

/** S8.5 service states: Transitioning, then Healthy, Failed or Unschedulable; a Healthy one whose replica goes down is Unhealthy. */
export type WebserviceStatus = 'Transitioning' | 'Healthy' | 'Unhealthy' | 'Failed' | 'Unschedulable' | 'Deleted';

export type WebserviceRecord = {
  serviceId: string;
  service: string;
  workspaceId: string;
  workspace: string;
  imageId: string;
  target: 'ACI' | 'AKS';
  authEnabled: boolean;
  tokenAuthEnabled: boolean;
  replicas: number;
  /** The AKS cluster it runs on. */
  compute?: string;
  status: WebserviceStatus;
  scoringUri?: string;
  reason?: string;
  keyFingerprints?: { Primary: string; Secondary: string };
};

/** Web services by name (names are unique in the session, as scenarios refer to them by name). */
export type WebservicesState = Record<string, WebserviceRecord>;

export const webservicesProjection = defineProjection<WebservicesState>({
  name: 'webservices',
  initial: () => ({}),
  on: {
    WebserviceDeploymentRequested: (s, { data: d }) => {
      s[d.service] = {
        serviceId: d.serviceId,
        service: d.service,
        workspaceId: d.workspaceId,
        workspace: d.workspace,
        imageId: d.imageId,
        target: d.target,
        authEnabled: d.authEnabled,
        tokenAuthEnabled: d.tokenAuthEnabled,
        replicas: d.replicas,
        ...(d.compute ? { compute: d.compute } : {}),
        status: 'Transitioning',
      };
    },
    ServiceKeysGenerated: (s, e) => {
      const w = s[e.data.service];
      if (w) w.keyFingerprints = { Primary: e.data.primary, Secondary: e.data.secondary };
    },
    ServiceKeyRegenerated: (s, e) => {
      const w = s[e.data.service];
      if (w?.keyFingerprints) w.keyFingerprints[e.data.key] = e.data.fingerprint;
    },
    WebserviceHealthy: (s, e) => {
      const w = s[e.data.service];
      if (w) Object.assign(w, { status: 'Healthy', scoringUri: e.data.scoringUri });
    },
    WebserviceUnhealthy: (s, e) => {
      const w = s[e.data.service];
      if (w) Object.assign(w, { status: 'Unhealthy', reason: `${e.data.replica}: ${e.data.reason}` });
    },
    WebserviceFailed: (s, e) => {
      const w = s[e.data.service];
      if (w) Object.assign(w, { status: 'Failed', reason: e.data.reason });
    },
    WebserviceUnschedulable: (s, e) => {
      const w = s[e.data.service];
      if (w) Object.assign(w, { status: 'Unschedulable', reason: `${e.data.replicas} replicas do not fit on '${e.data.compute}' (room for ${e.data.capacity})` });
    },
    WebserviceDeleted: (s, e) => {
      delete s[e.data.service];
    },
  },
});
