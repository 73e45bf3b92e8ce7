// Applies the SQL migrations in prisma/<flavour>/migrations/ and records them in
// `_prisma_migrations` exactly as Prisma's schema engine does (same table, checksums and row
// lifecycle), so `prisma migrate status/deploy` agree wherever that engine is available.
// Each migration runs in its own transaction; concurrent starts are serialised (PostgreSQL:
// the advisory lock Prisma itself takes, around the whole run; SQLite: BEGIN IMMEDIATE around
// each migration, which re-checks under the write lock whether another process applied it).
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import type { DatabaseFlavour } from '../config/index.js';
import { packagePath } from '../config/package-root.js';
import { sqliteFilePath, type DbConfig } from './client.js';

export interface Migration {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: unknown;
  rolled_back_at: unknown;
}

export interface MigrationReport {
  readonly applied: readonly string[];
  readonly alreadyApplied: readonly string[];
  /** Recorded in the database but not among our files (e.g. applied by a newer release). */
  readonly unknown: readonly string[];
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Same value as Prisma's migration lock, so our runner and Prisma's never interleave. */
const PRISMA_ADVISORY_LOCK = 72707369;

export function migrationsDir(flavour: DatabaseFlavour): string {
  return packagePath('prisma', flavour, 'migrations');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function readMigrations(dir: string): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: sha256(sql) };
    });
}

/** Prisma accepts a file whose line endings were converted either way since it was applied. */
function checksumMatches(migration: Migration, recorded: string): boolean {
  return [migration.sql, migration.sql.replace(/\r\n/g, '\n'), migration.sql.replace(/(?<!\r)\n/g, '\r\n')]
    .some((variant) => sha256(variant) === recorded);
}

const isApplied = (row: MigrationRow) => row.finished_at !== null && row.rolled_back_at === null;

/** What stands between a migration file and the database, for one driver. */
interface Store {
  /** Runs `work` while no other migrator can. */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  rows(): Promise<MigrationRow[]>;
  /**
   * In one transaction: record the start, run the SQL, record the finish. False when another
   * process applied it first (SQLite, where the check happens under the write lock).
   */
  apply(migration: Migration): Promise<boolean>;
  close(): Promise<void>;
}

export async function migrate(database: DbConfig, dir = migrationsDir(database.flavour)): Promise<MigrationReport> {
  const migrations = readMigrations(dir);
  const store = database.flavour === 'sqlite' ? await openSqliteStore(database.url) : await openPostgresStore(database.url);
  try {
    return await store.exclusive(async () => {
      const rows = await store.rows();
      checkHistory(migrations, rows);
      const applied: string[] = [];
      const alreadyApplied: string[] = [];
      for (const migration of migrations) {
        if (rows.some((row) => row.migration_name === migration.name && isApplied(row))) {
          alreadyApplied.push(migration.name);
          continue;
        }
        let appliedHere: boolean;
        try {
          appliedHere = await store.apply(migration);
        } catch (error) {
          throw new MigrationError(`Migration ${migration.name} failed and was rolled back: ${(error as Error).message}`);
        }
        (appliedHere ? applied : alreadyApplied).push(migration.name);
      }
      const known = new Set(migrations.map((m) => m.name));
      const unknown = rows.filter((row) => isApplied(row) && !known.has(row.migration_name)).map((row) => row.migration_name);
      return { applied, alreadyApplied, unknown };
    });
  } finally {
    await store.close();
  }
}

/** Names the migrations not yet applied (for readiness checks); never changes anything. */
export async function pendingMigrations(database: DbConfig, dir = migrationsDir(database.flavour)): Promise<string[]> {
  const migrations = readMigrations(dir);
  const store = database.flavour === 'sqlite' ? await openSqliteStore(database.url) : await openPostgresStore(database.url);
  try {
    const rows = await store.rows();
    return migrations.filter((m) => !rows.some((row) => row.migration_name === m.name && isApplied(row))).map((m) => m.name);
  } finally {
    await store.close();
  }
}

function checkHistory(migrations: Migration[], rows: MigrationRow[]): void {
  for (const row of rows) {
    if (row.finished_at === null && row.rolled_back_at === null) {
      throw new MigrationError(
        `Migration ${row.migration_name} started earlier and never finished. Inspect the database, then mark it rolled back (prisma migrate resolve --rolled-back ${row.migration_name}) before migrating again.`,
      );
    }
    const migration = migrations.find((m) => m.name === row.migration_name);
    if (migration && isApplied(row) && !checksumMatches(migration, row.checksum)) {
      throw new MigrationError(
        `Migration ${row.migration_name} was modified after it was applied (checksum ${row.checksum} in the database, ${migration.checksum} on disk). Applied migrations must never change: restore the file, and put the change in a new migration.`,
      );
    }
  }
}

const SQLITE_WAL_SWITCH_TIMEOUT_MS = 5000;

/**
 * Two processes opening a new database file at once (instances starting together) both switch
 * it to WAL; SQLite answers the loser "database is locked" at once instead of waiting out the
 * busy timeout, so the switch is retried until the timeout.
 */
function switchToWal(db: Database.Database): void {
  const deadline = Date.now() + SQLITE_WAL_SWITCH_TIMEOUT_MS;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
}

// Only the configured database's driver is loaded.
async function openSqliteStore(url: string): Promise<Store> {
  const file = sqliteFilePath(url);
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(file, { timeout: SQLITE_WAL_SWITCH_TIMEOUT_MS });
  if (file !== ':memory:') switchToWal(db);
  const tableExists = () => Boolean(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'").get());
  return {
    exclusive: async (work) => work(),
    rows: async () =>
      tableExists()
        ? (db.prepare('SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY started_at').all() as MigrationRow[])
        : [],
    apply: async (migration) => {
      const run = db.transaction(() => {
        db.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`);
        // Another process may have applied it while we waited for the write lock.
        const done = db
          .prepare('SELECT 1 FROM _prisma_migrations WHERE migration_name = ? AND finished_at IS NOT NULL AND rolled_back_at IS NULL')
          .get(migration.name);
        if (done) return false;
        const id = randomUUID();
        db.prepare('INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES (?, ?, ?, ?)').run(
          id,
          migration.checksum,
          migration.name,
          Date.now(),
        );
        db.exec(migration.sql);
        db.prepare('UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE id = ?').run(id);
        db.prepare('UPDATE _prisma_migrations SET finished_at = ? WHERE id = ?').run(Date.now(), id);
        return true;
      });
      return run.immediate();
    },
    close: async () => {
      db.close();
    },
  };
}

async function openPostgresStore(url: string): Promise<Store> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const tableExists = async () => (await client.query("SELECT to_regclass('_prisma_migrations') AS t")).rows[0].t !== null;
  return {
    exclusive: async (work) => {
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK]);
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]);
      }
    },
    rows: async () =>
      (await tableExists())
        ? (await client.query<MigrationRow>('SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at')).rows
        : [],
    apply: async (migration) => {
      await client.query('BEGIN');
      try {
        await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`);
        const id = randomUUID();
        await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())', [
          id,
          migration.checksum,
          migration.name,
        ]);
        await client.query(migration.sql);
        await client.query('UPDATE "_prisma_migrations" SET applied_steps_count = applied_steps_count + 1 WHERE id = $1', [id]);
        await client.query('UPDATE "_prisma_migrations" SET finished_at = clock_timestamp() WHERE id = $1', [id]);
        await client.query('COMMIT');
        return true;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    },
    close: () => client.end(),
  };
}
