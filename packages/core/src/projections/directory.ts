import { defineProjection } from './projection';

export type PrincipalRecord = { principal: string; principalId: string; kind: string };

/** The simulated Azure AD directory (S1.1): tenant, MFA policy, principals by name and id. */
export type DirectoryState = {
  tenantId?: string;
  issuer?: string;
  mfa: 'required' | 'optional';
  byName: Record<string, PrincipalRecord>;
  byId: Record<string, PrincipalRecord>;
  signIns: number;
  failedSignIns: number;
  tokensIssued: number;
};

export const directoryProjection = defineProjection<DirectoryState>({
  name: 'directory',
  initial: () => ({ mfa: 'optional', byName: {}, byId: {}, signIns: 0, failedSignIns: 0, tokensIssued: 0 }),
  on: {
    TenantCreated: (s, e) => {
      s.tenantId = e.data.tenantId;
      s.issuer = e.data.issuer;
      s.mfa = e.data.mfa;
    },
    PrincipalRegistered: (s, e) => {
      const rec = { principal: e.data.principal, principalId: e.data.principalId, kind: e.data.kind };
      s.byName[rec.principal] = rec;
      s.byId[rec.principalId] = rec;
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
