import { customAlphabet } from 'nanoid';
import type { IdGenerator } from '@amlsim/core';

// Lower-case alphanumerics: ids end up in Azure-style resource names, which allow no upper case.
const nano = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 12);

export const nanoIds = (): IdGenerator => ({ next: (prefix) => (prefix ? `${prefix}_${nano()}` : nano()) });

/** Guid-shaped ids for object ids (oid) and tenant ids, as Azure AD has them. */
export const guid = (): string => {
  const h = customAlphabet('0123456789abcdef', 32)();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
