// The one place hot statements are executed: the few statements the engine runs on every token,
// userinfo and code request (artifacts, audit events, the person by id and their groups; see the stores). They run
// on Prisma's own driver connection, below its client runtime, with each statement prepared once:
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
  /** Early answers, where the executor has them (SQLite's); see EarlyAnswers. */
  readonly early?: EarlyAnswers;
}

/**
 * Writes answered before they are committed, for a caller that holds back everything the writes
 * lead to until they are (oidc/write-barrier.ts holds the engine's answers). While `during()` is
 * true, a write runs at once inside a transaction of the event-loop turn's writes and its promise
 * resolves with its own answer right away, so the caller goes on in the same turn instead of
 * waiting a turn for each write; the turn's transaction commits once its callbacks have run. Reads
 * on the same connection see those writes at once; other connections and processes only once
 * they are committed.
 */
export interface EarlyAnswers {
  /**
   * Answer writes early while `scope()` names a caller (the engine request being served), which
   * then waits for committed(scope) before anything leaves; until called, never.
   */
  answerWhile(scope: () => object | undefined): void;
  /**
   * Resolves once every write answered early for `scope` is committed (at once when there was
   * none); rejects with SQLite's error when their transaction failed and was rolled back.
   */
  committed(scope: object): Promise<void>;
  /**
   * Commits the open turn now and opens no other until `op` settles: for Prisma's statements on
   * the same connection, which must neither join the turn's transaction nor start one inside it.
   */
  outside<T>(op: () => Promise<T>): Promise<T>;
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

/** An event-loop turn's transaction of writes (EarlyAnswers). */
interface Turn {
  /** Writes that were not answered early, with their answers, resolved once the turn commits. */
  late: { write: QueuedWrite; answer: unknown }[];
  /** The scopes with writes answered early in it. */
  scopes: Set<object>;
  committed?: Promise<void>;
  settle?: { resolve(): void; reject(error: unknown): void };
  /** Committed, or failed: the turn's transaction is over. */
  over?: true;
  /** Why the transaction failed: committed() refuses with it. */
  failed?: unknown;
}

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
 * Early answers (EarlyAnswers, for the engine's requests once oidc/write-barrier.ts turns them on):
 * a write in scope takes the write lock at once if it is free, runs at once in the turn's
 * transaction and resolves; every write after it in the turn, in scope or not, runs in that
 * transaction too, and the turn commits once its callbacks have run, as a group does. A statement
 * that fails undoes only itself; a commit that fails refuses the writes not yet answered and
 * every scope that had one answered in the turn. While the lock is taken, or Prisma has the
 * connection (outside()), writes in scope queue as any other.
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

  // Early answers (EarlyAnswers): the turn's transaction, opened by its first write.
  let earlyScope: (() => object | undefined) | undefined;
  let turn: Turn | undefined;
  /** The turn of each scope's latest early answer. */
  const turnOf = new WeakMap<object, Turn>();
  /** Why a turn in which a scope had a write answered early failed: it stays refused. */
  const failureOf = new WeakMap<object, unknown>();
  /** Prisma statements and transactions under way (outside()): no turn opens meanwhile. */
  let outsideTurns = 0;

  /** Opens the turn's transaction (with the write lock) unless one is open; false when it cannot now. */
  function openTurn(): Turn | undefined {
    if (turn) return turn;
    if (outsideTurns > 0 || queue.length > 0 || handle.inTransaction || !takeWriteLock().taken) return undefined;
    const opened: Turn = { late: [], scopes: new Set() };
    turn = opened;
    setImmediate(() => commitTurn(opened));
    return opened;
  }
  /** Runs `write` in the open turn: answered now when early, else once the turn is committed. */
  function runInTurn(current: Turn, write: QueuedWrite, scope: object | undefined): void {
    let answer: unknown;
    try {
      answer = run(write);
    } catch (error) {
      write.reject(error);
      // A failed statement undoes only itself, unless SQLite rolled the whole transaction back (a full disk, say).
      if (!handle.inTransaction) endTurn(current, error);
      return;
    }
    if (scope) {
      turnOf.set(scope, current);
      current.scopes.add(scope);
      write.resolve(answer);
    } else current.late.push({ write, answer });
  }
  function commitTurn(current: Turn): void {
    if (turn !== current) return;
    try {
      handle.exec('COMMIT');
    } catch (error) {
      if (handle.inTransaction) handle.exec('ROLLBACK');
      return endTurn(current, error);
    }
    turn = undefined;
    current.over = true;
    for (const { write, answer } of current.late) write.resolve(answer);
    current.settle?.resolve();
  }
  /** The turn's transaction is gone: what waited for its commit is refused. */
  function endTurn(current: Turn, error: unknown): void {
    if (turn === current) turn = undefined;
    current.over = true;
    current.failed = error;
    for (const scope of current.scopes) failureOf.set(scope, error);
    for (const { write } of current.late) write.reject(error);
    current.settle?.reject(error);
  }
  const early: EarlyAnswers = {
    answerWhile(scope) {
      earlyScope = scope;
    },
    committed(scope) {
      // A scope can write in several turns (it goes on after its first is answered): any that failed refuses it.
      if (failureOf.has(scope)) return Promise.reject(failureOf.get(scope));
      const current = turnOf.get(scope);
      if (!current) return Promise.resolve();
      if (current.over) return current.failed === undefined ? Promise.resolve() : Promise.reject(current.failed);
      return (current.committed ??= new Promise<void>((resolve, reject) => (current.settle = { resolve, reject })));
    },
    async outside(op) {
      if (turn) commitTurn(turn);
      outsideTurns++;
      try {
        return await op();
      } finally {
        outsideTurns--;
      }
    },
  };

  const queued = <T>(statement: Statement, args: readonly unknown[], returning: boolean) =>
    new Promise<T>((resolve, reject) => {
      const write: QueuedWrite = { statement, args: args.map(sqliteArg), returning, resolve: resolve as (answer: unknown) => void, reject };
      // A turn once open takes every write until it commits; only an early one opens it.
      const scope = earlyScope?.();
      const current = turn ?? (scope ? openTurn() : undefined);
      if (current) return runInTurn(current, write, scope);
      if (queue.push(write) === 1) setImmediate(commitQueued);
    });
  return {
    early,
    async rows<T>(statement: Statement, args: readonly unknown[]) {
      if (kindOf(statement) === 'write') return queued<T[]>(statement, args, true);
      return read(statement, args.map(sqliteArg)) as T[];
    },
    changes(statement, args) {
      return queued<number>(statement, args, false);
    },
  };
}
