// Queries on SigningKey: token signing keys, private halves encrypted by the caller. The two
// lists every start reads, the first keys a first start writes, and the key refresher's poll
// (every KEY_REFRESH_INTERVAL) are written in SQL on the executor (db/settings.ts says why): the
// poll's first run, half a minute after a start, no longer compiles a query of Prisma's while the
// instance serves.
import type { DbHandle } from '../db/client.js';
import { dialectOf, readJson, readTime } from '../db/dialect.js';
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
  const { prisma } = db;
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  const meta = '"id", "alg", "generation", "createdAt", "activatesAt", "retireAfter", "retiredAt"';
  const select = `SELECT ${meta}, "publicJwk", "privateJwkEncrypted" FROM "SigningKey"`;
  const newestFirst = 'ORDER BY "alg" ASC, "generation" DESC';
  const statements = {
    active: { name: 'signing_keys_active', text: dialect.sql(`${select} WHERE "retiredAt" IS NULL ${newestFirst}`) },
    activeMeta: { name: 'signing_keys_active_meta', text: dialect.sql(`SELECT ${meta} FROM "SigningKey" WHERE "retiredAt" IS NULL ${newestFirst}`) },
    all: { name: 'signing_keys_all', text: dialect.sql(`${select} ${newestFirst}`) },
    // Refused without an error when (alg, generation) is taken (or, never in practice, the id).
    insertUnlessTaken: {
      name: 'signing_key_insert_unless_taken',
      text: dialect.sql(
        `INSERT INTO "SigningKey" ("id", "alg", "generation", "publicJwk", "privateJwkEncrypted", "createdAt", "activatesAt")
         VALUES (?, ?, ?, ${dialect.json}, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
    },
  };
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
      return ((await prisma.signingKey.findUnique({ where: { id } })) as StoredKey | null) ?? undefined;
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
      const rows = await prisma.signingKey.findMany({
        where: { alg, generation: { lt: belowGeneration }, retireAfter: null, retiredAt: null },
        select: { id: true },
      });
      if (rows.length) await prisma.signingKey.updateMany({ where: { id: { in: rows.map((r) => r.id) }, retireAfter: null }, data: { retireAfter } });
      return rows.map((r) => r.id);
    },

    /** Marks keys whose retirement date has passed as retired; returns their ids. */
    async retireDue(now: Date): Promise<string[]> {
      const rows = await prisma.signingKey.findMany({ where: { retiredAt: null, retireAfter: { lte: now } }, select: { id: true } });
      if (rows.length) await prisma.signingKey.updateMany({ where: { id: { in: rows.map((r) => r.id) }, retiredAt: null }, data: { retiredAt: now } });
      return rows.map((r) => r.id);
    },

    async reencrypt(id: string, privateJwkEncrypted: string): Promise<void> {
      await prisma.signingKey.update({ where: { id }, data: { privateJwkEncrypted } });
    },
  };
}

export type SigningKeyStore = ReturnType<typeof createSigningKeyStore>;
