// Queries on Setting: per-deployment values created once and shared by every instance. Every
// start reads two (the at-rest rewrite's mark, the pairwise salt), written in SQL on the executor
// like the signing keys it reads (keys/store.ts): a start then compiles none of Prisma's queries,
// whose first compilations (in its WebAssembly query compiler, while that code is cold) took
// 10–30 % of a start (test/bench/ROUNDS.md, round 24).
import type { DbHandle } from './client.js';
import { dialectOf } from './dialect.js';
import { executorOf } from './executor.js';

export function createSettingStore(db: DbHandle) {
  const { prisma } = db;
  const sql = executorOf(db);
  const byKey = { name: 'setting_by_key', text: dialectOf(db.flavour).sql('SELECT "valueEncrypted" FROM "Setting" WHERE "key" = ?') };
  const get = async (key: string): Promise<string | null> => (await sql.rows<{ valueEncrypted: string }>(byKey, [key]))[0]?.valueEncrypted ?? null;

  return {
    get,

    /** Stores the value unless the key exists; returns whichever value is stored (first writer wins). */
    async getOrCreate(key: string, valueEncrypted: string): Promise<string> {
      const stored = await get(key);
      if (stored !== null) return stored;
      try {
        await prisma.setting.create({ data: { key, valueEncrypted } });
        return valueEncrypted;
      } catch (error) {
        // Another instance (or call) created it first: theirs is the value.
        if ((error as { code?: string }).code !== 'P2002') throw error;
        const theirs = await get(key);
        if (theirs === null) throw new Error(`the setting ${key} was refused as a duplicate but is not there`);
        return theirs;
      }
    },

    async set(key: string, valueEncrypted: string): Promise<void> {
      await prisma.setting.update({ where: { key }, data: { valueEncrypted } });
    },
  };
}
