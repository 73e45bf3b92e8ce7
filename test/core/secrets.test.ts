// Encryption at rest (AES-256-GCM keyed from SECRETS): only the full 16-byte tag is accepted,
// each value is bound to its purpose and row, and values written before that (v1) still read.
// The engine's cookie signer signs as keygrip did, so cookies already in browsers stay valid.
import { describe, expect, it } from 'vitest';
import { cookieSigner, decrypt, DecryptionError, encrypt, memoryPerSecrets } from '../../src/core/secrets.js';
import { encryptV1 } from '../helpers/legacy-secrets.js';

const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const NEWER = 'newer-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
/** A TOTP secret as the previous release stored it, with SECRET (written by that release's encrypt()). */
const STORED_BY_V1 = 'v1.7NOoZFV761J.pvzgAzkmmaKJltwc.yUAO8KpBomkWer9izjbvbA.mJxEjDK9mBRRvAAPVnZizQ';

/** The value with its authentication tag cut to `bytes` bytes, as an attacker with the database could store it. */
function withTagCutTo(sealed: string, bytes: number): string {
  const parts = sealed.split('.');
  parts[4] = Buffer.from(parts[4] as string, 'base64url').subarray(0, bytes).toString('base64url');
  return parts.join('.');
}

describe('encrypt and decrypt', () => {
  it('seal a value for one purpose and row in the v2 format with a 12-byte iv and a 16-byte tag', () => {
    const sealed = encrypt('JBSWY3DPEHPK3PXP', [SECRET], 'totp:alice');
    const [version, , iv, , tag] = sealed.split('.');
    expect(version).toBe('v2');
    expect(Buffer.from(iv as string, 'base64url')).toHaveLength(12);
    expect(Buffer.from(tag as string, 'base64url')).toHaveLength(16);
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(decrypt(sealed, [SECRET], 'totp:alice')).toEqual({ plaintext: 'JBSWY3DPEHPK3PXP', rotated: false });
    expect(decrypt(encrypt('', [SECRET], 'pairwise-salt'), [SECRET], 'pairwise-salt').plaintext).toBe('');
  });

  it('refuse a value whose tag was shortened, whatever its format', () => {
    const sealed = encrypt('JBSWY3DPEHPK3PXP', [SECRET], 'totp:alice');
    for (const bytes of [4, 8, 12, 15]) {
      expect(() => decrypt(withTagCutTo(sealed, bytes), [SECRET], 'totp:alice')).toThrow(DecryptionError);
      expect(() => decrypt(withTagCutTo(STORED_BY_V1, bytes), [SECRET], 'totp:alice')).toThrow(DecryptionError);
    }
    expect(() => decrypt(withTagCutTo(sealed, 4), [SECRET], 'totp:alice')).toThrow(/authentication tag/);
  });

  it('refuse a value moved to another row or another purpose', () => {
    const alices = encrypt('JBSWY3DPEHPK3PXP', [SECRET], 'totp:alice');
    expect(() => decrypt(alices, [SECRET], 'totp:mallory')).toThrow(DecryptionError);
    expect(() => decrypt(alices, [SECRET], 'totp:alice2')).toThrow(/copied from another row or purpose/);
    const key = encrypt('{"kty":"EC"}', [SECRET], 'signing-key:es256-a');
    expect(() => decrypt(key, [SECRET], 'signing-key:es256-b')).toThrow(DecryptionError);
    expect(() => decrypt(key, [SECRET], 'client-secret:es256-a')).toThrow(DecryptionError);
    const clientSecret = encrypt('s3cret', [SECRET], 'client-secret:web-app');
    expect(() => decrypt(clientSecret, [SECRET], 'client-secret:other-app')).toThrow(DecryptionError);
    expect(() => decrypt(clientSecret, [SECRET], 'pairwise-salt')).toThrow(DecryptionError);
  });

  it('refuse altered values and junk without throwing anything but DecryptionError', () => {
    const sealed = encrypt('JBSWY3DPEHPK3PXP', [SECRET], 'totp:alice');
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3] as string, 'base64url');
    flipped[0] = (flipped[0] as number) ^ 1;
    for (const value of [
      [...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'),
      [...parts.slice(0, 2), Buffer.alloc(8).toString('base64url'), ...parts.slice(3)].join('.'),
      [...parts.slice(0, 4), `${parts[4]}!`].join('.'),
      `${sealed}.extra`,
      sealed.replace(/^v2/, 'v3'),
      '',
      'v2....',
      'plain text',
    ]) {
      expect(() => decrypt(value, [SECRET], 'totp:alice'), value).toThrow(DecryptionError);
    }
  });

  it('still read a value in the v1 format (no context) and ask for it to be sealed again', () => {
    expect(decrypt(STORED_BY_V1, [SECRET], 'totp:alice')).toEqual({ plaintext: 'JBSWY3DPEHPK3PXP', rotated: true });
    expect(decrypt(STORED_BY_V1, [NEWER, SECRET], 'totp:alice')).toEqual({ plaintext: 'JBSWY3DPEHPK3PXP', rotated: true });
    expect(decrypt(encryptV1('salt', SECRET), [SECRET], 'pairwise-salt')).toEqual({ plaintext: 'salt', rotated: true });
    // Sealed again, it is bound to its row from then on.
    const resealed = encrypt(decrypt(STORED_BY_V1, [SECRET], 'totp:alice').plaintext, [SECRET], 'totp:alice');
    expect(decrypt(resealed, [SECRET], 'totp:alice').rotated).toBe(false);
    expect(() => decrypt(resealed, [SECRET], 'totp:mallory')).toThrow(DecryptionError);
  });

  it('read values sealed with an older secret, and ask for them to be sealed with the newest', () => {
    const old = encrypt('value', [SECRET], 'pairwise-salt');
    expect(decrypt(old, [NEWER, SECRET], 'pairwise-salt')).toEqual({ plaintext: 'value', rotated: true });
    expect(() => decrypt(old, [NEWER], 'pairwise-salt')).toThrow(/no longer in SECRETS/);
  });
});

describe("the engine's cookie signer", () => {
  const COOKIE = '_session=9BJHv9EsxFVkUHUvK4ks-QNPURmlP-udSmtfgFO-ubt';
  /** COOKIE's signature with SECRET, as keygrip made it with the keys of earlier releases. */
  const SIGNED_BY_KEYGRIP = 'kXKaGi9Y-D41uX7I8tQtWOVDalc';

  it('signs with the newest secret exactly as keygrip did', () => {
    expect(cookieSigner([SECRET]).sign(COOKIE)).toBe(SIGNED_BY_KEYGRIP);
    expect(cookieSigner([NEWER, SECRET]).sign(COOKIE)).not.toBe(SIGNED_BY_KEYGRIP);
  });

  it('tells which secret signed a cookie, so one signed with an older secret is signed again', () => {
    const signer = cookieSigner([NEWER, SECRET]);
    expect(signer.index(COOKIE, SIGNED_BY_KEYGRIP)).toBe(1);
    expect(signer.index(COOKIE, signer.sign(COOKIE))).toBe(0);
    expect(signer.verify(COOKIE, SIGNED_BY_KEYGRIP)).toBe(true);
  });

  it('refuses a signature that is altered, cut, lengthened, missing or made for another value', () => {
    const signer = cookieSigner([SECRET]);
    const altered = `${SIGNED_BY_KEYGRIP.slice(0, -1)}${SIGNED_BY_KEYGRIP.endsWith('A') ? 'B' : 'A'}`;
    for (const digest of [altered, SIGNED_BY_KEYGRIP.slice(0, -1), `${SIGNED_BY_KEYGRIP}A`, '', undefined as unknown as string]) {
      expect(signer.index(COOKIE, digest)).toBe(-1);
      expect(signer.verify(COOKIE, digest)).toBe(false);
    }
    expect(signer.index(`${COOKIE}x`, SIGNED_BY_KEYGRIP)).toBe(-1);
    expect(cookieSigner([NEWER]).index(COOKIE, SIGNED_BY_KEYGRIP)).toBe(-1);
  });
});

describe('a memory per SECRETS list', () => {
  const SECRETS = ['memory-test-secret-0123456789-abcdefghijklmnopqrstuv'];

  it('works a value out once per key, and again under another SECRETS list', () => {
    const recall = memoryPerSecrets<string>(10);
    let made = 0;
    const make = () => `made ${++made}`;
    expect(recall(SECRETS, 'a', make)).toBe('made 1');
    expect(recall(SECRETS, 'a', make)).toBe('made 1');
    expect(recall([...SECRETS], 'a', make)).toBe('made 2');
    expect(made).toBe(2);
  });

  it('does not remember a value that could not be worked out', () => {
    const recall = memoryPerSecrets<string>(10);
    expect(recall(SECRETS, 'b', () => null)).toBeNull();
    expect(recall(SECRETS, 'b', () => 'now')).toBe('now');
  });

  it('forgets its oldest entry once full', () => {
    const recall = memoryPerSecrets<string>(2);
    recall(SECRETS, 'first', () => 'one');
    recall(SECRETS, 'second', () => 'two');
    recall(SECRETS, 'third', () => 'three');
    expect(recall(SECRETS, 'first', () => 'again')).toBe('again');
    expect(recall(SECRETS, 'third', () => 'not again')).toBe('three');
  });
});
