// Token signing keys: one RS256 and one ES256 key per generation, stored in the database with
// the private half encrypted by SECRETS and shared by every instance on that database.
//
// A key's life: created by a rotation, it is first only *published* in /jwks (until its
// `activatesAt`), so relying parties that cache /jwks can fetch it before any token names it;
// then it is *active* and signs new tokens; once a newer key is active it is *published* again
// (verify only) until `retireAfter`, when every token it can have signed has expired; then it
// is *retired* and no longer published. States are worked out from those dates and the clock,
// so every instance that has read the same rows agrees without talking to the others.
import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { createResourceStore } from '../resources/store.js';
import { createSigningKeyStore, type KeyMeta, type NewKey, type StoredKey } from './store.js';
import { decrypt, encrypt } from '../core/secrets.js';

export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export type PrivateJwk = Record<string, unknown> & { kid: string; alg: string; use: 'sig'; kty: string };

export interface SigningKeys {
  /** Private JWKs for the engine's `jwks`: per algorithm the active key first, then the ones only published. */
  readonly jwks: { keys: PrivateJwk[] };
  /** Keys created by this call (first start). */
  readonly created: readonly string[];
}

/** active: signs new tokens; published: in /jwks to verify only (next or previous key); retired: gone. */
export type KeyState = 'active' | 'published' | 'retired';

export interface SigningKeyInfo {
  kid: string;
  alg: string;
  generation: number;
  state: KeyState;
  createdAt: Date;
  /** When it starts (or started) signing. */
  activatesAt: Date;
  /** When it stops being published; null while it is the newest key of its algorithm. */
  retireAfter: Date | null;
  retiredAt: Date | null;
}

/** What the key lifecycle needs from the configuration. */
export type KeyConfig = Pick<Config, 'secrets' | 'ttl' | 'keys' | 'features' | 'backchannelLogout'>;

/** Logout tokens and JWT authorization responses: the engine gives them a fixed 120 s. */
const ENGINE_FIXED_TOKEN_SECONDS = 120;
/** Relying parties commonly accept a token this long past its `exp` (clock skew leeway). */
const CLOCK_LEEWAY_SECONDS = 60;

/**
 * A new key pair, as JWKs straight from the generation. Not generated as KeyObjects and exported
 * afterwards: on Node 20, exporting a fresh key while garbage collection frees the job that made
 * it deadlocks the thread (the export holds the key's lock; the job's destructor, run by the
 * collection inside the export, waits for it). It froze a CLI rotation and a test process here
 * (test/bench/ROUNDS.md, round 27). Encoded by the generation, the key is exported while its job
 * is still alive.
 */
export function generateJwkPair(alg: SigningAlgorithm): { privateKey: JsonWebKey; publicKey: JsonWebKey } {
  const encodings = { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } };
  // Node encodes generated keys as JWK itself (format 'jwk'); @types/node has no overload for it.
  const generated: unknown = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048, ...encodings } as never) : generateKeyPairSync('ec', { namedCurve: 'P-256', ...encodings } as never);
  return generated as { privateKey: JsonWebKey; publicKey: JsonWebKey };
}

function newKey(alg: SigningAlgorithm, generation: number, secrets: readonly string[]): NewKey {
  const { privateKey, publicKey } = generateJwkPair(alg);
  const kid = `${alg.toLowerCase()}-${randomBytes(12).toString('base64url')}`;
  const meta = { kid, alg, use: 'sig' };
  return {
    id: kid,
    alg,
    generation,
    publicJwk: { ...publicKey, ...meta },
    privateJwkEncrypted: encrypt(JSON.stringify({ ...privateKey, ...meta }), secrets, `signing-key:${kid}`),
  };
}

const activation = (key: KeyMeta) => key.activatesAt ?? key.createdAt;

/**
 * The state of every key at `now`. Per algorithm, the active key is the newest generation
 * whose activation time has come; a key past its `retireAfter` is retired even before the
 * sweeper stamps `retiredAt`.
 */
export function keyStates(keys: readonly KeyMeta[], now: Date): Map<string, KeyState> {
  const states = new Map<string, KeyState>();
  const byAlg = new Map<string, KeyMeta[]>();
  for (const key of keys) {
    const retired = key.retiredAt !== null || (key.retireAfter !== null && key.retireAfter <= now);
    if (retired) states.set(key.id, 'retired');
    else byAlg.set(key.alg, [...(byAlg.get(key.alg) ?? []), key]);
  }
  for (const candidates of byAlg.values()) {
    candidates.sort((a, b) => b.generation - a.generation);
    // Only when no key has activated yet (not a state rotation creates) does the earliest one sign.
    const signer = candidates.find((key) => activation(key) <= now) ?? [...candidates].sort((a, b) => +activation(a) - +activation(b))[0];
    for (const key of candidates) states.set(key.id, key === signer ? 'active' : 'published');
  }
  return states;
}

/** The engine's `jwks` at `now`: per algorithm, the active key first (the engine signs with the first match). */
export function engineKeyOrder<Key extends KeyMeta>(keys: readonly Key[], now: Date): Key[] {
  const states = keyStates(keys, now);
  const ordered: Key[] = [];
  for (const alg of SIGNING_ALGORITHMS) {
    const ofAlg = keys.filter((key) => key.alg === alg && states.get(key.id) !== 'retired').sort((a, b) => b.generation - a.generation);
    ordered.push(...ofAlg.filter((key) => states.get(key.id) === 'active'), ...ofAlg.filter((key) => states.get(key.id) === 'published'));
  }
  return ordered;
}

/** Decrypts a stored private key, re-sealing it with the newest secret when an older one sealed it. */
export async function openPrivateKey(db: Db, key: StoredKey, secrets: readonly string[]): Promise<PrivateJwk> {
  const context = `signing-key:${key.id}` as const;
  const { plaintext, rotated } = decrypt(key.privateJwkEncrypted, secrets, context);
  // A key sealed with an older secret (or in the old format) is re-sealed, so old secrets can go.
  if (rotated) await createSigningKeyStore(db).reencrypt(key.id, encrypt(plaintext, secrets, context));
  return JSON.parse(plaintext) as PrivateJwk;
}

/**
 * Creates, for each algorithm without a usable key, a first one that signs at once (first
 * start, or every key retired). Concurrent callers agree on one key per generation.
 */
async function ensureKeys(db: Db, secrets: readonly string[], now: Date): Promise<string[]> {
  const queries = createSigningKeyStore(db);
  const all = await queries.listAll();
  const states = keyStates(all, now);
  const created: string[] = [];
  for (const alg of SIGNING_ALGORITHMS) {
    const ofAlg = all.filter((key) => key.alg === alg);
    if (ofAlg.some((key) => states.get(key.id) === 'active')) continue;
    const generation = Math.max(0, ...ofAlg.map((key) => key.generation)) + 1;
    const key = newKey(alg, generation, secrets);
    // Another instance starting at the same moment may win this generation; then use its key.
    if (await queries.insertIfGenerationFree({ ...key, createdAt: now })) created.push(key.id);
  }
  return created;
}

/** Loads the signing keys to publish and sign with at `now`, creating the first ones when there are none. */
export async function loadSigningKeys(db: Db, secrets: readonly string[], now: Date = new Date()): Promise<SigningKeys> {
  const created = await ensureKeys(db, secrets, now);
  const stored = await createSigningKeyStore(db).listActive();
  const keys: PrivateJwk[] = [];
  for (const key of engineKeyOrder(stored, now)) keys.push(await openPrivateKey(db, key, secrets));
  return { jwks: { keys }, created };
}

/** Every key with its state at `now`, newest generation first within each algorithm. */
export async function listSigningKeys(db: Db, now: Date = new Date()): Promise<SigningKeyInfo[]> {
  const all = await createSigningKeyStore(db).listAll();
  const states = keyStates(all, now);
  return all.map((key) => ({
    kid: key.id,
    alg: key.alg,
    generation: key.generation,
    state: states.get(key.id) as KeyState,
    createdAt: key.createdAt,
    activatesAt: activation(key),
    retireAfter: key.retireAfter,
    retiredAt: key.retiredAt,
  }));
}

/**
 * The longest a token signed by a key can stay valid, in seconds: ID tokens, access tokens
 * (JWT access tokens of registered resources have their own lifetime; signed userinfo
 * responses never outlive the access token) and the engine's fixed 120 s for logout tokens
 * and JWT authorization responses, plus the back-channel logout retries, which deliver
 * tokens signed before the first attempt.
 */
export async function longestSignedTokenLifetime(db: Db, config: KeyConfig): Promise<number> {
  const longestJwtAccessToken = await createResourceStore(db).longestJwtAccessTokenTtl();
  const { retryDelaysMs, timeoutMs } = config.backchannelLogout;
  const deliverySeconds = config.features.backchannelLogout ? Math.ceil((retryDelaysMs.reduce((sum, ms) => sum + ms, 0) + (retryDelaysMs.length + 1) * timeoutMs) / 1000) : 0;
  return Math.max(config.ttl.idToken, config.ttl.accessToken, longestJwtAccessToken ?? 0, ENGINE_FIXED_TOKEN_SECONDS + deliverySeconds);
}

export interface RotateOptions {
  now?: Date;
  /** Only this algorithm; default: every algorithm. */
  alg?: SigningAlgorithm;
  /**
   * Sign with the new key at once instead of after KEY_ACTIVATION_DELAY. For a suspected key
   * compromise: relying parties that cached /jwks reject new tokens until they fetch it again.
   */
  immediate?: boolean;
  /** Rotate only if the newest generation is still this one (scheduled rotation; per algorithm). */
  expectedGeneration?: Partial<Record<SigningAlgorithm, number>>;
}

export interface RotationResult {
  /** New keys: published now, signing from `activatesAt`. */
  created: { kid: string; alg: SigningAlgorithm; generation: number; activatesAt: Date }[];
  /** Older keys given a retirement date by this rotation. */
  retiring: { kid: string; alg: SigningAlgorithm; retireAfter: Date }[];
  /** Algorithms another instance rotated at the same moment (its key stands; no second one). */
  alreadyRotated: SigningAlgorithm[];
}

/**
 * Rotates the signing keys: a new generation per algorithm, published at once and signing
 * after KEY_ACTIVATION_DELAY; the keys it supersedes stay published until every token they
 * can have signed has expired (see `longestSignedTokenLifetime`), plus one key refresh
 * interval (instances switch at their next refresh) and a clock-skew leeway.
 */
export async function rotateSigningKeys(db: Db, config: KeyConfig, options: RotateOptions = {}): Promise<RotationResult> {
  const now = options.now ?? new Date();
  const queries = createSigningKeyStore(db);
  const all = await queries.listAll();
  const activatesAt = new Date(now.getTime() + (options.immediate ? 0 : config.keys.activationDelay) * 1000);
  const lifetime = await longestSignedTokenLifetime(db, config);
  const retireAfter = new Date(activatesAt.getTime() + (lifetime + config.keys.refreshInterval + CLOCK_LEEWAY_SECONDS) * 1000);
  const result: RotationResult = { created: [], retiring: [], alreadyRotated: [] };
  for (const alg of options.alg ? [options.alg] : SIGNING_ALGORITHMS) {
    const newest = Math.max(0, ...all.filter((key) => key.alg === alg).map((key) => key.generation));
    const expected = options.expectedGeneration?.[alg];
    if (expected !== undefined && expected !== newest) {
      result.alreadyRotated.push(alg);
      continue;
    }
    const key = newKey(alg, newest + 1, config.secrets);
    // Two instances rotating at once both try generation newest+1: exactly one insert succeeds.
    if (!(await queries.insertIfGenerationFree({ ...key, createdAt: now, activatesAt }))) {
      result.alreadyRotated.push(alg);
      continue;
    }
    result.created.push({ kid: key.id, alg, generation: key.generation, activatesAt });
    for (const kid of await queries.scheduleRetirement(alg, key.generation, retireAfter)) result.retiring.push({ kid, alg, retireAfter });
  }
  return result;
}

/** Stamps `retiredAt` on keys past their retirement date (they already left /jwks then). */
export async function retireExpiredKeys(db: Db, _config: Pick<Config, 'keys'> | undefined, now: Date = new Date()): Promise<string[]> {
  return createSigningKeyStore(db).retireDue(now);
}

/**
 * Each algorithm's newest key and when scheduled rotation replaces it (`dueAt`, null when
 * KEY_ROTATION_INTERVAL is 0); `due` once that time has come.
 */
export async function rotationSchedule(db: Db, intervalSeconds: number, now: Date = new Date()) {
  const all = await createSigningKeyStore(db).listAll();
  return SIGNING_ALGORITHMS.flatMap((alg) => {
    const newest = all.filter((key) => key.alg === alg).sort((a, b) => b.generation - a.generation)[0];
    if (!newest) return [];
    const dueAt = intervalSeconds > 0 ? new Date(newest.createdAt.getTime() + intervalSeconds * 1000) : null;
    return [{ alg, kid: newest.id, generation: newest.generation, createdAt: newest.createdAt, dueAt, due: dueAt !== null && now.getTime() >= dueAt.getTime() }];
  });
}

/**
 * Scheduled rotation: rotates each algorithm whose newest key is older than `intervalSeconds`.
 * Every instance may call it; the generation check lets exactly one of them rotate.
 */
export async function rotateIfDue(db: Db, config: KeyConfig, now: Date = new Date()): Promise<RotationResult | undefined> {
  const intervalSeconds = config.keys.rotationInterval;
  if (intervalSeconds <= 0) return undefined;
  const expectedGeneration: Partial<Record<SigningAlgorithm, number>> = {};
  for (const entry of await rotationSchedule(db, intervalSeconds, now)) if (entry.due) expectedGeneration[entry.alg] = entry.generation;
  const due = Object.keys(expectedGeneration) as SigningAlgorithm[];
  if (!due.length) return undefined;
  const results: RotationResult[] = [];
  for (const alg of due) results.push(await rotateSigningKeys(db, config, { now, alg, expectedGeneration }));
  return {
    created: results.flatMap((r) => r.created),
    retiring: results.flatMap((r) => r.retiring),
    alreadyRotated: results.flatMap((r) => r.alreadyRotated),
  };
}
