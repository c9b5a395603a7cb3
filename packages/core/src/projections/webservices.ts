import { nextWebserviceStatus, type WebserviceEvent, type WebserviceStatus } from '../webservice/webservice.machine';
import { defineProjection } from './projection';

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
  /** Facts its status did not allow (a platform bug): recorded here, the status left as it was. */
  anomalies?: string[];
};

/** Moves a service through its lifecycle (webservice.machine.ts); false when the fact is not allowed. */
const move = (w: WebserviceRecord, event: WebserviceEvent): boolean => {
  const next = nextWebserviceStatus(w.status, event);
  if (!next) {
    (w.anomalies ??= []).push(`${event.type} while ${w.status}`);
    return false;
  }
  w.status = next;
  return true;
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
      if (w && move(w, e)) w.keyFingerprints = { Primary: e.data.primary, Secondary: e.data.secondary };
    },
    ServiceKeyRegenerated: (s, e) => {
      const w = s[e.data.service];
      if (w?.keyFingerprints && move(w, e)) w.keyFingerprints[e.data.key] = e.data.fingerprint;
    },
    WebserviceHealthy: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) w.scoringUri = e.data.scoringUri;
    },
    WebserviceRestored: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) w.scoringUri = e.data.scoringUri;
    },
    WebserviceUnhealthy: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) w.reason = `${e.data.replica}: ${e.data.reason}`;
    },
    WebserviceFailed: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) w.reason = e.data.reason;
    },
    WebserviceUnschedulable: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) w.reason = `${e.data.replicas} replicas do not fit on '${e.data.compute}' (room for ${e.data.capacity})`;
    },
    WebserviceDeleted: (s, e) => {
      const w = s[e.data.service];
      if (w && move(w, e)) delete s[e.data.service];
    },
  },
});
