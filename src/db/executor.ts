// The one place hot statements are executed: the few statements the engine runs on every token,
// userinfo and code request (artifacts, audit events, the person by id and their groups; see the stores). They run
// on Prisma's own driver connection, below its client runtime, with each statement prepared once:
// - SQLite: the better-sqlite3 handle behind Prisma's adapter, one prepared statement per text;
// - PostgreSQL: the pg pool behind Prisma's adapter, as named statements, which pg prepares once
//   on each pooled connection; plain SELECTs on one more connection of their own, pipelined.
// Prisma remains the schema, the migrations and the client for everything else. With
// DATABASE_PREPARED_STATEMENTS=false the statements still run on the driver but are not kept
// prepared (PostgreSQL: unnamed statements, all through the pool, which PgBouncer's transaction
// pooling accepts).
// A transaction's handle has no executor of its own: its statements go through the transaction's
// Prisma client (prismaExecutor), so they stay inside it.
import type { Database, Statement as SqliteStatement } from 'better-sqlite3';
import type pg from 'pg';
import type { Prisma } from './client.js';

/**
 * A statement in the database's own dialect (dialect.ts). `name` (unique per text) lets the
 * executor keep it prepared; a statement whose text varies (a batch's size) has none.
 */
export interface Statement {
  readonly name?: string;
  readonly text: string;
}

export interface Executor {
  /** The rows a SELECT returns, as objects keyed by column name, values as the driver reads them (readTime, readJson). */
  rows<T>(statement: Statement, args: readonly unknown[]): Promise<T[]>;
  /** How many rows an INSERT, UPDATE or DELETE changed. */
  changes(statement: Statement, args: readonly unknown[]): Promise<number>;
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

/** better-sqlite3 binds numbers, bigints, strings, buffers and null only. */
const sqliteArg = (value: unknown) => (value instanceof Date ? value.getTime() : typeof value === 'boolean' ? Number(value) : value);

interface QueuedWrite {
  statement: Statement;
  args: unknown[];
  resolve(changes: number): void;
  reject(error: unknown): void;
}

/**
 * On the better-sqlite3 handle Prisma's adapter opened (integers come back as bigints, as the
 * adapter set it). Writes are committed in groups: those made in one turn of the event loop run
 * together in one transaction once the turn's callbacks have run (setImmediate), so a busy
 * instance pays for one commit (and its fsync) per turn instead of one per write. Each write's
 * promise still resolves only once it is committed, with its own count; a group in which anything
 * fails is rolled back and its writes run again one by one, so each gets its own answer. Reads run
 * at once (they see every write whose promise has resolved).
 */
export function sqliteExecutor(handle: Database, { prepared }: { prepared: boolean }): Executor {
  const cache = new Map<string, SqliteStatement>();
  const prepare = ({ name, text }: Statement) => {
    if (!prepared || name === undefined) return handle.prepare(text);
    let statement = cache.get(text);
    if (!statement) cache.set(text, (statement = handle.prepare(text)));
    return statement;
  };
  const run = ({ statement, args }: QueuedWrite) => prepare(statement).run(...args).changes;
  const queue: QueuedWrite[] = [];

  function runAlone(write: QueuedWrite): void {
    try {
      write.resolve(run(write));
    } catch (error) {
      write.reject(error);
    }
  }

  function commitQueued(): void {
    const group = queue.splice(0);
    // Inside a transaction someone else opened (Prisma's, on this connection), or one write alone: as they come.
    if (group.length === 1 || handle.inTransaction) return group.forEach(runAlone);
    let counts: number[];
    try {
      handle.exec('BEGIN');
      counts = group.map(run);
      handle.exec('COMMIT');
    } catch {
      if (handle.inTransaction) handle.exec('ROLLBACK');
      return group.forEach(runAlone);
    }
    group.forEach((write, i) => write.resolve(counts[i] as number));
  }

  return {
    async rows<T>(statement: Statement, args: readonly unknown[]) {
      return prepare(statement).all(...args.map(sqliteArg)) as T[];
    },
    changes(statement, args) {
      return new Promise<number>((resolve, reject) => {
        if (queue.push({ statement, args: args.map(sqliteArg), resolve, reject }) === 1) setImmediate(commitQueued);
      });
    },
  };
}

/**
 * `timestamp(3)` (without time zone) holds UTC, as Prisma writes it; pg would read it as local
 * time, and would send a Date as local time with an offset the column ignores. So times go as
 * ISO strings in UTC and come back as UTC.
 */
const TIMESTAMP_OID = 1114;
const pgArg = (value: unknown) => (value instanceof Date ? value.toISOString() : value);
const readUtcTimestamp = (value: string) => new Date(`${value.replace(' ', 'T')}Z`);

/** A statement that only reads (a plain SELECT): it may share the pipelined connection. */
const READ_ONLY = /^\s*SELECT\b(?![\s\S]*\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b)/i;

/**
 * One connection in pg's pipeline mode that reads share: each query is written without waiting
 * for the answers to those before it, so reads check no connection in and out of the pool, and
 * the answers of several arrive in one read of the socket. Each query still ends with its own
 * Sync: it is its own implicit transaction, and a failed one fails alone. Writes never come here:
 * on one connection their commits would wait for each other, while the pool lets PostgreSQL
 * flush concurrent commits together. A connection that fails or ends fails the queries on it
 * and is replaced by the next read.
 */
function pipelinedConnection(connect: () => pg.Client) {
  let current: Promise<pg.Client> | undefined;
  const open = () => {
    const client = connect();
    const opened: Promise<pg.Client> = client.connect().then(() => client);
    const forget = () => {
      if (current === opened) current = undefined;
    };
    // Without a listener an 'error' event would end the process; pg fails the queries in flight itself.
    client.on('error', forget);
    client.on('end', forget);
    opened.catch(forget);
    return opened;
  };
  return {
    async query(config: pg.QueryConfig): Promise<pg.QueryResult> {
      return (await (current ??= open())).query(config);
    },
    async end(): Promise<void> {
      const client = await current?.catch(() => undefined);
      current = undefined;
      await client?.end();
    },
  };
}

/**
 * On the pg pool Prisma's adapter uses; with `pipelinedReads` (a new connection to the same
 * database), plain SELECTs go through one pipelined connection instead (pipelinedConnection).
 */
export function pgExecutor(pool: pg.Pool, pgTypes: typeof pg.types, { prepared, pipelinedReads }: { prepared: boolean; pipelinedReads?: () => pg.Client }): Executor & { end(): Promise<void> } {
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === TIMESTAMP_OID && format !== 'binary' ? readUtcTimestamp : pgTypes.getTypeParser(oid, format))) as typeof pgTypes.getTypeParser,
  };
  const reads = pipelinedReads && pipelinedConnection(pipelinedReads);
  // Named statements are a fixed set: what each is, is worked out once.
  const readOnly = new Map<string, boolean>();
  const isRead = ({ name, text }: Statement) => (name === undefined ? READ_ONLY.test(text) : (readOnly.get(text) ?? readOnly.set(text, READ_ONLY.test(text)).get(text)!));
  const query = (statement: Statement, args: readonly unknown[]) => {
    const { name, text } = statement;
    const config = { ...(prepared && name ? { name } : {}), text, values: args.map(pgArg), types };
    return reads && isRead(statement) ? reads.query(config) : pool.query(config);
  };
  return {
    async rows<T>(statement: Statement, args: readonly unknown[]) {
      return (await query(statement, args)).rows as T[];
    },
    async changes(statement, args) {
      return (await query(statement, args)).rowCount ?? 0;
    },
    end: async () => reads?.end(),
  };
}
