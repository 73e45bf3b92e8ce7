// Token signing keys: one RS256 and one ES256 key generated on first start, stored in the
// database with the private half encrypted by SECRETS, and loaded by every instance that
// shares the database, so all of them sign with, and publish, the same keys.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Db } from '../db/client.js';
import { createSigningKeyQueries, type StoredKey } from '../db/signing-keys.js';
import { decrypt, encrypt } from './secrets.js';

export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export type PrivateJwk = Record<string, unknown> & { kid: string; alg: string; use: 'sig'; kty: string };

export interface SigningKeys {
  /** Private JWKs for the engine's `jwks`, newest first per algorithm. */
  readonly jwks: { keys: PrivateJwk[] };
  /** Keys created by this call (first start). */
  readonly created: readonly string[];
}

function generate(alg: SigningAlgorithm): { privateKey: KeyObject; publicKey: KeyObject } {
  return alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function newKey(alg: SigningAlgorithm, generation: number, secrets: readonly string[]): Omit<StoredKey, 'createdAt'> {
  const { privateKey, publicKey } = generate(alg);
  const kid = `${alg.toLowerCase()}-${randomBytes(12).toString('base64url')}`;
  const meta = { kid, alg, use: 'sig' };
  return {
    id: kid,
    alg,
    generation,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), ...meta },
    privateJwkEncrypted: encrypt(JSON.stringify({ ...privateKey.export({ format: 'jwk' }), ...meta }), secrets),
  };
}

/** Loads the active signing keys, creating the first ones when there are none. */
export async function loadSigningKeys(db: Db, secrets: readonly string[]): Promise<SigningKeys> {
  const queries = createSigningKeyQueries(db.prisma);
  const created: string[] = [];
  let stored = await queries.listActive();
  for (const alg of SIGNING_ALGORITHMS) {
    if (stored.some((key) => key.alg === alg)) continue;
    const key = newKey(alg, 1, secrets);
    // Another instance starting at the same moment may win generation 1; then use its key.
    if (await queries.insertIfGenerationFree(key)) created.push(key.id);
  }
  if (created.length || SIGNING_ALGORITHMS.some((alg) => !stored.some((key) => key.alg === alg))) {
    stored = await queries.listActive();
  }

  const keys: PrivateJwk[] = [];
  for (const alg of SIGNING_ALGORITHMS) {
    for (const key of stored.filter((k) => k.alg === alg)) {
      const { plaintext, rotated } = decrypt(key.privateJwkEncrypted, secrets);
      // A key sealed with an older secret is re-sealed with the newest, so old secrets can go.
      if (rotated) await queries.reencrypt(key.id, encrypt(plaintext, secrets));
      keys.push(JSON.parse(plaintext) as PrivateJwk);
    }
  }
  return { jwks: { keys }, created };
}
