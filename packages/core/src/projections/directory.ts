import { defineProjection } from './projection';

export type PrincipalRecord = { principal: string; principalId: string; kind: string; appId?: string };

/** The simulated Azure AD directory (S1.1): tenant, MFA policy, principals by name and id. */
export type DirectoryState = {
  tenantId?: string;
  issuer?: string;
  mfa: 'required' | 'optional';
  byName: Record<string, PrincipalRecord>;
  byId: Record<string, PrincipalRecord>;
  /** Service principals by client id (those the tenant file gave an appId or that got their name as one). */
  byAppId: Record<string, PrincipalRecord>;
  signIns: number;
  failedSignIns: number;
  tokensIssued: number;
};

export const directoryProjection = defineProjection<DirectoryState>({
  name: 'directory',
  initial: () => ({ mfa: 'optional', byName: {}, byId: {}, byAppId: {}, signIns: 0, failedSignIns: 0, tokensIssued: 0 }),
  on: {
    TenantCreated: (s, e) => {
      s.tenantId = e.data.tenantId;
      s.issuer = e.data.issuer;
      s.mfa = e.data.mfa;
    },
    PrincipalRegistered: (s, e) => {
      const rec = { principal: e.data.principal, principalId: e.data.principalId, kind: e.data.kind, ...(e.data.appId ? { appId: e.data.appId } : {}) };
      s.byName[rec.principal] = rec;
      s.byId[rec.principalId] = rec;
      if (rec.appId) s.byAppId[rec.appId] = rec;
    },
    SignInSucceeded: (s) => {
      s.signIns++;
    },
    SignInFailed: (s) => {
      s.failedSignIns++;
    },
    ArmTokenIssued: (s) => {
      s.tokensIssued++;
    },
  },
});
