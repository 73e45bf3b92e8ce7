// What the engine's artifacts look like at rest, so that a read-only copy of the database (a
// leaked backup, a read-only SQL injection elsewhere) yields no working token, code or session:
//
// - a model whose id is itself a bearer secret (tokens, codes, a session cookie's value, a pushed
//   request's request_uri, registration tokens) is keyed by a SHA-256 of the id, never the id;
// - payloads do not repeat such a value in the clear. The id (`jti`) of a model the engine only
//   ever looks up by id is not stored at all: the lookup had it, and puts it back. A session (found
//   by uid) and a device code (found by user code) need it back from the row, so theirs travels
//   encrypted with SECRETS under SEALED_KEY, as do, in an Interaction, the session cookie, the
//   device code and the pushed request it belongs to.
//
// Hashing needs no key: the ids are 128 bits or more of randomness, so the hash cannot be reversed
// or guessed. sealStoredArtifacts() rewrites rows stored before this (once per database).
import { hash } from 'node:crypto';
import { decrypt, encrypt, memoryPerSecrets } from '../core/secrets.js';
import type { DbHandle } from '../db/client.js';
import { dialectOf, readJson } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import { createSettingStore } from '../db/settings.js';
import type { Payload } from './store.js';

/** Models whose id is a bearer secret (Grant, Interaction and ReplayDetection ids are not). */
const SECRET_ID_MODELS = new Set([
  'Session',
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PushedAuthorizationRequest',
  'RegistrationAccessToken',
  'InitialAccessToken',
]);

/** The secret-id models the engine also finds by something else than their id (uid, user code): their row must give the id back. */
const FOUND_WITHOUT_ID = new Set(['Session', 'DeviceCode']);

/** Never part of an engine id (its ids are base64url), so a hashed key cannot collide with a raw one. */
const HASHED_PREFIX = 'sha256:';
/** Where a payload keeps its secret values, encrypted. */
export const SEALED_KEY = 'gatehouse_sealed';

/** The key a row is stored under. */
export function storedId(model: string, id: string): string {
  // crypto.hash: the one-shot form, without a Hash object per look-up (every token request makes one or two).
  return SECRET_ID_MODELS.has(model) ? `${HASHED_PREFIX}${hash('sha256', id, 'base64url')}` : id;
}

/** The secret values in a payload, by the path they came from (a dot means nested). */
function secretsIn(model: string, payload: Payload): Record<string, string> {
  const found: Record<string, string> = {};
  if (FOUND_WITHOUT_ID.has(model) && typeof payload.jti === 'string') found.jti = payload.jti;
  if (model === 'Interaction') {
    const session = payload.session as { cookie?: unknown } | undefined;
    if (typeof session?.cookie === 'string') found['session.cookie'] = session.cookie;
    if (typeof payload.deviceCode === 'string') found.deviceCode = payload.deviceCode;
    if (typeof payload.parJti === 'string') found.parJti = payload.parJti;
  }
  return found;
}

/**
 * What a sealed value is bound to (core/secrets.ts): its model, so a value moved to another kind of
 * artifact does not open. Not its row: a session is also found by uid, where the row's key is unknown.
 */
const contextOf = (model: string) => `artifact:${model}` as const;

/** The payload to store: every secret value removed, and kept encrypted under SEALED_KEY where a lookup needs it back. */
export function sealPayload(model: string, payload: Payload, secrets: readonly string[]): Payload {
  const found = secretsIn(model, payload);
  const idOnly = SECRET_ID_MODELS.has(model) && !FOUND_WITHOUT_ID.has(model) && 'jti' in payload;
  if (Object.keys(found).length === 0) {
    if (!idOnly) return payload;
    const { jti: _jti, ...rest } = payload;
    return rest;
  }
  const sealed: Payload = { ...payload, [SEALED_KEY]: encrypt(JSON.stringify(found), secrets, contextOf(model)) };
  for (const path of Object.keys(found)) {
    if (path !== 'session.cookie') delete sealed[path];
    else {
      const { cookie: _cookie, ...session } = payload.session as Record<string, unknown>;
      sealed.session = session;
    }
  }
  return sealed;
}

/** The payload as the engine stored it. `id`: what the row was looked up by, the `jti` of a secret-id model. */
export function openPayload(model: string, payload: Payload, secrets: readonly string[], id?: string): Payload {
  const sealed = payload[SEALED_KEY];
  const opened: Payload = typeof sealed === 'string' ? openSealed(model, payload, sealed, secrets) : payload;
  if (id !== undefined && SECRET_ID_MODELS.has(model) && opened.jti === undefined) return { ...opened, jti: id };
  return opened;
}

/**
 * Sealed values opened lately, by model and sealed text. Decryption is a pure function of the
 * sealed text and SECRETS, and AES-GCM's set-up costs more than the lookup around it: a session
 * read on every /userinfo request of its tokens opens the same sealed value again and again
 * (a save seals it anew, with a new IV). The row is still read every time: this remembers no
 * artifact, only what a given ciphertext decrypts to.
 */
const recallOpened = memoryPerSecrets<string>(1000);

const openText = (model: string, sealed: string, secrets: readonly string[]): string =>
  recallOpened(secrets, `${model}\n${sealed}`, () => decrypt(sealed, secrets, contextOf(model)).plaintext) as string;

function openSealed(model: string, payload: Payload, sealed: string, secrets: readonly string[]): Payload {
  const found = JSON.parse(openText(model, sealed, secrets)) as Record<string, string>;
  const { [SEALED_KEY]: _sealed, ...opened } = payload;
  for (const [path, value] of Object.entries(found)) {
    if (path === 'session.cookie') opened.session = { ...(opened.session as Record<string, unknown>), cookie: value };
    else opened[path] = value;
  }
  return opened;
}

const MIGRATION_SETTING = 'artifacts.at_rest';
const MIGRATION_VERSION = 'sha256-ids+sealed-payloads';
const BATCH = 500;

/**
 * Rewrites artifacts stored before ids were hashed and payloads sealed, in batches; each row is
 * rewritten only if it is still as it was read, so instances starting together do the work once.
 * Recorded in the Setting table, so later starts skip it. Returns how many rows it rewrote. The
 * batches are read in SQL on the executor, so that the first start on a new database (which has
 * none to rewrite) runs nothing through Prisma's client (db/settings.ts says why).
 */
export async function sealStoredArtifacts(db: DbHandle, secrets: readonly string[]): Promise<number> {
  const settings = createSettingStore(db);
  if ((await settings.get(MIGRATION_SETTING)) === MIGRATION_VERSION) return 0;
  const sql = executorOf(db);
  const batchAfter = { name: 'artifact_batch_after', text: dialectOf(db.flavour).sql('SELECT "id", "payload" FROM "OidcArtifact" WHERE "model" = ? AND "id" > ? ORDER BY "id" ASC LIMIT ?') };
  let rewritten = 0;
  for (const model of [...SECRET_ID_MODELS, 'Interaction']) {
    for (let after = ''; ; ) {
      const rows = await sql.rows<{ id: string; payload: unknown }>(batchAfter, [model, after, BATCH]);
      if (!rows.length) break;
      after = rows.at(-1)?.id as string;
      for (const row of rows) {
        const payload = readJson<Payload>(row.payload);
        if (row.id.startsWith(HASHED_PREFIX) || payload[SEALED_KEY] !== undefined) continue;
        if (!SECRET_ID_MODELS.has(model) && Object.keys(secretsIn(model, payload)).length === 0) continue;
        // A secret-id model's id is its jti: sealed where a lookup needs it back, otherwise dropped (sealPayload).
        const complete = SECRET_ID_MODELS.has(model) ? { ...payload, jti: row.id } : payload;
        const { count } = await db.prisma.oidcArtifact.updateMany({
          where: { model, id: row.id },
          data: { id: storedId(model, row.id), payload: sealPayload(model, complete, secrets) as object },
        });
        rewritten += count;
      }
    }
  }
  await settings.getOrCreate(MIGRATION_SETTING, MIGRATION_VERSION);
  if ((await settings.get(MIGRATION_SETTING)) !== MIGRATION_VERSION) await settings.set(MIGRATION_SETTING, MIGRATION_VERSION);
  return rewritten;
}
