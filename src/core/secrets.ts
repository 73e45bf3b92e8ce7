// What SECRETS (newest first) are used for: cookie signing keys and encryption at rest.
// Each use derives its own key with HKDF, so one secret never serves two purposes directly.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

const ENCRYPTION_INFO = 'gatehouse/encryption-at-rest/v1';
const COOKIE_INFO = 'gatehouse/cookie-signing/v1';
const FORM_TOKEN_INFO = 'gatehouse/interaction-form-token/v1';

function derive(secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'gatehouse', info, 32));
}

const fingerprint = (key: Buffer) => createHash('sha256').update(key).digest('base64url').slice(0, 11);

/** Keys for the engine's cookie signing (keygrip): the first signs, all verify. */
export function cookieKeys(secrets: readonly string[]): string[] {
  return secrets.map((secret) => derive(secret, COOKIE_INFO).toString('base64url'));
}

/** HMAC keys for the tokens in our interaction forms (http/csrf.ts): the first signs, all verify. */
export function formTokenKeys(secrets: readonly string[]): Buffer[] {
  return secrets.map((secret) => derive(secret, FORM_TOKEN_INFO));
}

/** AES-256-GCM with the newest secret. Format: v1.<key fingerprint>.<iv>.<ciphertext>.<tag>. */
export function encrypt(plaintext: string, secrets: readonly string[]): string {
  const key = derive(secrets[0] as string, ENCRYPTION_INFO);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', fingerprint(key), iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

/**
 * Decrypts with whichever secret encrypted the value. `rotated` is true when that was not
 * the newest secret, so the caller can re-encrypt with the newest one.
 */
export function decrypt(sealed: string, secrets: readonly string[]): { plaintext: string; rotated: boolean } {
  const [version, keyId, iv, ciphertext, tag] = sealed.split('.');
  if (version !== 'v1' || !keyId || !iv || !ciphertext || !tag) throw new DecryptionError('not a value Gatehouse encrypted');
  const index = secrets.findIndex((secret) => fingerprint(derive(secret, ENCRYPTION_INFO)) === keyId);
  if (index === -1) {
    throw new DecryptionError('encrypted with a secret that is no longer in SECRETS (keep old secrets after a new one until keys are re-encrypted)');
  }
  const decipher = createDecipheriv('aes-256-gcm', derive(secrets[index] as string, ENCRYPTION_INFO), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  const plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  return { plaintext, rotated: index !== 0 };
}
