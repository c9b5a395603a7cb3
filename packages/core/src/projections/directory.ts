import type { AmlEvent } from '../events/catalog';
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
  apply: (s, raw) => {
    const e = raw as AmlEvent;
    switch (e.type) {
      case 'TenantCreated':
        s.tenantId = e.data.tenantId;
        s.issuer = e.data.issuer;
        s.mfa = e.data.mfa;
        break;
      case 'PrincipalRegistered': {
        const rec = { principal: e.data.principal, principalId: e.data.principalId, kind: e.data.kind };
        s.byName[rec.principal] = rec;
        s.byId[rec.principalId] = rec;
        break;
      }
      case 'SignInSucceeded':
        s.signIns++;
        break;
      case 'SignInFailed':
        s.failedSignIns++;
        break;
      case 'ArmTokenIssued':
        s.tokensIssued++;
        break;
    }
    return s;
  },
});
