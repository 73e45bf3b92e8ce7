// Queries on OidcArtifact: everything the engine stores through its adapter, keyed by
// (model, id). Expiry is compared against a `now` the caller passes, so tests can control time.
// The statements the engine runs on every token and userinfo request (save, find, consume,
// destroy) are written in SQL (dialect.ts) and run, kept prepared, on the driver
// (db/executor.ts); the rest use Prisma's query builder. While the engine serves a request whose
// answer waits for its writes, save and destroy are kept until that answer (db/deferred-writes.ts),
// and every other call first commits what the request kept, if it kept a write of a model the
// call touches.
//
// findWithBindings also reads the token's person (its accountId's User row), for the engine's
// findAccount right after, and findSessionWithBindings a session's person and grant; the row's
// columns and mapping are the people store's own, kept in db/user-row.ts because this folder sits
// below people/.
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul, readJson, readTime } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import { joinedUser, userColumns } from '../db/user-row.js';
import type { User } from '../generated/sqlite/client.js';

export type Payload = Record<string, unknown>;

export interface ArtifactRow {
  payload: Payload;
  grantId: string | null;
  consumedAt: Date | null;
  expiresAt: Date | null;
}

/** The columns an artifact is looked up by besides (model, id); a save sets every one of them. */
export interface ArtifactLookups {
  grantId: string | null;
  uid: string | null;
  userCode: string | null;
  accountId: string | null;
  clientId: string | null;
}

const COLUMNS = '"payload", "grantId", "consumedAt", "expiresAt"';
const LIVE = '("expiresAt" IS NULL OR "expiresAt" > ?)';

interface RawArtifact {
  payload: unknown;
  grantId: string | null;
  consumedAt: unknown;
  expiresAt: unknown;
}

const toRow = (raw: RawArtifact | undefined): ArtifactRow | null =>
  raw ? { payload: readJson<Payload>(raw.payload), grantId: raw.grantId, consumedAt: readTime(raw.consumedAt), expiresAt: readTime(raw.expiresAt) } : null;

/** A grant's columns read by a LEFT JOIN, prefixed g_ (each null when it matched none). */
interface RawJoinedGrant {
  g_payload: unknown;
  g_grantId: string | null;
  g_consumedAt: unknown;
  g_expiresAt: unknown;
}

/** A session's row with its grant's for one client (g_); its accountId, and that person's columns prefixed u_ (userColumns('u')). */
interface RawBoundSession extends RawArtifact, RawJoinedGrant {
  accountId: string | null;
}

/** A token's row, as a session's is read with its grant and person, and with its session's, prefixed s_. */
interface RawBoundArtifact extends RawBoundSession {
  s_payload: unknown;
  s_grantId: string | null;
  s_consumedAt: unknown;
  s_expiresAt: unknown;
}

function joined(raw: RawBoundSession | RawBoundArtifact | RawBoundInteraction, prefix: 's_' | 'g_'): ArtifactRow | null {
  const columns = raw as unknown as Record<string, unknown>;
  const payload = columns[`${prefix}payload`];
  if (payload === null || payload === undefined) return null;
  return toRow({ payload, grantId: columns[`${prefix}grantId`] as string | null, consumedAt: columns[`${prefix}consumedAt`], expiresAt: columns[`${prefix}expiresAt`] });
}

/** What findWithBindings read: the token, and what the engine asks for after it. */
export interface BoundArtifact {
  token: ArtifactRow;
  /** The live session whose uid the token's payload names (sessionUid), if any. */
  session: ArtifactRow | null;
  /** The live grant the token belongs to, if any. */
  grant: ArtifactRow | null;
  /** The account the token was issued for (its accountId column), if any. */
  accountId: string | null;
  /** That account's person, as people/store.ts findById reads it; null when the token has no account or it is gone. */
  person: User | null;
}

/** The newest live grant an account gave a client: its id and its row, as find reads it. */
export interface LatestGrant {
  id: string;
  row: ArtifactRow;
}

/** What findInteractionWithBindings read: the interaction, and what a resumed authorization asks for after it. */
export interface BoundInteraction {
  interaction: ArtifactRow;
  /** The person its result's login names (result.login.accountId), as people/store.ts findById reads it; null when it names none or they are gone. */
  person: User | null;
  /** That account's newest live grant for the interaction's client (params.client_id), as latestGrant reads it. */
  latestGrant: LatestGrant | null;
}

/** An interaction's row with its login's person (u_) and that person's newest grant for its client (g_, with its id). */
interface RawBoundInteraction extends RawArtifact, RawJoinedGrant {
  g_id: string | null;
}

/** What findSessionWithBindings read: the session, and what the engine's authorization endpoint asks for after it. */
export interface BoundSession {
  session: ArtifactRow;
  /** The live grant the session holds for the client asked about (its authorizations[clientId].grantId), if any. */
  grant: ArtifactRow | null;
  /** The account signed in to the session (its accountId column), if any. */
  accountId: string | null;
  /** That account's person, as people/store.ts findById reads it; null when the session has no account or it is gone. */
  person: User | null;
}

const live = (now: Date) => ({ OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] });

export function createArtifactStore(db: DbHandle) {
  const { prisma } = db;
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  // The outer condition is checked again on the row as it is when deleted: one an upsert renewed
  // after the inner SELECT saw it expired stays (PostgreSQL rechecks it on the new row version).
  const expiredBatch = {
    name: 'artifact_sweep',
    text: dialect.sql('DELETE FROM "OidcArtifact" WHERE "expiresAt" <= ? AND ("model", "id") IN (SELECT "model", "id" FROM "OidcArtifact" WHERE "expiresAt" <= ? LIMIT ?)'),
  };
  // Saves and deletes by id may be kept for the request's answer; everything else first runs what
  // the request kept of the models it touches (`await kept(models)`; all of it without them), so
  // that a request always sees its own writes. The reads a request makes on every token, userinfo
  // and authorization request await only when there is something to wait for: an `await` costs a
  // promise even on nothing, and with the engine's AsyncLocalStorage an async-hook call for it.
  const { deferred } = db;
  const write = (model: string, run: () => Promise<unknown>) => (deferred ? deferred.write(run, model) : run());
  const kept = (...models: string[]) => deferred?.flush(models.length ? models : undefined);
  const statement = (name: string, text: string) => ({ name: `artifact_${name}`, text: dialect.sql(text) });
  const statements = {
    // One statement whether the row is new or not; no read after the write.
    save: statement(
      'save',
      `INSERT INTO "OidcArtifact" ("model", "id", "payload", "grantId", "uid", "userCode", "accountId", "clientId", "expiresAt", "createdAt")
       VALUES (?, ?, ${dialect.json}, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT ("model", "id") DO UPDATE SET "payload" = excluded."payload", "grantId" = excluded."grantId", "uid" = excluded."uid",
         "userCode" = excluded."userCode", "accountId" = excluded."accountId", "clientId" = excluded."clientId", "expiresAt" = excluded."expiresAt"`,
    ),
    find: statement('find', `SELECT ${COLUMNS} FROM "OidcArtifact" WHERE "model" = ? AND "id" = ? AND ${LIVE}`),
    findByUid: statement('find_by_uid', `SELECT ${COLUMNS} FROM "OidcArtifact" WHERE "model" = ? AND "uid" = ? AND ${LIVE} LIMIT 1`),
    findByUserCode: statement('find_by_user_code', `SELECT ${COLUMNS} FROM "OidcArtifact" WHERE "model" = ? AND "userCode" = ? AND ${LIVE} LIMIT 1`),
    // Conditional, so two instances consuming the same code at once cannot both succeed.
    consume: statement('consume', `UPDATE "OidcArtifact" SET "consumedAt" = ? WHERE "model" = ? AND "id" = ? AND "consumedAt" IS NULL AND ${LIVE}`),
    grantIdOf: statement('grant_id_of', `SELECT "grantId" FROM "OidcArtifact" WHERE "model" = ? AND "id" = ?`),
    destroy: statement('destroy', `DELETE FROM "OidcArtifact" WHERE "model" = ? AND "id" = ?`),
    // A grant's artifacts: the engine revokes a grant model by model (a revoked refresh token, a
    // sign-out, a replayed code), and a replay or a person's action ends all of it at once.
    destroyByGrant: statement('destroy_by_grant', `DELETE FROM "OidcArtifact" WHERE "grantId" = ?`),
    destroyByGrantOfModel: statement('destroy_by_grant_of_model', `DELETE FROM "OidcArtifact" WHERE "model" = ? AND "grantId" = ?`),
    // A token, and in the same statement the session it is bound to, its grant and its person:
    // the engine looks the first two up right after a token on /userinfo, /token (refresh, code)
    // and introspection, and the person (findAccount) on the first two. Each join applies the same
    // conditions as the lookup it stands for (find, findByUid, people/store.ts findById).
    findWithBindings: statement(
      'find_with_bindings',
      `SELECT t."payload", t."grantId", t."consumedAt", t."expiresAt", t."accountId",
         s."payload" AS "s_payload", s."grantId" AS "s_grantId", s."consumedAt" AS "s_consumedAt", s."expiresAt" AS "s_expiresAt",
         g."payload" AS "g_payload", g."grantId" AS "g_grantId", g."consumedAt" AS "g_consumedAt", g."expiresAt" AS "g_expiresAt",
         ${userColumns('u')}
       FROM "OidcArtifact" t
       LEFT JOIN "OidcArtifact" s ON s."model" = 'Session' AND s."uid" = ${dialect.jsonText('t."payload"', 'sessionUid')} AND (s."expiresAt" IS NULL OR s."expiresAt" > ?)
       LEFT JOIN "OidcArtifact" g ON g."model" = 'Grant' AND g."id" = t."grantId" AND (g."expiresAt" IS NULL OR g."expiresAt" > ?)
       LEFT JOIN "User" u ON u."id" = t."accountId"
       WHERE t."model" = ? AND t."id" = ? AND (t."expiresAt" IS NULL OR t."expiresAt" > ?)
       LIMIT 1`,
    ),
    // A session (by the browser's cookie), and in the same statement its person and its grant
    // for one client (the payload's authorizations[clientId].grantId): an authorization request
    // looks both up right after its session (the account; the grant, to remember consent).
    // Each join applies the same conditions as the lookup it stands for (find, people/store.ts findById).
    findSessionWithBindings: statement(
      'find_session_with_bindings',
      `SELECT s."payload", s."grantId", s."consumedAt", s."expiresAt", s."accountId",
         g."payload" AS "g_payload", g."grantId" AS "g_grantId", g."consumedAt" AS "g_consumedAt", g."expiresAt" AS "g_expiresAt",
         ${userColumns('u')}
       FROM "OidcArtifact" s
       LEFT JOIN "OidcArtifact" g ON g."model" = 'Grant' AND g."id" = ${dialect.jsonKeyedText('s."payload"', 'authorizations', 'grantId')} AND (g."expiresAt" IS NULL OR g."expiresAt" > ?)
       LEFT JOIN "User" u ON u."id" = s."accountId"
       WHERE s."model" = 'Session' AND s."id" = ? AND (s."expiresAt" IS NULL OR s."expiresAt" > ?)
       LIMIT 1`,
    ),
    // An interaction, and in the same statement the person its result's login names and that
    // person's newest live grant for its client (latestGrant's lookup): an authorization resumed
    // after a sign-in looks both up right after its interaction. Each join applies the same
    // conditions as the lookup it stands for (people/store.ts findById, latestGrant).
    findInteractionWithBindings: statement(
      'find_interaction_with_bindings',
      `SELECT i."payload", i."grantId", i."consumedAt", i."expiresAt",
         g."id" AS "g_id", g."payload" AS "g_payload", g."grantId" AS "g_grantId", g."consumedAt" AS "g_consumedAt", g."expiresAt" AS "g_expiresAt",
         ${userColumns('u')}
       FROM "OidcArtifact" i
       LEFT JOIN "User" u ON u."id" = ${dialect.jsonText('i."payload"', 'result.login.accountId')}
       LEFT JOIN "OidcArtifact" g ON g."model" = 'Grant' AND g."id" = (
         SELECT n."id" FROM "OidcArtifact" n
         WHERE n."model" = 'Grant' AND n."accountId" = ${dialect.jsonText('i."payload"', 'result.login.accountId')}
           AND n."clientId" = ${dialect.jsonText('i."payload"', 'params.client_id')} AND (n."expiresAt" IS NULL OR n."expiresAt" > ?)
         ORDER BY n."createdAt" DESC LIMIT 1)
       WHERE i."model" = 'Interaction' AND i."id" = ? AND (i."expiresAt" IS NULL OR i."expiresAt" > ?)
       LIMIT 1`,
    ),
    // Every authorization request of a signed-in person asks whether consent was given before:
    // the grant's id and its row, which the engine looks up by that id right after.
    latestGrant: statement(
      'latest_grant',
      `SELECT "id", ${COLUMNS} FROM "OidcArtifact" WHERE "model" = 'Grant' AND "accountId" = ? AND "clientId" = ? AND ${LIVE} ORDER BY "createdAt" DESC LIMIT 1`,
    ),
  };

  return {
    /** Kept until the answer while the engine serves a request whose answer waits for its writes (db/deferred-writes.ts). */
    async save(model: string, id: string, payload: Payload, lookups: ArtifactLookups, expiresAt: Date | null): Promise<void> {
      const { grantId, uid, userCode, accountId, clientId } = lookups;
      // The row as it is now: the engine may change its object after this call.
      const args = [model, id, JSON.stringify(payload), grantId, uid, userCode, accountId, clientId, expiresAt && dialect.time(expiresAt), dialect.time(new Date())];
      await write(model, () => sql.changes(statements.save, args));
    },

    async find(model: string, id: string, now: Date): Promise<ArtifactRow | null> {
      if (hasNul(id)) return null;
      const pending = kept(model);
      if (pending) await pending;
      const [row] = await sql.rows<RawArtifact>(statements.find, [model, id, dialect.time(now)]);
      return toRow(row);
    },

    /** find(), and with the token, read in the same statement, its session (by the payload's sessionUid), its grant and its person. */
    async findWithBindings(model: string, id: string, now: Date): Promise<BoundArtifact | null> {
      if (hasNul(id)) return null;
      const pending = kept(model, 'Session', 'Grant');
      if (pending) await pending;
      const at = dialect.time(now);
      const [raw] = await sql.rows<RawBoundArtifact>(statements.findWithBindings, [at, at, model, id, at]);
      if (!raw) return null;
      return { token: toRow(raw) as ArtifactRow, session: joined(raw, 's_'), grant: joined(raw, 'g_'), accountId: raw.accountId, person: joinedUser(raw, 'u') };
    },

    /** find() of a session, and with it, in the same statement, its person and its grant for `clientId` (null: for no client). */
    async findSessionWithBindings(id: string, clientId: string | null, now: Date): Promise<BoundSession | null> {
      if (hasNul(id)) return null;
      const pending = kept('Session', 'Grant');
      if (pending) await pending;
      const at = dialect.time(now);
      const [raw] = await sql.rows<RawBoundSession>(statements.findSessionWithBindings, [clientId !== null && hasNul(clientId) ? null : clientId, at, id, at]);
      if (!raw) return null;
      return { session: toRow(raw) as ArtifactRow, grant: joined(raw, 'g_'), accountId: raw.accountId, person: joinedUser(raw, 'u') };
    },

    /** find() of an interaction, and with it, in the same statement, its login's person and their newest grant for its client. */
    async findInteractionWithBindings(id: string, now: Date): Promise<BoundInteraction | null> {
      if (hasNul(id)) return null;
      const pending = kept('Interaction', 'Grant');
      if (pending) await pending;
      const at = dialect.time(now);
      const [raw] = await sql.rows<RawBoundInteraction>(statements.findInteractionWithBindings, [at, id, at]);
      if (!raw) return null;
      const grant = joined(raw, 'g_');
      return { interaction: toRow(raw) as ArtifactRow, person: joinedUser(raw, 'u'), latestGrant: grant && raw.g_id !== null ? { id: raw.g_id, row: grant } : null };
    },

    async findBy(model: string, field: 'uid' | 'userCode', value: string, now: Date): Promise<ArtifactRow | null> {
      if (hasNul(value)) return null;
      const pending = kept(model);
      if (pending) await pending;
      const [row] = await sql.rows<RawArtifact>(field === 'uid' ? statements.findByUid : statements.findByUserCode, [model, value, dialect.time(now)]);
      return toRow(row);
    },

    /** Marks a live, unconsumed artifact consumed. False when it was already consumed, expired or gone. */
    async consume(model: string, id: string, now: Date): Promise<boolean> {
      if (hasNul(id)) return false;
      await kept(model);
      const count = await sql.changes(statements.consume, [dialect.time(now), model, id, dialect.time(now)]);
      return count === 1;
    },

    async grantIdOf(model: string, id: string): Promise<string | null> {
      if (hasNul(id)) return null;
      await kept(model);
      const [row] = await sql.rows<{ grantId: string | null }>(statements.grantIdOf, [model, id]);
      return row?.grantId ?? null;
    },

    /** Kept until the answer, as save() is. */
    async destroy(model: string, id: string): Promise<void> {
      if (hasNul(id)) return;
      await write(model, () => sql.changes(statements.destroy, [model, id]));
    },

    async destroyByGrantId(grantId: string, model?: string): Promise<number> {
      if (hasNul(grantId)) return 0;
      await (model ? kept(model) : kept());
      return sql.changes(model ? statements.destroyByGrantOfModel : statements.destroyByGrant, model ? [model, grantId] : [grantId]);
    },

    /** The newest live grant an account gave a client (its id and row, as find reads it), to remember consent across sessions. */
    async latestGrant(accountId: string, clientId: string, now: Date): Promise<LatestGrant | null> {
      if (hasNul(accountId) || hasNul(clientId)) return null;
      await kept('Grant');
      const [raw] = await sql.rows<RawArtifact & { id: string }>(statements.latestGrant, [accountId, clientId, dialect.time(now)]);
      return raw ? { id: raw.id, row: toRow(raw) as ArtifactRow } : null;
    },

    /** An account's live artifacts of one model (its grants, its sessions), oldest first. */
    async listByAccount(model: string, accountId: string, now: Date) {
      if (hasNul(accountId)) return [];
      await kept(model);
      return prisma.oidcArtifact.findMany({
        where: { model, accountId, ...live(now) },
        orderBy: { createdAt: 'asc' },
        select: { id: true, payload: true, clientId: true, createdAt: true },
      }) as Promise<{ id: string; payload: Payload; clientId: string | null; createdAt: Date }[]>;
    },

    /** Deletes an account's artifacts of one model, except the ids given; returns how many. */
    async destroyByAccount(model: string, accountId: string, except: readonly string[] = []): Promise<number> {
      await kept(model);
      const { count } = await prisma.oidcArtifact.deleteMany({ where: { model, accountId, id: { notIn: [...except] } } });
      return count;
    },

    /** Deletes every artifact issued to a client (its grants, codes, tokens, registration token); returns how many. */
    async destroyByClient(clientId: string): Promise<number> {
      if (hasNul(clientId)) return 0;
      await kept();
      const { count } = await prisma.oidcArtifact.deleteMany({ where: { clientId } });
      return count;
    },

    /** Deletes an account's artifact of one model found by its uid (a session); false when there is none. */
    async destroyByUid(model: string, uid: string, accountId: string): Promise<boolean> {
      if (hasNul(uid) || hasNul(accountId)) return false;
      await kept(model);
      const { count } = await prisma.oidcArtifact.deleteMany({ where: { model, uid, accountId } });
      return count > 0;
    },

    /**
     * Deletes what expired by `now`, `batchSize` rows per statement: one DELETE of a million rows
     * would hold SQLite's write lock (and a PostgreSQL transaction) for its whole duration, while
     * between batches the engine's own writes get their turn. SQL on the executor, as every
     * background job's statement (server.ts, startBackgroundJobs).
     */
    async deleteExpired(now: Date, batchSize = 2000): Promise<number> {
      let deleted = 0;
      for (;;) {
        const count = await sql.changes(expiredBatch, [dialect.time(now), dialect.time(now), batchSize]);
        deleted += count;
        if (count < batchSize) return deleted;
      }
    },
  };
}

export type ArtifactStore = ReturnType<typeof createArtifactStore>;
