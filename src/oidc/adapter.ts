// The engine's storage, backed by Prisma. One adapter per engine model: `Client` reads the
// typed Client table; every other model (Session, Interaction, Grant, AuthorizationCode,
// AccessToken, RefreshToken, DeviceCode, ReplayDetection, PushedAuthorizationRequest,
// RegistrationAccessToken, ...) lives in OidcArtifact, keyed by (model, id).
//
// Secret-bearing ids are stored hashed and secret values in payloads encrypted (artifacts/at-rest.ts).
// Storage only: the policies applied on the way in (the admin scope refused in registrations,
// pushed requests and device codes; where a session was last used) wrap this factory in
// oidc/hooks.ts. Client secrets are sealed and opened here because that is their at-rest form
// (clients/secrets.ts), as a database column's encoding would be.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { openPayload, sealPayload, storedId } from '../artifacts/at-rest.js';
import { createArtifactStore, type ArtifactRow, type Payload } from '../artifacts/store.js';
import type { Db } from '../db/client.js';
import { createClientStore, type ClientMetadata } from '../clients/store.js';
import { registrationCache } from '../db/registration-cache.js';
import { revealClientMetadata, sealClientMetadata, UnsealableSecretError } from '../clients/secrets.js';
import { createRequestReads, engineRequest, grantKey, latestGrantKey, personKey, sessionKey, type KeptRead, type RequestReads } from './request-reads.js';

export type Clock = () => Date;

/** Models whose redemption mints tokens: a second redemption means a stolen or replayed value. */
const GRANT_SOURCES: Record<string, string> = {
  AuthorizationCode: 'authorization code',
  RefreshToken: 'refresh token',
  DeviceCode: 'device code',
  BackchannelAuthenticationRequest: 'backchannel authentication request',
  PreAuthorizedCode: 'pre-authorized code',
};

/**
 * Models the engine looks up ignoring expiry so that it can say "expired" (RFC 8628
 * `expired_token`, the /device page's "code has expired"); it checks the payload's `exp` itself
 * on every lookup of these, so their rows are kept (and returned) an hour past expiry.
 */
const KEPT_AFTER_EXPIRY: Record<string, number> = { DeviceCode: 3600, BackchannelAuthenticationRequest: 3600 };

const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** Tokens the engine follows, within the request, by looking up their session, grant and account: read with them (request-reads.ts). */
const READ_WITH_BINDINGS = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode']);

/** `id`: what the row was found by, when it was found by its id. */
function toPayload(model: string, row: ArtifactRow | null, secrets: readonly string[], id?: string): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = openPayload(model, row.payload, secrets, id) as AdapterPayload;
  if (row.consumedAt) payload.consumed = epochSeconds(row.consumedAt);
  return payload;
}

const text = (value: unknown) => (typeof value === 'string' ? value : null);

/** The client_id in the query of the engine request `request` (a Koa context), if it names exactly one. */
const clientInQuery = (request: object) => text((request as { query?: Record<string, unknown> }).query?.client_id);

/** The grant a session's payload holds for a client, as the engine's session.grantIdFor reads it. */
function grantIdFor(payload: Payload, clientId: string): string | undefined {
  const authorizations = payload.authorizations as Record<string, { grantId?: unknown } | undefined> | undefined;
  const grantId = authorizations && Object.hasOwn(authorizations, clientId) ? authorizations[clientId]?.grantId : undefined;
  return typeof grantId === 'string' ? grantId : undefined;
}

/**
 * Request parameters end up in payloads, and PostgreSQL cannot store U+0000 in jsonb. JSON writes
 * it, in a key or a value, as \u0000 after an even number of backslashes (a backslash of the
 * text is written \\), so one plain serialisation finds it.
 */
function refuseNul(payload: unknown): void {
  if (/(?<!\\)(?:\\\\)*\\u0000/.test(JSON.stringify(payload))) throw new errors.InvalidRequest('parameters must not contain NUL characters');
}

/** Distinct clients kept by the client cache; beyond this the oldest entry is dropped. */
const CLIENT_CACHE_ENTRIES = 1000;

/**
 * `clientCacheSeconds`: how long a client read from the database is reused (0: read on every
 * lookup). The engine looks a client up on every request that names one. An entry is dropped at
 * once when anything in this process writes a client (Db.clientWrites); writes by another
 * instance or the CLI are seen when the entry expires, so they take effect within that time.
 * `reads`: where a token's session, grant and person, read with it, are kept for the rest of the
 * engine request (request-reads.ts); provider.ts shares them with findAccount.
 */
export function createAdapterFactory(
  db: Db,
  secrets: readonly string[],
  now: Clock = () => new Date(),
  clientCacheSeconds = 0,
  reads: RequestReads = createRequestReads(engineRequest),
): (model: string) => Adapter {
  const artifacts = createArtifactStore(db);
  const clients = createClientStore(db);
  /**
   * A client from the database, its secrets opened. Not kept: an unknown client_id (anyone can
   * send one, and it must not push the registered ones out) and a client whose secrets had to be
   * resealed (saved anew) first.
   */
  const findClient = registrationCache<string, ClientMetadata | undefined>({
    seconds: clientCacheSeconds,
    writes: db.clientWrites,
    maxEntries: CLIENT_CACHE_ENTRIES,
    async read(id) {
      const stored = await clients.find(id);
      if (!stored) return { value: undefined, keep: false };
      const { metadata, resealed } = revealClientMetadata(stored, secrets);
      if (resealed) await clients.save(resealed);
      return { value: metadata, keep: !resealed };
    },
  });

  const clientAdapter: Adapter = {
    // Dynamic registration stores through here: the secret is hashed or encrypted (clients/secrets.ts).
    async upsert(id, payload) {
      refuseNul(payload);
      let sealed: ClientMetadata;
      try {
        sealed = sealClientMetadata({ ...(payload as Payload), client_id: id } as ClientMetadata, secrets);
      } catch (error) {
        if (error instanceof UnsealableSecretError) throw new errors.InvalidClientMetadata(error.message);
        throw error;
      }
      await clients.save(sealed);
    },
    // The cache's own promise (a cached one on a hit), not an async wrapper's around it.
    find(id) {
      return findClient(id);
    },
    async destroy(id) {
      await clients.destroy(id);
    },
    // Clients are neither looked up by uid or user code, consumed, nor part of a grant.
    async findByUid() {
      return undefined;
    },
    async findByUserCode() {
      return undefined;
    },
    async consume() {},
    async revokeByGrantId() {},
  };

  function artifactAdapter(model: string): Adapter {
    // Found within an engine request, these are read with what the engine asks for next (request-reads.ts).
    const readWithBindings =
      model === 'Session' ? findSessionWithBindings : model === 'Interaction' ? findInteractionWithBindings : READ_WITH_BINDINGS.has(model) ? findWithBindings : undefined;
    return {
      async upsert(id, payload, expiresIn) {
        refuseNul(payload);
        reads.dropWritten(model);
        const expiresAt = expiresIn ? new Date(now().getTime() + (expiresIn + (KEPT_AFTER_EXPIRY[model] ?? 0)) * 1000) : null;
        await artifacts.save(
          model,
          storedId(model, id),
          sealPayload(model, payload as Payload, secrets),
          {
            // A grant is its own grant: indexing it by its id lets one delete end all of it.
            grantId: model === 'Grant' ? id : text(payload.grantId),
            uid: text(payload.uid),
            userCode: text(payload.userCode),
            accountId: text(payload.accountId),
            clientId: text(payload.clientId),
          },
          expiresAt,
        );
      },

      // Hands back the promise of the read it chose: an async wrapper returning it would add two promises.
      find(id) {
        const request = readWithBindings && reads.current();
        return request ? readWithBindings(request, id) : findById(id);
      },

      async findByUid(uid) {
        const readAhead = model === 'Session' ? reads.take(sessionKey(uid)) : undefined;
        return toPayload(model, readAhead !== undefined ? readAhead : await artifacts.findBy(model, 'uid', uid, now()), secrets);
      },

      async findByUserCode(userCode) {
        return toPayload(model, await artifacts.findBy(model, 'userCode', userCode, now()), secrets);
      },

      // Atomic: exactly one of any number of concurrent calls succeeds. The engine checks
      // `consumed` before it calls this, so a refusal here means another request redeemed the
      // same value in the meantime: treat it as replay, end the grant, and refuse this one.
      async consume(id) {
        reads.dropWritten(model);
        const at = now();
        const key = storedId(model, id);
        if (await artifacts.consume(model, key, at)) return;
        const label = GRANT_SOURCES[model];
        if (!label) throw new errors.InvalidRequest(`${model} was already used or has expired`);
        const replayed = await artifacts.find(model, key, at);
        if (replayed?.consumedAt) {
          reads.dropWritten();
          if (replayed.grantId) await artifacts.destroyByGrantId(replayed.grantId);
          throw new errors.InvalidGrant(`${label} already consumed`);
        }
        throw new errors.InvalidGrant(`${label} not found or expired`);
      },

      async destroy(id) {
        reads.dropWritten(model);
        await artifacts.destroy(model, storedId(model, id));
      },

      async revokeByGrantId(grantId) {
        reads.dropWritten(model);
        await artifacts.destroyByGrantId(grantId, model);
      },
    };

    /** find() by id alone: a grant the request read with its token, or the row. */
    async function findById(id: string) {
      const readAhead = model === 'Grant' ? reads.take(grantKey(id)) : undefined;
      const row = readAhead !== undefined ? readAhead : await artifacts.find(model, storedId(model, id), now());
      return toPayload(model, row, secrets, id);
    }

    /** The token, and kept for the rest of the request: its session, its grant and its person, read in the same statement. */
    async function findWithBindings(request: object, id: string) {
      const bound = await artifacts.findWithBindings(model, storedId(model, id), now());
      if (!bound) return undefined;
      const { sessionUid } = bound.token.payload;
      const { grantId } = bound.token;
      const rows: KeptRead[] = [];
      if (typeof sessionUid === 'string') rows.push([sessionKey(sessionUid), bound.session]);
      if (grantId) rows.push([grantKey(grantId), bound.grant]);
      if (bound.accountId) rows.push([personKey(bound.accountId), bound.person]);
      reads.keep(request, rows);
      return toPayload(model, bound.token, secrets, id);
    }
  }

  /**
   * The session a request's cookie names, and kept for the rest of the request (request-reads.ts):
   * its person, and its grant for the client the request names in its query (the engine loads the
   * session before it reads the request's parameters; a request naming none keeps no grant).
   */
  async function findSessionWithBindings(request: object, id: string) {
    const clientId = clientInQuery(request);
    const bound = await artifacts.findSessionWithBindings(storedId('Session', id), clientId, now());
    if (!bound) return undefined;
    const rows: KeptRead[] = [];
    const grantId = clientId === null ? undefined : grantIdFor(bound.session.payload, clientId);
    if (grantId) rows.push([grantKey(grantId), bound.grant]);
    if (bound.accountId) rows.push([personKey(bound.accountId), bound.person]);
    reads.keep(request, rows);
    return toPayload('Session', bound.session, secrets, id);
  }

  /**
   * An interaction an engine request finds (an authorization resuming it), and kept for the rest
   * of the request (request-reads.ts): the person its result's login names, and their newest grant
   * for its client, which the engine asks for next (findAccount, loadExistingGrant).
   */
  async function findInteractionWithBindings(request: object, id: string) {
    const bound = await artifacts.findInteractionWithBindings(id, now());
    if (!bound) return undefined;
    const { payload } = bound.interaction;
    const accountId = text((payload.result as { login?: { accountId?: unknown } } | undefined)?.login?.accountId);
    const clientId = text((payload.params as { client_id?: unknown } | undefined)?.client_id);
    const rows: KeptRead[] = [];
    if (accountId) {
      rows.push([personKey(accountId), bound.person]);
      if (clientId) rows.push([latestGrantKey(accountId, clientId), bound.latestGrant]);
    }
    reads.keep(request, rows);
    return toPayload('Interaction', bound.interaction, secrets, id);
  }

  const adapters = new Map<string, Adapter>();
  return (model: string) => {
    let adapter = adapters.get(model);
    if (!adapter) {
      adapter = model === 'Client' ? clientAdapter : artifactAdapter(model);
      adapters.set(model, adapter);
    }
    return adapter;
  };
}

/** Deletes expired artifacts every `intervalSeconds`; returns a function that stops it. */
export function startSweeper(db: Db, intervalSeconds: number, onError: (error: unknown) => void, now: Clock = () => new Date()): () => void {
  if (intervalSeconds <= 0) return () => {};
  const artifacts = createArtifactStore(db);
  const timer = setInterval(() => {
    artifacts.deleteExpired(now()).catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
