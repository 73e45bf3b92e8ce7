// Opens the database named by DATABASE_URL: SQLite through better-sqlite3 or PostgreSQL
// through pg, each behind its own generated Prisma client.
//
// The two generated clients have incompatible TypeScript types, so the data layer is typed
// against the SQLite client (the lowest common denominator: PostgreSQL-only options would
// compile and then fail on SQLite) and the PostgreSQL client is cast to it here, once.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import type { Config, DatabaseFlavour } from '../config.js';
import { PrismaClient as PostgresClient } from '../generated/postgresql/client.js';
import { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';

export type Prisma = SqliteClient;

export interface Db {
  readonly prisma: Prisma;
  readonly flavour: DatabaseFlavour;
  readonly url: string;
  close(): Promise<void>;
}

export type DbConfig = Pick<Config['database'], 'url' | 'flavour'> & Partial<Pick<Config['database'], 'poolSize'>>;

/** How long a SQLite writer waits for another writer before giving up. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** `file:./data/gatehouse.db` → an absolute path (relative paths are from the working directory). */
export function sqliteFilePath(url: string): string {
  const path = url.replace(/^file:/, '').replace(/\?.*$/, '');
  return path === ':memory:' ? path : resolve(path);
}

export async function createDb(database: DbConfig): Promise<Db> {
  if (database.flavour === 'sqlite') {
    const file = sqliteFilePath(database.url);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const adapter = new PrismaBetterSqlite3(
      { url: file, timeout: SQLITE_BUSY_TIMEOUT_MS },
      // Epoch milliseconds, as Prisma's own engine writes SQLite dates.
      { timestampFormat: 'unixepoch-ms' },
    );
    const prisma = new SqliteClient({ adapter });
    // WAL lets readers run while one writer writes; it is a property of the file and persists.
    if (file !== ':memory:') await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
    return { prisma, flavour: 'sqlite', url: database.url, close: () => prisma.$disconnect() };
  }
  const adapter = new PrismaPg({ connectionString: database.url, max: database.poolSize ?? 10 });
  const prisma = new PostgresClient({ adapter }) as unknown as Prisma;
  return { prisma, flavour: 'postgresql', url: database.url, close: () => prisma.$disconnect() };
}
