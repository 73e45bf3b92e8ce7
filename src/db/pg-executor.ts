// PostgreSQL's executor for the hot statements (executor.ts says which and why). Statements go to
// the pg pool behind Prisma's adapter, except when they are prepared (no PgBouncer in between):
// then the executor keeps connections of its own in pg's pipeline mode, on which a query is
// written without waiting for the answers to those before it:
// - reads: one connection; the plain SELECTs of one event-loop turn leave in one socket write,
//   each ending with its own Sync, so each is its own implicit transaction and fails alone;
// - writes: four connections; the writes of one turn leave in one socket write as BEGIN, the
//   writes, COMMIT: one commit (one WAL flush) for the turn instead of one per write.
// Neither takes a connection in and out of the pool. Every socket write on this loopback cost the
// process about 0.1 ms of CPU (profiles of the code flow: a fifth of its time was pg's writes).
import type pg from 'pg';
import { kindOf, type Executor, type Statement } from './executor.js';

/**
 * `timestamp(3)` (without time zone) holds UTC, as Prisma writes it; pg would read it as local
 * time, and would send a Date as local time with an offset the column ignores. So times go as
 * ISO strings in UTC and come back as UTC.
 */
const TIMESTAMP_OID = 1114;
const pgArg = (value: unknown) => (value instanceof Date ? value.toISOString() : value);
const readUtcTimestamp = (value: string) => new Date(`${value.replace(' ', 'T')}Z`);

/**
 * How long a write in a group waits for a row lock before the group gives way. Each writes
 * connection runs one group at a time, so a group stuck behind a lock held elsewhere (another
 * instance's transaction, or a Prisma transaction of this process that is itself waiting for a
 * write queued behind the group) holds up its connection, and four such groups every write of
 * the process. After this long the group is rolled back and its writes run one by one through
 * the pool, where they may wait as long as they must.
 */
export const GROUP_LOCK_TIMEOUT_MS = 2000;

/**
 * A pipelined connection is replaced (its statements prepared and planned afresh on a new one)
 * once it has sent this many queries, then ten times as many, up to the last. Its statements are
 * named, and after five runs PostgreSQL may keep one generic plan for each, chosen with the table
 * sizes of that moment. On a new database, nearly empty, that plan can pick the wrong index (for
 * an artifact by model and id, the model-and-account index, read from end to end), and it stayed
 * once the tables had grown: /userinfo fell from 1,400 to 50 requests per second in the bench.
 * ANALYZE would replace it, but nothing makes autovacuum run (it is off on some servers). Planned
 * again as the tables grow, the plans pick the primary key; planning every run instead
 * (`plan_cache_mode = force_custom_plan`) cost PostgreSQL 0.3 ms per /userinfo.
 */
const REPLAN_AFTER = { first: 1_000, last: 10_000_000 };

/** How many pipelined connections writes have (each runs one group at a time). */
const WRITE_CONNECTIONS = 4;

const BEGIN: pg.QueryConfig = { text: 'BEGIN' };
const COMMIT: pg.QueryConfig = { text: 'COMMIT' };

interface PipelinedConnection {
  /** Writes every query at once (one socket write): each one's answer, in order. */
  send(configs: readonly pg.QueryConfig[]): Promise<Promise<pg.QueryResult>[]>;
  end(): Promise<void>;
}

/** The socket under a pg client (pg's `connection.stream`), to gather several queries into one write. */
const socketOf = (client: pg.Client) => (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;

/**
 * One connection in pg's pipeline mode, opened on first use (then sent `setUp`, if given). A
 * connection that fails or ends fails the queries on it, and the next query opens a new one; one
 * that has sent enough queries (REPLAN_AFTER) is retired: the next query opens a new one, and it
 * closes once the queries on it are answered.
 */
function pipelinedConnection(connect: () => pg.Client, setUp: string | undefined, replanAfter: typeof REPLAN_AFTER): PipelinedConnection {
  let current: Promise<pg.Client> | undefined;
  let sent = 0;
  let retireAt = replanAfter.first;
  const retiring = new Set<Promise<void>>();
  const retired = new WeakSet<pg.Client>();
  const open = () => {
    const client = connect();
    const opened: Promise<pg.Client> = client.connect().then(async () => {
      if (setUp) await client.query(setUp);
      return client;
    });
    const forget = () => {
      if (current === opened) current = undefined;
    };
    // Without a listener an 'error' event would end the process; pg fails the queries in flight itself.
    client.on('error', forget);
    client.on('end', forget);
    opened.catch(() => {
      forget();
      client.end().catch(() => undefined);
    });
    sent = 0;
    return opened;
  };
  /** Counts what `client` was sent, and retires it once that is enough. */
  const counted = (client: pg.Client, queries: number) => {
    sent += queries;
    if (sent < retireAt || retireAt > replanAfter.last) return;
    retireAt *= 10;
    current = undefined;
    retired.add(client);
    const closing = client.end().catch(() => undefined);
    retiring.add(closing);
    void closing.finally(() => retiring.delete(closing));
  };
  return {
    async send(configs) {
      let client = await (current ??= open());
      // Others waiting for the same connection to open may have retired it meanwhile.
      while (retired.has(client)) client = await (current ??= open());
      // Each query corks and uncorks the socket around its own messages; corked around them all,
      // their messages leave in one write.
      const socket = socketOf(client);
      socket?.cork?.();
      let answers: Promise<pg.QueryResult>[];
      try {
        answers = configs.map((config) => client.query(config));
      } finally {
        socket?.uncork?.();
      }
      counted(client, configs.length);
      // Handled here too: an answer that fails before its caller has it is not an unhandled rejection.
      for (const answer of answers) answer.catch(() => undefined);
      return answers;
    },
    async end() {
      const client = await current?.catch(() => undefined);
      current = undefined;
      await Promise.all([client?.end(), ...retiring]);
    },
  };
}

/** An error PostgreSQL answered with (pg's DatabaseError carries the server's severity), not a lost connection. */
const serverError = (reason: unknown): reason is { severity: string } => typeof (reason as { severity?: unknown } | null)?.severity === 'string';

/**
 * Whether a group that did not commit was certainly rolled back: the server refused COMMIT or
 * answered it with ROLLBACK (a write before it failed), or failed a write (after which COMMIT
 * cannot commit). Otherwise the connection was lost before COMMIT's answer, and whether the
 * group committed is unknown.
 */
function rolledBack(writes: readonly PromiseSettledResult<pg.QueryResult>[], commit: PromiseSettledResult<pg.QueryResult>): boolean {
  if (commit.status === 'fulfilled') return true;
  // A FATAL answer to COMMIT ends the connection, possibly after the commit was made.
  if (serverError(commit.reason) && commit.reason.severity === 'ERROR') return true;
  return writes.some((write) => write.status === 'rejected' && serverError(write.reason));
}

/** A read or a write waiting for its turn's batch or group. */
interface Queued {
  config: pg.QueryConfig;
  resolve(answer: pg.QueryResult): void;
  reject(error: unknown): void;
}

/**
 * Reads on `connection`, those of one event-loop turn written together once the turn's callbacks
 * have run (setImmediate): one socket write for the turn's reads. Each is still its own query
 * with its own Sync, answered as soon as its rows arrive.
 */
function batchedReads(connection: PipelinedConnection) {
  let queue: Queued[] = [];
  async function sendQueued(): Promise<void> {
    const batch = queue;
    queue = [];
    if (!batch.length) return;
    try {
      (await connection.send(batch.map((read) => read.config))).forEach((answer, i) => answer.then(batch[i]!.resolve, batch[i]!.reject));
    } catch (error) {
      // No connection could be opened: nothing was sent.
      for (const read of batch) read.reject(error);
    }
  }
  return {
    query(config: pg.QueryConfig): Promise<pg.QueryResult> {
      return new Promise<pg.QueryResult>((resolve, reject) => {
        if (queue.push({ config, resolve, reject }) === 1) setImmediate(() => void sendQueued());
      });
    },
    /** Sends what is queued now (its answers arrive before the connection, ended next, closes). */
    flush: sendQueued,
  };
}

/**
 * Writes in groups, on `connections` (pipelined, one group in flight on each). The writes made
 * while every connection is busy wait, and go together as the next group as soon as one is free;
 * with one free, the writes of one event-loop turn go together once the turn's callbacks have run
 * (setImmediate). So the busier the process, the larger its groups, while commits on the
 * different connections still run side by side (PostgreSQL flushes concurrent commits together).
 * A group of one write is sent as it is; several as one transaction. Each write's promise
 * resolves once it is committed, with its own answer. A group the server rolled back (a write
 * failed, waited on a lock past GROUP_LOCK_TIMEOUT_MS, or two groups deadlocked) runs again
 * write by write through the pool, so each gets its own answer; a group whose connection was
 * lost before COMMIT's answer fails every write with that error, as a lost connection fails a
 * write alone, since running them again could apply them twice.
 */
function groupedWrites(connections: readonly PipelinedConnection[], pool: pg.Pool) {
  const idle = [...connections];
  let queue: Queued[] = [];
  let scheduled = false;
  const inFlight = new Set<Promise<void>>();
  const settle = (write: Queued, answer: PromiseSettledResult<pg.QueryResult> | undefined) =>
    answer?.status === 'fulfilled' ? write.resolve(answer.value) : write.reject(answer?.reason);

  async function commit(connection: PipelinedConnection, group: Queued[]): Promise<void> {
    const grouped = group.length > 1;
    let answers: PromiseSettledResult<pg.QueryResult>[];
    try {
      answers = await Promise.allSettled(await connection.send(grouped ? [BEGIN, ...group.map((write) => write.config), COMMIT] : group.map((write) => write.config)));
    } catch (error) {
      // No connection could be opened: nothing was sent.
      return group.forEach((write) => write.reject(error));
    } finally {
      idle.push(connection);
      sendQueued();
    }
    if (!grouped) return settle(group[0] as Queued, answers[0]);
    const [begun, ...writes] = answers;
    const committed = writes.pop() as PromiseSettledResult<pg.QueryResult>;
    // Committed; or never begun, so each write that ran was its own transaction: each has its own answer.
    if (begun?.status === 'rejected' || (committed.status === 'fulfilled' && committed.value.command === 'COMMIT')) return group.forEach((write, i) => settle(write, writes[i]));
    if (!rolledBack(writes, committed)) return group.forEach((write) => write.reject(committed.status === 'rejected' ? committed.reason : undefined));
    for (const write of group) {
      try {
        write.resolve(await pool.query(write.config));
      } catch (error) {
        write.reject(error);
      }
    }
  }

  function sendQueued(): void {
    scheduled = false;
    const connection = queue.length ? idle.pop() : undefined;
    if (!connection) return;
    const group = queue;
    queue = [];
    const committing = commit(connection, group).finally(() => inFlight.delete(committing));
    inFlight.add(committing);
  }

  return {
    query(config: pg.QueryConfig): Promise<pg.QueryResult> {
      return new Promise<pg.QueryResult>((resolve, reject) => {
        queue.push({ config, resolve, reject });
        if (!scheduled && idle.length) {
          scheduled = true;
          setImmediate(sendQueued);
        }
      });
    },
    /** Sends everything queued and waits until every group has its answers. */
    async flush(): Promise<void> {
      while (queue.length || inFlight.size) {
        sendQueued();
        await Promise.race(inFlight);
      }
    },
  };
}

/**
 * On the pg pool Prisma's adapter uses; with `pipelined` (a factory of new connections to the
 * same database in pipeline mode), reads and writes go through pipelined connections of their
 * own instead (one for reads, WRITE_CONNECTIONS for writes), as this file's header says. Locking
 * reads (`FOR UPDATE`) stay on the pool.
 */
export function pgExecutor(
  pool: pg.Pool,
  pgTypes: typeof pg.types,
  { prepared, pipelined, replanAfter = REPLAN_AFTER }: { prepared: boolean; pipelined?: () => pg.Client; replanAfter?: typeof REPLAN_AFTER },
): Executor & { end(): Promise<void> } {
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === TIMESTAMP_OID && format !== 'binary' ? readUtcTimestamp : pgTypes.getTypeParser(oid, format))) as typeof pgTypes.getTypeParser,
  };
  const readsConnection = pipelined && pipelinedConnection(pipelined, undefined, replanAfter);
  const reads = readsConnection && batchedReads(readsConnection);
  const writesConnections = pipelined ? Array.from({ length: WRITE_CONNECTIONS }, () => pipelinedConnection(pipelined, `SET lock_timeout = ${GROUP_LOCK_TIMEOUT_MS}`, replanAfter)) : [];
  const writes = pipelined && groupedWrites(writesConnections, pool);
  const channels = { read: reads, write: writes, lock: undefined };
  let ended = false;
  const query = (statement: Statement, args: readonly unknown[]) => {
    const { name, text } = statement;
    const config: pg.QueryConfig = { ...(prepared && name ? { name } : {}), text, values: args.map(pgArg), types };
    // Once ended, everything goes through the pool (Prisma's disconnect ends it afterwards).
    const channel = ended || statement.alone ? undefined : channels[kindOf(statement)];
    return channel ? channel.query(config) : pool.query(config);
  };
  return {
    async rows<T>(statement: Statement, args: readonly unknown[]) {
      return (await query(statement, args)).rows as T[];
    },
    async changes(statement, args) {
      return (await query(statement, args)).rowCount ?? 0;
    },
    // Pipelined, a turn's writes go as one group on one connection; through the pool (and once ended), each on its own.
    get groupsWrites() {
      return !!writes && !ended;
    },
    async end() {
      ended = true;
      await Promise.all([reads?.flush(), writes?.flush()]);
      await Promise.all([readsConnection?.end(), ...writesConnections.map((connection) => connection.end())]);
    },
  };
}
