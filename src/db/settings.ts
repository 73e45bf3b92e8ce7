// Queries on Setting: per-deployment values created once and shared by every instance. Every
// start reads two (the at-rest rewrite's mark, the pairwise salt), the first start writes them,
// and a start after SECRETS changed seals the salt again, in SQL on the executor like the signing
// keys (keys/store.ts): a start then compiles none
// of Prisma's queries, whose first compilations (in its WebAssembly query compiler, while that
// code is cold) took 10–30 % of a start (test/bench/ROUNDS.md, round 24), nor, on a new
// database, loads that compiler at all (8–30 MB kept for the process's life; round 29).
import type { DbHandle } from './client.js';
import { dialectOf } from './dialect.js';
import { executorOf } from './executor.js';

export function createSettingStore(db: DbHandle) {
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  const statements = {
    byKey: { name: 'setting_by_key', text: dialect.sql('SELECT "valueEncrypted" FROM "Setting" WHERE "key" = ?') },
    // A key another instance (or call) stored first is left as it is: theirs is the value.
    insertUnlessStored: { name: 'setting_insert_unless_stored', text: dialect.sql('INSERT INTO "Setting" ("key", "valueEncrypted", "createdAt") VALUES (?, ?, ?) ON CONFLICT ("key") DO NOTHING') },
    replace: { name: 'setting_replace', text: dialect.sql('UPDATE "Setting" SET "valueEncrypted" = ? WHERE "key" = ?') },
  };
  const get = async (key: string): Promise<string | null> => (await sql.rows<{ valueEncrypted: string }>(statements.byKey, [key]))[0]?.valueEncrypted ?? null;

  return {
    get,

    /** Stores the value unless the key exists; returns whichever value is stored (first writer wins). */
    async getOrCreate(key: string, valueEncrypted: string): Promise<string> {
      const stored = await get(key);
      if (stored !== null) return stored;
      if (await sql.changes(statements.insertUnlessStored, [key, valueEncrypted, dialect.time(new Date())])) return valueEncrypted;
      const theirs = await get(key);
      if (theirs === null) throw new Error(`the setting ${key} was refused as a duplicate but is not there`);
      return theirs;
    },

    /** Replaces the value of a key that is stored (getOrCreate stores one). */
    async set(key: string, valueEncrypted: string): Promise<void> {
      if (!(await sql.changes(statements.replace, [valueEncrypted, key]))) throw new Error(`the setting ${key} is not stored, so it cannot be replaced`);
    },
  };
}
