// What SECRETS (newest first) are used for: cookie signing keys and encryption at rest.
// Each use derives its own key with HKDF, so one secret never serves two purposes directly.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const ENCRYPTION_INFO = 'gatehouse/encryption-at-rest/v1';
const COOKIE_INFO = 'gatehouse/cookie-signing/v1';
const FORM_TOKEN_INFO = 'gatehouse/interaction-form-token/v1';

// Keys depend only on SECRETS and their purpose, and encryption runs on every token save and
// lookup (artifacts/at-rest.ts): each key and its fingerprint are derived once per process.
const derived = new Map<string, { key: Buffer; fingerprint: string }>();
function derivedKey(secret: string, info: string) {
  const id = `${info}\n${secret}`;
  let entry = derived.get(id);
  if (!entry) {
    const key = Buffer.from(hkdfSync('sha256', secret, 'gatehouse', info, 32));
    entry = { key, fingerprint: createHash('sha256').update(key).digest('base64url').slice(0, 11) };
    derived.set(id, entry);
  }
  return entry;
}

/**
 * A bounded memory of what a pure function of SECRETS gave, kept per SECRETS list (the
 * configuration's, one per process; another list finds nothing in it): `recall(secrets, key, make)`
 * answers from memory, else calls `make` and remembers what it returns unless that is null. The
 * oldest entry goes once `entries` are kept. For values that cost more to work out again than to
 * look up on every request (an opened sealed value, an opened client-secret placeholder); whoever
 * could read them from this memory could read SECRETS from the same process.
 */
export function memoryPerSecrets<T>(entries: number) {
  const memories = new WeakMap<readonly string[], Map<string, T>>();
  return function recall(secrets: readonly string[], key: string, make: () => T | null): T | null {
    let memory = memories.get(secrets);
    if (!memory) memories.set(secrets, (memory = new Map()));
    const known = memory.get(key);
    if (known !== undefined) return known;
    const made = make();
    if (made === null) return null;
    if (memory.size >= entries) memory.delete(memory.keys().next().value as string);
    memory.set(key, made);
    return made;
  };
}

/** The key for one purpose (`info`) derived from one of SECRETS with HKDF. */
export const derive = (secret: string, info: string): Buffer => derivedKey(secret, info).key;

/** A short public id of a derived key, stored beside what it made so the right secret is found again. */
export const fingerprintOf = (secret: string, info: string): string => derivedKey(secret, info).fingerprint;

/** What Koa's cookies ask of the engine's `cookies.keys` (a Keygrip): sign with the newest key; which key signed, or -1. */
export interface CookieSigner {
  sign(data: string): string;
  verify(data: string, digest: string): boolean;
  index(data: string, digest: string): number;
}

/**
 * The engine's cookie signer: the first of SECRETS signs, all verify. Its signatures are
 * keygrip's (HMAC-SHA1 in base64url, keyed with each derived key's base64url text), so cookies
 * signed before stay valid. A signature is checked with one HMAC and a constant-time comparison;
 * keygrip, through tsscmp, draws 32 random bytes and computes two more HMACs for each comparison
 * (14 µs a cookie against 3 µs, and the engine checks one on most browser requests).
 */
export function cookieSigner(secrets: readonly string[]): CookieSigner {
  const keys = secrets.map((secret) => createSecretKey(Buffer.from(derive(secret, COOKIE_INFO).toString('base64url'))));
  if (!keys.length) throw new Error('cookie signing needs at least one secret');
  const signWith = (key: (typeof keys)[number], data: string) => createHmac('sha1', key).update(data).digest('base64url');
  const index = (data: string, digest: string) => {
    if (typeof digest !== 'string') return -1;
    const given = Buffer.from(digest);
    return keys.findIndex((key) => {
      const expected = Buffer.from(signWith(key, data));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
  };
  return { sign: (data) => signWith(keys[0]!, data), verify: (data, digest) => index(data, digest) >= 0, index };
}

/** HMAC keys for the tokens in our interaction forms (http/csrf.ts): the first signs, all verify. */
export function formTokenKeys(secrets: readonly string[]): Buffer[] {
  return secrets.map((secret) => derive(secret, FORM_TOKEN_INFO));
}

/**
 * What an encrypted value is for, bound to it as AES-GCM associated data: a value copied to
 * another row or another purpose does not decrypt there. One of `signing-key:<kid>`,
 * `totp:<userId>`, `client-secret:<clientId>`, `pairwise-salt`, `artifact:<model>` (artifacts/at-rest.ts),
 * `idp-client-secret:<providerId>` (federation/store.ts), `federation-flow:<providerId>` (the
 * upstream sign-in's cookie, federation/flow-cookie.ts), `outbox:<id>` (mail/store.ts).
 */
export type EncryptionContext =
  | `signing-key:${string}`
  | `totp:${string}`
  | `client-secret:${string}`
  | 'pairwise-salt'
  | `artifact:${string}`
  | `idp-client-secret:${string}`
  | `federation-flow:${string}`
  | `outbox:${string}`
  | 'console-sign-in';

/** GCM's full tag. A shorter one is refused: each byte cut makes a forgery 256 times easier. */
const TAG_BYTES = 16;
const IV_BYTES = 12;
/** The current format binds the context; v1 (no associated data) is still read, and reported for re-encryption. */
const CURRENT = 'v2';

const aad = (context: EncryptionContext) => Buffer.from(`gatehouse/${CURRENT}/${context}`, 'utf8');

/**
 * AES-256-GCM with the newest secret, bound to `context`.
 * Format: v2.<key fingerprint>.<iv>.<ciphertext>.<tag> (base64url; 12-byte iv, 16-byte tag).
 */
export function encrypt(plaintext: string, secrets: readonly string[], context: EncryptionContext): string {
  const key = derive(secrets[0] as string, ENCRYPTION_INFO);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [CURRENT, fingerprintOf(secrets[0] as string, ENCRYPTION_INFO), iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

const BASE64URL = /^[\w-]*$/;

/**
 * Decrypts a value sealed for `context` with whichever secret encrypted it. `rotated` is true
 * when it should be sealed again (encrypt() with the newest secret): an older secret sealed it,
 * or it is in the old v1 format, which binds no context (read as it is: it predates contexts).
 */
export function decrypt(sealed: string, secrets: readonly string[], context: EncryptionContext): { plaintext: string; rotated: boolean } {
  const parts = sealed.split('.');
  const [version, keyId, iv, ciphertext, tag] = parts;
  if (parts.length !== 5 || (version !== 'v1' && version !== CURRENT) || !keyId || !iv || ciphertext === undefined || !tag || ![iv, ciphertext, tag].every((part) => BASE64URL.test(part))) {
    throw new DecryptionError('not a value Gatehouse encrypted');
  }
  const ivBytes = Buffer.from(iv, 'base64url');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new DecryptionError(`not a value Gatehouse encrypted (its iv or authentication tag is not ${IV_BYTES} or ${TAG_BYTES} bytes)`);
  const index = secrets.findIndex((secret) => fingerprintOf(secret, ENCRYPTION_INFO) === keyId);
  if (index === -1) {
    throw new DecryptionError('encrypted with a secret that is no longer in SECRETS (keep old secrets after a new one until keys are re-encrypted)');
  }
  const decipher = createDecipheriv('aes-256-gcm', derive(secrets[index] as string, ENCRYPTION_INFO), ivBytes, { authTagLength: TAG_BYTES });
  if (version === CURRENT) decipher.setAAD(aad(context));
  decipher.setAuthTag(tagBytes);
  let plaintext: string;
  try {
    plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new DecryptionError(`does not decrypt as ${context.replace(/:.*/, '')} of this row (altered, or copied from another row or purpose)`);
  }
  return { plaintext, rotated: index !== 0 || version !== CURRENT };
}
