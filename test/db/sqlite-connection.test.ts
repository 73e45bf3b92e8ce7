// How Gatehouse's SQLite connection is set up (db/client.ts): the log mode that lets readers run
// beside the writer, commits that do not wait for the disk (README, Databases and migrations) and
// a page cache of SQLITE_CACHE_KIB, as seen through the Prisma client that shares the connection.
import { afterEach, describe, expect, it } from 'vitest';
import { SQLITE_CACHE_KIB } from '../../src/db/client.js';
import { migratedDb, type MigratedDb } from '../helpers/databases.js';

describe('the SQLite connection', () => {
  let db: MigratedDb | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  async function pragma(name: string): Promise<unknown> {
    const [row] = await db!.prisma.$queryRawUnsafe<Record<string, unknown>[]>(`PRAGMA ${name}`);
    return Object.values(row ?? {})[0];
  }

  it('writes a log (WAL), commits without waiting for the disk (synchronous = NORMAL) and keeps an 8 MB page cache', async () => {
    db = await migratedDb('sqlite');
    expect(await pragma('journal_mode')).toBe('wal');
    expect(Number(await pragma('synchronous'))).toBe(1);
    expect(SQLITE_CACHE_KIB).toBe(8000);
    expect(Number(await pragma('cache_size'))).toBe(-SQLITE_CACHE_KIB);
  });
});
