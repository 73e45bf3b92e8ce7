// Throwaway databases for tests: a fresh SQLite file, or a PostgreSQL database with a unique
// name that is dropped afterwards. PostgreSQL runs must happen under CI=true; elsewhere
// they are skipped, with the reason printed, when the server cannot be reached.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DatabaseFlavour } from '../../src/config/index.js';
import { createDb, type Db, type DbConfig } from '../../src/db/client.js';
import type { Executor } from '../../src/db/executor.js';
import { migrate } from '../../src/db/migrate.js';

export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  readonly config: DbConfig;
  drop(): Promise<void>;
}

let postgresReachable: Promise<string | null> | undefined;

/** null when reachable, otherwise why not. */
function checkPostgres(): Promise<string | null> {
  postgresReachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return null;
    } catch (error) {
      return `PostgreSQL at ${POSTGRES_ADMIN_URL} is unreachable: ${(error as Error).message}`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return postgresReachable;
}

/**
 * The flavours this run covers. Call at the top of a test file (top-level await) and use with
 * describe.each. Under CI=true PostgreSQL is always included, so an unreachable server fails
 * the run instead of silently skipping it.
 */
export async function flavours(): Promise<DatabaseFlavour[]> {
  if (process.env.CI === 'true') return ['sqlite', 'postgresql'];
  const reason = await checkPostgres();
  if (reason) {
    console.warn(`[skip] PostgreSQL tests skipped: ${reason}`);
    return ['sqlite'];
  }
  return ['sqlite', 'postgresql'];
}

export async function createTestDatabase(flavour: DatabaseFlavour): Promise<TestDatabase> {
  if (flavour === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
    return {
      config: { flavour, url: `file:${join(dir, 'gatehouse.db')}`, poolSize: 5 },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `gatehouse_test_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    config: { flavour, url: url.href, poolSize: 5 },
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** An open Db on a throwaway database; `drop` closes it and drops the database. */
export interface MigratedDb extends Db {
  drop(): Promise<void>;
}

/** A throwaway database with every migration applied, open as a Db (which is also its DbConfig, for a second Db on it). */
export async function migratedDb(flavour: DatabaseFlavour): Promise<MigratedDb> {
  const database = await createTestDatabase(flavour);
  await migrate(database.config);
  const db = await createDb(database.config);
  return {
    ...db,
    async drop() {
      await db.close();
      await database.drop();
    },
  };
}

/**
 * A pg pool on a test database whose tests end server connections on purpose (pg_terminate_backend,
 * and the database dropped WITH (FORCE) at the end, possibly while the pool is still closing one):
 * those ends are not the pool's to report as unhandled errors.
 */
export function testPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined);
  return pool;
}

/** How often each index of `table` has been scanned, by index name (PostgreSQL's cumulative statistics). */
export async function indexScans(pool: pg.Pool, table: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ indexrelname: string; idx_scan: string }>('SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = $1', [table]);
  return Object.fromEntries(rows.map((row) => [row.indexrelname, Number(row.idx_scan)]));
}

/**
 * What `executor`'s connections did, in the cumulative statistics views: a backend reports its
 * counts when it goes idle a second after its last report, so wait, then give it a statement.
 */
export async function statisticsReported(executor: Executor): Promise<void> {
  await sleep(1100);
  await executor.rows({ text: 'SELECT 1' }, []);
}

/**
 * The trap the plan tests set: a full index on OidcArtifact (model, accountId, clientId), as the
 * table had before its lookup indexes became partial. A lookup by id planned while the table is
 * empty reads the model's whole range of it; the partial index of that name holds no token of
 * that shape and cannot be chosen so.
 */
export const FULL_ACCOUNT_INDEX = 'test_full_model_accountId_clientId_idx';
export async function addFullAccountIndex(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE INDEX "${FULL_ACCOUNT_INDEX}" ON "OidcArtifact" ("model", "accountId", "clientId")`);
}

/**
 * A grown artifact table for plan tests: 20,000 rows, every third a Session with uid `uid-<n>`,
 * the others AccessToken `token-<n>` naming that session and grant `grant-<n>`; with `grants`,
 * the access tokens' grants too.
 */
export async function growArtifacts(pool: pg.Pool, { grants = false } = {}): Promise<void> {
  await pool.query(`INSERT INTO "OidcArtifact" ("model", "id", "payload", "uid", "grantId", "accountId", "clientId", "expiresAt", "createdAt")
    SELECT CASE WHEN n % 3 = 0 THEN 'Session' ELSE 'AccessToken' END, 'token-' || n, jsonb_build_object('sessionUid', 'uid-' || n), 'uid-' || n, 'grant-' || n, 'account', 'client', now() + interval '1 day', now()
    FROM generate_series(1, 20000) AS n`);
  if (!grants) return;
  await pool.query(`INSERT INTO "OidcArtifact" ("model", "id", "payload", "grantId", "accountId", "clientId", "expiresAt", "createdAt")
    SELECT 'Grant', 'grant-' || n, '{}'::jsonb, 'grant-' || n, 'account', 'client', now() + interval '1 day', now() FROM generate_series(1, 20000) AS n WHERE n % 3 <> 0`);
}
