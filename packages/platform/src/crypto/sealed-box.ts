import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM authenticated encryption, the one cipher for everything kept at rest
 * (S4.1 blobs, S6.1 key-vault secrets). Layout: magic(4) | iv(12) | tag(16) | ciphertext.
 * `context` is bound as additional authenticated data so a sealed value cannot be moved to
 * another blob or secret name and still open.
 */
const MAGIC = Buffer.from('AMS1');

export const newDataKey = (): Buffer => randomBytes(32);

export const seal = (key: Buffer, plaintext: Buffer, context: string): Buffer => {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
};

export const open = (key: Buffer, sealed: Buffer, context: string): Buffer => {
  if (sealed.length < 32 || !sealed.subarray(0, 4).equals(MAGIC)) throw new Error(`not a sealed value (${context})`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(4, 16));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(sealed.subarray(16, 32));
  return Buffer.concat([decipher.update(sealed.subarray(32)), decipher.final()]);
};

/** A short, non-reversible name for a secret value: what events carry instead of the value. */
export const fingerprint = (value: string | Buffer): string => `sha256:${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
