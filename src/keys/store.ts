// Queries on SigningKey: token signing keys, private halves encrypted by the caller. Every one is
// written in SQL on the executor (db/settings.ts says why), for each runs in a serving process:
// the lists every start reads, the first keys a first start writes, the key refresher's poll
// (every KEY_REFRESH_INTERVAL) and its read of a key another instance added, a scheduled
// rotation, the retirement of keys past their date (every SWEEP_INTERVAL) and the re-sealing of
// keys after SECRETS changed. Through Prisma's client, the first of them would load its query
// compiler into the process for as long as it runs (test/server/start-queries.test.ts).
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul, readJson, readTime } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';

export interface StoredKey {
  id: string;
  alg: string;
  generation: number;
  publicJwk: Record<string, unknown>;
  privateJwkEncrypted: string;
  createdAt: Date;
  /** Null: signing since it was created. */
  activatesAt: Date | null;
  /** Null until a newer key supersedes it. */
  retireAfter: Date | null;
  retiredAt: Date | null;
}

/** A key without its key material: enough to work out its state. */
export type KeyMeta = Omit<StoredKey, 'publicJwk' | 'privateJwkEncrypted'>;

export type NewKey = Pick<StoredKey, 'id' | 'alg' | 'generation' | 'publicJwk' | 'privateJwkEncrypted'> & { activatesAt?: Date | null; createdAt?: Date };

/** A key as the driver reads it: SQLite's integers as bigints, its times as epoch milliseconds, its JSON as text. */
interface RawKey {
  id: string;
  alg: string;
  generation: number | bigint;
  publicJwk: unknown;
  privateJwkEncrypted: string;
  createdAt: unknown;
  activatesAt: unknown;
  retireAfter: unknown;
  retiredAt: unknown;
}

type RawKeyMeta = Omit<RawKey, 'publicJwk' | 'privateJwkEncrypted'>;

const toKeyMeta = (raw: RawKeyMeta): KeyMeta => ({
  id: raw.id,
  alg: raw.alg,
  generation: Number(raw.generation),
  createdAt: readTime(raw.createdAt) as Date,
  activatesAt: readTime(raw.activatesAt),
  retireAfter: readTime(raw.retireAfter),
  retiredAt: readTime(raw.retiredAt),
});

const toStoredKey = (raw: RawKey): StoredKey => ({ ...toKeyMeta(raw), publicJwk: readJson(raw.publicJwk), privateJwkEncrypted: raw.privateJwkEncrypted });

export function createSigningKeyStore(db: DbHandle) {
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  const meta = '"id", "alg", "generation", "createdAt", "activatesAt", "retireAfter", "retiredAt"';
  const select = `SELECT ${meta}, "publicJwk", "privateJwkEncrypted" FROM "SigningKey"`;
  const newestFirst = 'ORDER BY "alg" ASC, "generation" DESC';
  const statements = {
    active: { name: 'signing_keys_active', text: dialect.sql(`${select} WHERE "retiredAt" IS NULL ${newestFirst}`) },
    activeMeta: { name: 'signing_keys_active_meta', text: dialect.sql(`SELECT ${meta} FROM "SigningKey" WHERE "retiredAt" IS NULL ${newestFirst}`) },
    all: { name: 'signing_keys_all', text: dialect.sql(`${select} ${newestFirst}`) },
    byId: { name: 'signing_key_by_id', text: dialect.sql(`${select} WHERE "id" = ?`) },
    // Refused without an error when (alg, generation) is taken (or, never in practice, the id).
    insertUnlessTaken: {
      name: 'signing_key_insert_unless_taken',
      text: dialect.sql(
        `INSERT INTO "SigningKey" ("id", "alg", "generation", "publicJwk", "privateJwkEncrypted", "createdAt", "activatesAt")
         VALUES (?, ?, ?, ${dialect.json}, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
    },
    // Each stamps only the rows still without the stamp and names them, in one statement: of two
    // instances retiring or rotating at once, each key is named by exactly one.
    scheduleRetirement: {
      name: 'signing_keys_schedule_retirement',
      text: dialect.sql('UPDATE "SigningKey" SET "retireAfter" = ? WHERE "alg" = ? AND "generation" < ? AND "retireAfter" IS NULL AND "retiredAt" IS NULL RETURNING "id"'),
    },
    retireDue: { name: 'signing_keys_retire_due', text: dialect.sql('UPDATE "SigningKey" SET "retiredAt" = ? WHERE "retiredAt" IS NULL AND "retireAfter" <= ? RETURNING "id"') },
    reseal: { name: 'signing_key_reseal', text: dialect.sql('UPDATE "SigningKey" SET "privateJwkEncrypted" = ? WHERE "id" = ?') },
  };
  const ids = (rows: { id: string }[]) => rows.map((row) => row.id);
  return {
    /** Keys not yet marked retired, newest generation first within each algorithm. */
    async listActive(): Promise<StoredKey[]> {
      return (await sql.rows<RawKey>(statements.active, [])).map(toStoredKey);
    },

    /** listActive without the key material: the key refresher's cheap poll. */
    async listActiveMeta(): Promise<KeyMeta[]> {
      return (await sql.rows<RawKeyMeta>(statements.activeMeta, [])).map(toKeyMeta);
    },

    async find(id: string): Promise<StoredKey | undefined> {
      if (hasNul(id)) return undefined;
      const [raw] = await sql.rows<RawKey>(statements.byId, [id]);
      return raw && toStoredKey(raw);
    },

    /** Every key, retired ones included, newest generation first within each algorithm. */
    async listAll(): Promise<StoredKey[]> {
      return (await sql.rows<RawKey>(statements.all, [])).map(toStoredKey);
    },

    /**
     * Inserts a key unless (alg, generation) is already taken, which is how concurrent first
     * starts and concurrent rotations agree on one key: the loser's insert is refused.
     */
    async insertIfGenerationFree(key: NewKey): Promise<boolean> {
      const { id, alg, generation, publicJwk, privateJwkEncrypted, createdAt = new Date(), activatesAt = null } = key;
      const args = [id, alg, generation, JSON.stringify(publicJwk), privateJwkEncrypted, dialect.time(createdAt), activatesAt && dialect.time(activatesAt)];
      return (await sql.changes(statements.insertUnlessTaken, args)) === 1;
    },

    /**
     * Gives every older key of `alg` without a retirement date one. A key superseded twice keeps
     * the first (later-or-equal keys only ever extend how long it stays published).
     */
    async scheduleRetirement(alg: string, belowGeneration: number, retireAfter: Date): Promise<string[]> {
      return ids(await sql.rows<{ id: string }>(statements.scheduleRetirement, [dialect.time(retireAfter), alg, belowGeneration]));
    },

    /** Marks keys whose retirement date has passed as retired; returns their ids. */
    async retireDue(now: Date): Promise<string[]> {
      const at = dialect.time(now);
      return ids(await sql.rows<{ id: string }>(statements.retireDue, [at, at]));
    },

    /** Replaces a key's sealed private half (sealed again with the newest secret); a key deleted meanwhile stays deleted. */
    async reencrypt(id: string, privateJwkEncrypted: string): Promise<void> {
      await sql.changes(statements.reseal, [privateJwkEncrypted, id]);
    },
  };
}

export type SigningKeyStore = ReturnType<typeof createSigningKeyStore>;
