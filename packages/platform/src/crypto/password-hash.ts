import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * A salted scrypt hash (`scrypt$<salt>$<hash>`, base64): what the simulator keeps of a
 * password or client secret, so that neither the secret nor anything it can be read back from
 * is ever stored (a VM's admin password, a tenant's user passwords and client secrets).
 */
export const hashPassword = (password: string): string => {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64')}$${scryptSync(password, salt, 32).toString('base64')}`;
};

/** Whether `password` is the one `hash` was made from (constant time in the hash's length). */
export const verifyPassword = (password: string, hash: string): boolean => {
  const [kind, salt, expected] = hash.split('$');
  if (kind !== 'scrypt' || !salt || !expected) return false;
  const want = Buffer.from(expected, 'base64');
  const got = scryptSync(password, Buffer.from(salt, 'base64'), want.length);
  return timingSafeEqual(got, want);
};
