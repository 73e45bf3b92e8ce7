// Opens the database named by DATABASE_URL: SQLite through better-sqlite3 or PostgreSQL
// through pg, each behind its own generated Prisma client.
//
// The two generated clients have incompatible TypeScript types, so the data layer is typed
// against the SQLite client (the lowest common denominator: PostgreSQL-only options would
// compile and then fail on SQLite) and the PostgreSQL client is cast to it here, once.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config, DatabaseFlavour } from '../config/index.js';
import type { Database } from 'better-sqlite3';
import type { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import { deferredWrites, type DeferredWrites } from './deferred-writes.js';
import { sqliteExecutor, type Executor } from './executor.js';
import { pgExecutor } from './pg-executor.js';
import { checkpointElsewhere, checkpointInBackground, type Checkpoints } from './sqlite-checkpoints.js';

export type Prisma = SqliteClient;

export interface Db {
  readonly prisma: Prisma;
  readonly flavour: DatabaseFlavour;
  readonly url: string;
  /** Runs the hot statements on the driver connection below the client (executor.ts). */
  readonly executor: Executor;
  /** Writes a request keeps until its answer, through the executor (deferred-writes.ts). */
  readonly deferred: DeferredWrites;
  /**
   * Counts writes to the Client table made through this Db (bumped when each starts and when it
   * ends): an in-process cache of clients that remembers this number with each entry knows an
   * entry is stale as soon as any code in this process changed a client.
   */
  clientWrites(): number;
  /** The same count for the Resource table (resources/engine.ts caches resources as clients are cached). */
  resourceWrites(): number;
  /** The same count for the IdentityProvider table (federation/sign-in.ts caches the sign-in page's buttons). */
  identityProviderWrites(): number;
  close(): Promise<void>;
}

/**
 * What every store (`src/<noun>/store.ts`) is built from: the Prisma client, or a transaction's,
 * and the dialect its hand-written SQL needs. A Db is one; so is `{ prisma: tx, flavour }`, whose
 * hot statements then go through the transaction's client (executor.ts, executorOf).
 */
export type DbHandle = Pick<Db, 'prisma' | 'flavour'> & Partial<Pick<Db, 'executor' | 'deferred'>>;

export type DbConfig = Pick<Config['database'], 'url' | 'flavour'> & Partial<Pick<Config['database'], 'poolSize' | 'preparedStatements'>>;

export interface DbOptions {
  /**
   * SQLite: false when another process on this machine runs the file's checkpoints (a cluster's
   * primary, for its workers); this process then keeps only the backstop (sqlite-checkpoints.ts).
   */
  readonly checkpoints?: boolean;
}

/** How long a SQLite writer waits for another writer before giving up. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;
/**
 * The connection's page cache, in KiB: half the 16 MB better-sqlite3 builds SQLite with. Pages
 * past it are read again from the operating system's file cache, a system call rather than a
 * disk read; the memory counts against the image's 200 MB a process (see the README's Performance).
 */
export const SQLITE_CACHE_KIB = 8000;

/** `file:./data/gatehouse.db` → an absolute path (relative paths are from the working directory). */
export function sqliteFilePath(url: string): string {
  const path = url.replace(/^file:/, '').replace(/\?.*$/, '');
  return path === ':memory:' ? path : resolve(path);
}

const CLIENT_READS = new Set(['findUnique', 'findUniqueOrThrow', 'findFirst', 'findFirstOrThrow', 'findMany', 'count', 'aggregate', 'groupBy']);

type WriteCounts = Pick<Db, 'clientWrites' | 'resourceWrites' | 'identityProviderWrites'>;

/** The client with every write to the tables cached in process counted (see Db.clientWrites, Db.resourceWrites, Db.identityProviderWrites). */
function countingCachedWrites<T extends { $extends: Prisma['$extends'] }>(prisma: T): { prisma: Prisma } & WriteCounts {
  const writes = { client: 0, resource: 0, identityProvider: 0 };
  const counted = (table: keyof typeof writes) => ({
    async $allOperations({ operation, args, query }: { operation: string; args: unknown; query: (args: unknown) => Promise<unknown> }) {
      if (CLIENT_READS.has(operation)) return query(args);
      writes[table]++;
      try {
        return await query(args);
      } finally {
        writes[table]++;
      }
    },
  });
  const extended = prisma.$extends({ query: { client: counted('client'), resource: counted('resource'), identityProvider: counted('identityProvider') } });
  return {
    prisma: extended as unknown as Prisma,
    clientWrites: () => writes.client,
    resourceWrites: () => writes.resource,
    identityProviderWrites: () => writes.identityProvider,
  };
}

/**
 * Prisma's adapter factory with its driver connection opened ahead of Prisma's client: the hot
 * statements run on that connection (executor.ts) from the start, and the client takes the same
 * one at its first query, when it starts its engine. So a process that never queries through the
 * client never loads the engine's WebAssembly query compiler (10–22 MB a process on Node 22;
 * README "Performance"). A reconnection after a disconnect opens a new connection.
 */
async function openedAhead<F extends { connect(): Promise<unknown> }>(factory: F): Promise<{ factory: F; connection: unknown }> {
  const connection = await factory.connect();
  let taken = false;
  const wrapped = Object.assign(Object.create(null) as F, {
    provider: (factory as { provider?: unknown }).provider,
    adapterName: (factory as { adapterName?: unknown }).adapterName,
    connect: async () => {
      if (taken) return factory.connect();
      taken = true;
      return connection;
    },
    connectToShadowDb: () => (factory as unknown as { connectToShadowDb(): Promise<unknown> }).connectToShadowDb(),
  });
  return { factory: wrapped, connection };
}

export async function createDb(database: DbConfig, { checkpoints: runCheckpoints = true }: DbOptions = {}): Promise<Db> {
  const prepared = database.preparedStatements ?? true;
  if (database.flavour === 'sqlite') {
    const file = sqliteFilePath(database.url);
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    // Only the configured database's client and driver are loaded: less memory, faster start.
    const [{ PrismaBetterSqlite3 }, { PrismaClient }] = await Promise.all([import('@prisma/adapter-better-sqlite3'), import('../generated/sqlite/client.js')]);
    const adapter = await openedAhead(
      new PrismaBetterSqlite3(
        { url: file, timeout: SQLITE_BUSY_TIMEOUT_MS },
        // Epoch milliseconds, as Prisma's own engine writes SQLite dates.
        { timestampFormat: 'unixepoch-ms' },
      ),
    );
    const base = new PrismaClient({ adapter: adapter.factory });
    // The adapter keeps its better-sqlite3 Database in `client` (@prisma/adapter-better-sqlite3 7.10).
    const handle = (adapter.connection as { client?: Database } | undefined)?.client;
    if (typeof handle?.prepare !== 'function') throw new Error("Prisma's SQLite adapter no longer exposes its better-sqlite3 handle (its `client`): check @prisma/adapter-better-sqlite3");
    // WAL lets readers run while one writer writes; it is a property of the file and persists.
    if (file !== ':memory:') handle.pragma('journal_mode = WAL');
    // A commit is durable once it is in the log, not synced: a crash of the process loses nothing,
    // a power loss or OS crash can lose the last commits (never corrupts). better-sqlite3's default
    // in WAL mode, said here so it is a choice: FULL syncs on every COMMIT, on the event loop
    // (0.5 ms each here, 5 ms at p99). The log is synced at checkpoints (sqlite-checkpoints.ts).
    handle.pragma('synchronous = NORMAL');
    handle.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
    let checkpoints: Checkpoints | undefined;
    if (file !== ':memory:') {
      if (runCheckpoints) checkpoints = checkpointInBackground(handle, file, SQLITE_BUSY_TIMEOUT_MS);
      else checkpointElsewhere(handle);
    }
    const { prisma, ...writeCounts } = countingCachedWrites(base);
    const close = async () => {
      await checkpoints?.stop();
      // Closes the connection if the client ever started; if it never did, it is closed here.
      await base.$disconnect();
      if (handle.open) handle.close();
    };
    const executor = sqliteExecutor(handle, { prepared });
    return { prisma, flavour: 'sqlite', url: database.url, executor, deferred: deferredWrites(executor), ...writeCounts, close };
  }
  const [{ PrismaPg }, { PrismaClient }, { default: pg }] = await Promise.all([import('@prisma/adapter-pg'), import('../generated/postgresql/client.js'), import('pg')]);
  // The pool is Prisma's adapter's (it ends it on disconnect); the hot statements share it.
  const pool = new pg.Pool({ connectionString: database.url, max: database.poolSize ?? 10 });
  const base = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) }) as unknown as Prisma;
  const { prisma, ...writeCounts } = countingCachedWrites(base);
  // Reads and writes have a pipelined connection each besides the pool (pg-executor.ts), unless
  // statements are sent unprepared for a pooler (PgBouncer): then everything goes through the pool.
  const executor = pgExecutor(pool, pg.types, { prepared, pipelined: prepared ? () => new pg.Client({ connectionString: database.url, pipeline: true }) : undefined });
  const close = async () => {
    await executor.end();
    // Ends the pool if the client ever started (its adapter owns it); if it never did, it is ended here.
    await base.$disconnect();
    if (!pool.ended) await pool.end();
  };
  return { prisma, flavour: 'postgresql', url: database.url, executor, deferred: deferredWrites(executor), ...writeCounts, close };
}
