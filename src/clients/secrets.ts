// Client secrets at rest. A client that only ever presents its secret (client_secret_basic,
// client_secret_post) is stored with a keyed hash of it (`client_secret_hash`); a client whose
// secret is also a key (client_secret_jwt, HS* signatures, symmetric encryption) is stored with
// it encrypted (`client_secret_encrypted`), because the engine needs the value itself.
//
// The engine's client schema requires `client_secret` for both kinds, and checks a presented
// secret with one method, Client#compareClientSecret. For a hashed client the adapter hands the
// engine a placeholder: the stored hash plus a tag keyed from SECRETS. compareClientSecret
// (replaced by clients/hooks.ts) verifies against the hash inside it, so the placeholder itself never
// authenticates; the tag makes it unguessable even to someone who read the database, because
// the engine also turns every client secret into an HS256 key (request objects). Responses that
// would echo the placeholder (RFC 7592 reads and updates) drop it, and an update that hands it
// back to the adapter keeps the stored hash.
import { createHmac, hash as oneShotHash, timingSafeEqual } from 'node:crypto';
import { decrypt, derive, encrypt, fingerprintOf, memoryPerSecrets } from '../core/secrets.js';
import { sameJson, type ClientMetadata } from './store.js';

const HASH_INFO = 'gatehouse/client-secret-hash/v1';
const PLACEHOLDER_INFO = 'gatehouse/client-secret-placeholder/v1';
const HASH_PREFIX = 'hmac-sha256:v1:';
const PLACEHOLDER_PREFIX = 'gatehouse-hashed-secret~';

const hmac = (key: Buffer, value: string) => createHmac('sha256', key).update(value, 'utf8').digest();
const newest = (secrets: readonly string[]) => secrets[0] as string;

// ---------------------------------------------------------------------------------------------
// Hashing: HMAC-SHA-256 keyed from SECRETS. Client secrets are long random values, so a fast
// keyed hash is enough; no salt, so the same secret and key always give the same hash.
// ---------------------------------------------------------------------------------------------

/** `hmac-sha256:v1:<key fingerprint>:<base64url digest>`, keyed from the newest secret. */
export function hashClientSecret(secret: string, secrets: readonly string[]): string {
  const key = derive(newest(secrets), HASH_INFO);
  return `${HASH_PREFIX}${fingerprintOf(newest(secrets), HASH_INFO)}:${hmac(key, secret).toString('base64url')}`;
}

function parseHash(stored: string): { keyId: string; digest: Buffer } | null {
  if (!stored.startsWith(HASH_PREFIX)) return null;
  const [keyId, digest, ...rest] = stored.slice(HASH_PREFIX.length).split(':');
  if (!keyId || !digest || rest.length > 0) return null;
  const bytes = Buffer.from(digest, 'base64url');
  return bytes.length === 32 ? { keyId, digest: bytes } : null;
}

/** Constant-time check of a presented secret against a stored hash made with any secret in SECRETS. */
export function verifyClientSecret(presented: string, stored: string, secrets: readonly string[]): boolean {
  const parsed = parseHash(stored);
  if (!parsed || typeof presented !== 'string') return false;
  const secret = secrets.find((candidate) => fingerprintOf(candidate, HASH_INFO) === parsed.keyId);
  if (secret === undefined) return false;
  return timingSafeEqual(hmac(derive(secret, HASH_INFO), presented), parsed.digest);
}

/** Whether a stored hash was made with the newest secret (otherwise re-hash on the next match). */
export function isCurrentHash(stored: string, secrets: readonly string[]): boolean {
  return parseHash(stored)?.keyId === fingerprintOf(newest(secrets), HASH_INFO);
}

/** Constant-time equality of two clear secrets of any lengths. */
export function sameSecret(a: string, b: string): boolean {
  const digest = (value: string) => oneShotHash('sha256', value, 'buffer');
  return timingSafeEqual(digest(a), digest(b));
}

// ---------------------------------------------------------------------------------------------
// Which clients keep their secret (encrypted) and which only a hash of it
// ---------------------------------------------------------------------------------------------

/** The engine's own lists (models/client.js): HS* here makes the secret a signing key. */
const SIGNING_ALG_FIELDS = [
  'id_token_signed_response_alg',
  'request_object_signing_alg',
  'token_endpoint_auth_signing_alg',
  'userinfo_signed_response_alg',
  'introspection_signed_response_alg',
  'authorization_signed_response_alg',
];
/** A*KW, A*GCMKW or dir here makes the secret an encryption key. */
const ENCRYPTION_ALG_FIELDS = [
  'id_token_encrypted_response_alg',
  'request_object_encryption_alg',
  'userinfo_encrypted_response_alg',
  'introspection_encrypted_response_alg',
  'authorization_encrypted_response_alg',
];

/** Whether the engine needs the clear secret itself, not only to compare a presented one. */
export function needsClearSecret(metadata: Record<string, unknown>): boolean {
  const value = (field: string) => (typeof metadata[field] === 'string' ? (metadata[field] as string) : '');
  return (
    metadata.token_endpoint_auth_method === 'client_secret_jwt' ||
    SIGNING_ALG_FIELDS.some((field) => value(field).startsWith('HS')) ||
    ENCRYPTION_ALG_FIELDS.some((field) => /^(A|dir$)/.test(value(field)))
  );
}

// ---------------------------------------------------------------------------------------------
// The placeholder the engine holds for a hashed client
// ---------------------------------------------------------------------------------------------

const placeholderTag = (clientId: string, hash: string, secrets: readonly string[]) =>
  hmac(derive(newest(secrets), PLACEHOLDER_INFO), `${clientId}\n${hash}`).toString('base64url');

function placeholder(clientId: string, hash: string, secrets: readonly string[]): string {
  return `${PLACEHOLDER_PREFIX}${hash}~${placeholderTag(clientId, hash, secrets)}`;
}

export const isPlaceholder = (value: unknown): value is string => typeof value === 'string' && value.startsWith(PLACEHOLDER_PREFIX);

/**
 * Placeholders opened lately, by client id and text. Opening is a pure function of the
 * placeholder, the client id and SECRETS, and every token request of a client with a hashed
 * secret opens the same one (three hashes, about 6.5 µs). Only a placeholder that opened is
 * remembered, never the secret presented with it.
 */
const recallOpened = memoryPerSecrets<string>(1000);

/** The stored hash inside a placeholder this deployment made for this client, or null. */
export function openPlaceholder(value: string, clientId: string, secrets: readonly string[]): string | null {
  if (!isPlaceholder(value)) return null;
  return recallOpened(secrets, `${clientId}\n${value}`, () => {
    const [hash, tag, ...rest] = value.slice(PLACEHOLDER_PREFIX.length).split('~');
    if (!hash || !tag || rest.length > 0) return null;
    return sameSecret(tag, placeholderTag(clientId, hash, secrets)) ? hash : null;
  });
}

// ---------------------------------------------------------------------------------------------
// Metadata as stored and as the engine sees it
// ---------------------------------------------------------------------------------------------

/** Metadata that asks for a clear secret where only a hash is kept (the adapter answers 400). */
export class UnsealableSecretError extends Error {
  override name = 'UnsealableSecretError';
}

/** The metadata to store: `client_secret` replaced by its hash or its encryption. */
export function sealClientMetadata(metadata: ClientMetadata, secrets: readonly string[]): ClientMetadata {
  const { client_secret: secret, client_secret_hash: _hash, client_secret_encrypted: _sealed, ...rest } = metadata;
  if (typeof secret !== 'string') return metadata;
  if (isPlaceholder(secret)) {
    // A registration update hands back what find() gave the engine: keep the stored hash.
    const hash = openPlaceholder(secret, metadata.client_id, secrets);
    if (hash === null) throw new Error(`client ${metadata.client_id}: client_secret placeholder does not belong to this client`);
    if (needsClearSecret(rest)) {
      throw new UnsealableSecretError('this client only has a hashed secret, which cannot sign or encrypt; register a new client for HS* algorithms or client_secret_jwt');
    }
    return { ...rest, client_secret_hash: hash } as ClientMetadata;
  }
  if (needsClearSecret(rest)) return { ...rest, client_secret_encrypted: encrypt(secret, secrets, `client-secret:${metadata.client_id}`) } as ClientMetadata;
  return { ...rest, client_secret_hash: hashClientSecret(secret, secrets) } as ClientMetadata;
}

/**
 * The metadata to hand the engine: the decrypted secret, or a placeholder for a hashed one.
 * `resealed` is set when the stored form should be rewritten (encrypted with an older secret).
 */
export function revealClientMetadata(stored: ClientMetadata, secrets: readonly string[]): { metadata: ClientMetadata; resealed?: ClientMetadata } {
  const { client_secret_hash: hash, client_secret_encrypted: sealed, ...rest } = stored;
  if (typeof sealed === 'string') {
    const context = `client-secret:${stored.client_id}` as const;
    const { plaintext, rotated } = decrypt(sealed, secrets, context);
    const metadata = { ...rest, client_secret: plaintext } as ClientMetadata;
    return rotated ? { metadata, resealed: { ...rest, client_secret_encrypted: encrypt(plaintext, secrets, context) } as ClientMetadata } : { metadata };
  }
  if (typeof hash === 'string') return { metadata: { ...rest, client_secret: placeholder(stored.client_id, hash, secrets) } as ClientMetadata };
  // No secret, or a row written before secrets were sealed (a seed run rewrites those).
  return { metadata: stored };
}

/** Whether `stored` is what sealing `metadata` (with its clear secret) now would store. */
function holdsClient(stored: unknown, metadata: ClientMetadata, secrets: readonly string[]): boolean {
  if (!stored || typeof stored !== 'object') return false;
  const { client_secret: secret, ...rest } = metadata;
  const { client_secret_hash: hash, client_secret_encrypted: sealed, ...storedRest } = stored as Record<string, unknown>;
  if (!sameJson(storedRest, rest)) return false;
  if (typeof secret !== 'string') return hash === undefined && sealed === undefined;
  if (needsClearSecret(rest)) {
    if (typeof sealed !== 'string' || hash !== undefined) return false;
    try {
      const { plaintext, rotated } = decrypt(sealed, secrets, `client-secret:${metadata.client_id}`);
      return !rotated && sameSecret(plaintext, secret);
    } catch {
      return false;
    }
  }
  return typeof hash === 'string' && sealed === undefined && isCurrentHash(hash, secrets) && verifyClientSecret(secret, hash, secrets);
}

/** How client secrets are kept at rest, bound to SECRETS (what the seed is handed): never in clear. */
export interface ClientSecretSealing {
  /** The metadata to store, its client_secret replaced by a hash or an encryption of it. */
  seal(metadata: ClientMetadata): ClientMetadata;
  /** Whether stored metadata is what seal(metadata) would store now (same fields, same secret). */
  holds(stored: unknown, metadata: ClientMetadata): boolean;
}

export function clientSecretSealing(secrets: readonly string[]): ClientSecretSealing {
  return {
    seal: (metadata) => sealClientMetadata(metadata, secrets),
    holds: (stored, metadata) => holdsClient(stored, metadata, secrets),
  };
}
