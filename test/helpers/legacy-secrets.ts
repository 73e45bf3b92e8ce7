// Values in the v1 encryption format, exactly as Gatehouse wrote them before encrypted values
// were bound to their purpose and row (src/core/secrets.ts reads them still), for tests that
// need an old database.
import { createCipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

export function encryptV1(plaintext: string, secret: string): string {
  const key = Buffer.from(hkdfSync('sha256', secret, 'gatehouse', 'gatehouse/encryption-at-rest/v1', 32));
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const fingerprint = createHash('sha256').update(key).digest('base64url').slice(0, 11);
  return ['v1', fingerprint, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}
