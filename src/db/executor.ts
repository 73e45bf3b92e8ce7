// The one place hot statements are executed: the few statements the engine runs on every token,
// userinfo and code request (artifacts, audit events, the person by id and their groups, the
// client once per CLIENT_CACHE_TTL; see the stores), the reads every start makes (settings,
// signing keys) and what an instance's timers run every few seconds (the key refresher's poll,
// the outbox's claim), so that neither a start nor an idle instance compiles any of Prisma's
// queries (db/settings.ts). They run on Prisma's own driver connection, below its client
// runtime, with each statement prepared once:
// - SQLite (here): the better-sqlite3 handle behind Prisma's adapter, one prepared statement per
//   text, the writes of one event-loop turn committed together;
// - PostgreSQL (pg-executor.ts): named statements, which pg prepares once per connection; reads on
//   one pipelined connection, the writes of one turn in one transaction on one of four more.
// Prisma remains the schema, the migrations and the client for everything else. With
// DATABASE_PREPARED_STATEMENTS=false the statements still run on the driver but are not kept
// prepared (PostgreSQL: unnamed statements, all through the pool, which PgBouncer's transaction
// pooling accepts).
// A transaction's handle has no executor of its own: its statements go through the transaction's
// Prisma client (prismaExecutor), so they stay inside it.
import type { Database, Statement as SqliteStatement } from 'better-sqlite3';
import type { Prisma } from './client.js';

/**
 * A statement in the database's own dialect (dialect.ts). `name` (unique per text) lets the
 * executor keep it prepared; a statement whose text varies (a batch's size) has none. `alone`:
 * on PostgreSQL, sent on its own through the pool, outside the pipelined connections and their
 * groups of writes (maintenance, such as ANALYZE, which must not hold up or fail a group).
 */
export interface Statement {
  readonly name?: string;
  readonly text: string;
  readonly alone?: boolean;
}

export interface Executor {
  /** The rows a SELECT returns, as objects keyed by column name, values as the driver reads them (readTime, readJson). */
  rows<T>(statement: Statement, args: readonly unknown[]): Promise<T[]>;
  /** How many rows an INSERT, UPDATE or DELETE changed. */
  changes(statement: Statement, args: readonly unknown[]): Promise<number>;
  /** Whether writes started in one turn commit together, in the order they were started (deferred-writes.ts relies on it). */
  readonly groupsWrites?: boolean;
}

/** The executor a store uses: the database's own, or a transaction's through its client. */
export function executorOf(handle: { prisma: Prisma; executor?: Executor }): Executor {
  return handle.executor ?? prismaExecutor(handle.prisma);
}

/** Through a Prisma client's raw queries: a transaction's statements, which must stay inside it. */
export function prismaExecutor(prisma: Prisma): Executor {
  return {
    rows: (statement, args) => prisma.$queryRawUnsafe(statement.text, ...args),
    changes: (statement, args) => prisma.$executeRawUnsafe(statement.text, ...args),
  };
}

/**
 * What a statement does, which decides where an executor sends it: a plain SELECT reads; a SELECT
 * that locks rows (`FOR UPDATE`, `FOR SHARE`; PostgreSQL only) locks; anything else (INSERT,
 * UPDATE, DELETE, with or without RETURNING) writes, and joins the writes' group commit.
 */
export type StatementKind = 'read' | 'lock' | 'write';
const classify = (text: string): StatementKind => (/^\s*SELECT\b/i.test(text) ? (/\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b/i.test(text) ? 'lock' : 'read') : 'write');
// Named statements are a fixed set: what each does is worked out once.
const kinds = new Map<string, StatementKind>();
export const kindOf = ({ name, text }: Statement): StatementKind => (name === undefined ? classify(text) : (kinds.get(text) ?? kinds.set(text, classify(text)).get(text)!));

/** better-sqlite3 binds numbers, bigints, strings, buffers and null only. */
const sqliteArg = (value: unknown) => (value instanceof Date ? value.getTime() : typeof value === 'boolean' ? Number(value) : value);

type Reader = (args: readonly unknown[]) => unknown[];

/**
 * A kept SELECT that hands better-sqlite3's array rows (raw mode) to a function that makes the
 * objects: one object literal per row, with the statement's columns as keys in their order. The
 * driver builds an object through V8's API one property at a time; a literal of a fixed shape is
 * built by compiled code, and on the token-with-bindings read (29 columns) the statement with its
 * rows took 7.8 µs instead of 11.4 µs in a tight loop. The keys are the column names SQLite
 * reports for our own statements, quoted with JSON.stringify; the objects are the driver's own
 * (test/db/sqlite-reads.test.ts).
 */
function rawReader(statement: SqliteStatement): Reader {
  const keys = statement.columns().map((column) => column.name);
  // A computed key for __proto__, which as a plain key would set the object's prototype.
  const literal = keys.map((key, i) => `${key === '__proto__' ? `[${JSON.stringify(key)}]` : JSON.stringify(key)}: row[${i}]`).join(', ');
  const toObject = new Function('row', `return { ${literal} };`) as (row: unknown[]) => unknown;
  statement.raw(true);
  return (args) => (statement.all(...args) as unknown[][]).map(toObject);
}

/** How often a group of writes tries SQLite's write lock again while another process holds it. */
const BUSY_RETRY_MS = 1;
const isBusy = (error: unknown) => typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('SQLITE_BUSY');

interface QueuedWrite {
  statement: Statement;
  args: unknown[];
  /** Asked for by rows() (a write with RETURNING): answered with its rows, not its count. */
  returning: boolean;
  resolve(answer: unknown): void;
  reject(error: unknown): void;
}


/**
 * On the better-sqlite3 handle Prisma's adapter opened (integers come back as bigints, as the
 * adapter set it). Writes are committed in groups: those made in one turn of the event loop run
 * together in one transaction once the turn's callbacks have run (setImmediate), so a busy
 * instance pays for one commit (and its fsync) per turn instead of one per write. Each write's
 * promise still resolves only once it is committed, with its own count (its rows, for a write
 * with RETURNING asked for by rows()); a group in which anything
 * fails is rolled back and its writes run again one by one, so each gets its own answer. Reads run
 * at once (they see every write whose promise has resolved).
 *
 * While another process holds SQLite's write lock (a second worker, the CLI), the group does not
 * wait inside SQLite: SQLite's busy handler sleeps on the event loop (1, 2, 5, 10 ms …), and
 * nothing else in the process moves meanwhile. The group's BEGIN IMMEDIATE is tried without
 * waiting and, while the lock is taken, tried again every BUSY_RETRY_MS from a timer, so the
 * process serves its other requests in between; writes made meanwhile join the group. Still
 * locked after the handle's own busy timeout, its writes are refused with SQLITE_BUSY, as SQLite
 * would have refused them after waiting that long.
 */
export function sqliteExecutor(handle: Database, { prepared }: { prepared: boolean }): Executor {
  /** Whether a statement is kept prepared: one with a name, unless told not to keep any. */
  const kept = ({ name }: Statement) => prepared && name !== undefined;
  const cache = new Map<string, SqliteStatement>();
  const prepare = (statement: Statement) => {
    if (!kept(statement)) return handle.prepare(statement.text);
    let made = cache.get(statement.text);
    if (!made) cache.set(statement.text, (made = handle.prepare(statement.text)));
    return made;
  };
  const readers = new Map<string, Reader>();
  /** A read's rows: through its Reader when it is kept, else as the driver makes them. */
  const read = (statement: Statement, args: readonly unknown[]): unknown[] => {
    if (!kept(statement)) return handle.prepare(statement.text).all(...args);
    let reader = readers.get(statement.text);
    if (!reader) readers.set(statement.text, (reader = rawReader(handle.prepare(statement.text))));
    return reader(args);
  };
  const run = ({ statement, args, returning }: QueuedWrite): unknown => (returning ? prepare(statement).all(...args) : prepare(statement).run(...args).changes);
  const queue: QueuedWrite[] = [];

  function runAlone(write: QueuedWrite): void {
    try {
      write.resolve(run(write));
    } catch (error) {
      write.reject(error);
    }
  }

  const busyTimeoutMs = Number(handle.pragma('busy_timeout', { simple: true }));
  /**
   * Opens the group's transaction with the write lock if no one holds it, without waiting for it.
   * (PRAGMA busy_timeout takes effect when it is prepared, so it cannot be kept prepared: exec, 0.5 µs.)
   */
  function takeWriteLock(): { taken: true } | { taken: false; busy: boolean; error: unknown } {
    if (!handle.open) return { taken: false, busy: false, error: undefined };
    handle.exec('PRAGMA busy_timeout = 0');
    try {
      handle.exec('BEGIN IMMEDIATE');
      return { taken: true };
    } catch (error) {
      return { taken: false, busy: isBusy(error), error };
    } finally {
      handle.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    }
  }
  /** When the queued group first found the write lock taken; undefined while it has not. */
  let busySince: number | undefined;

  function commitQueued(): void {
    // Inside a transaction someone else opened (Prisma's, on this connection): as they come.
    if (handle.inTransaction) return queue.splice(0).forEach(runAlone);
    const lock = takeWriteLock();
    if (!lock.taken && lock.busy) {
      busySince ??= performance.now();
      if (performance.now() - busySince < busyTimeoutMs) return void setTimeout(commitQueued, BUSY_RETRY_MS);
      // Locked for as long as the handle would have waited: refused with SQLite's own error.
      busySince = undefined;
      return queue.splice(0).forEach((write) => write.reject(lock.error));
    }
    busySince = undefined;
    // BEGIN failed otherwise (a closed handle, say): each write answered on its own.
    if (!lock.taken) return queue.splice(0).forEach(runAlone);
    const group = queue.splice(0);
    let answers: unknown[];
    try {
      answers = group.map(run);
      handle.exec('COMMIT');
    } catch {
      if (handle.inTransaction) handle.exec('ROLLBACK');
      return group.forEach(runAlone);
    }
    group.forEach((write, i) => write.resolve(answers[i]));
  }

  const queued = <T>(statement: Statement, args: readonly unknown[], returning: boolean) =>
    new Promise<T>((resolve, reject) => {
      if (queue.push({ statement, args: args.map(sqliteArg), returning, resolve: resolve as (answer: unknown) => void, reject }) === 1) setImmediate(commitQueued);
    });
  return {
    async rows<T>(statement: Statement, args: readonly unknown[]) {
      if (kindOf(statement) === 'write') return queued<T[]>(statement, args, true);
      return read(statement, args.map(sqliteArg)) as T[];
    },
    changes(statement, args) {
      return queued<number>(statement, args, false);
    },
    groupsWrites: true,
  };
}
