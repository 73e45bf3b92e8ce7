// Failure counters shared by every limit on guessing (sign-in, client authentication): they live
// in the database (the RateLimiterFlexible table, through rate-limiter-flexible's Prisma store
// with its statements run as hot statements), so every instance sharing it enforces the same limits.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import type { RateLimiterPrisma as RateLimiterPrismaClass } from 'rate-limiter-flexible';
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul, readTime } from '../db/dialect.js';
import { executorOf, type Executor, type Statement } from '../db/executor.js';

// The Prisma store alone (the same class the package's index exports): the index loads every store
// it has (Redis, Mongo, DynamoDB, MySQL, …), which costs start-up time for nothing.
const RateLimiterPrisma = createRequire(import.meta.url)('rate-limiter-flexible/lib/RateLimiterPrisma.js') as typeof RateLimiterPrismaClass;

const TABLE = '"RateLimiterFlexible"';

/**
 * The key a counter's row is stored under. A key holds what a request sent (the client_id a
 * client authentication names), and PostgreSQL's text refuses the NUL character, so a key with
 * one is stored as its SHA-256 instead, on both databases alike (every other key is stored as it
 * is, and none begins with this prefix). Idempotent: a stored key has no NUL.
 */
const storedKey = (key: string) => (hasNul(key) ? `nul-sha256:${createHash('sha256').update(key).digest('hex')}` : key);

/** A counter's row as its statements return it: what RateLimiterFlexible builds its answer from. */
interface CounterRow {
  points: number;
  expire: Date | null;
}

/**
 * rate-limiter-flexible's Prisma store, with its three storage calls as hot statements
 * (db/executor.ts): a sign-in counts two counters and a success clears two, so the query builder
 * and its two statements per count (delete if expired, then upsert) cost more than the password
 * check. The same table, rows and semantics: an expired row starts a new window, any other is
 * incremented in the database, so concurrent counts on every instance all count.
 */
class CounterOnExecutor extends RateLimiterPrisma {
  private readonly sql: Executor;
  private readonly time: (value: Date) => Date | number;
  private readonly statements: Record<'count' | 'set' | 'get' | 'delete', Statement>;

  constructor(db: DbHandle, options: ConstructorParameters<typeof RateLimiterPrisma>[0]) {
    super(options);
    this.sql = executorOf(db);
    const dialect = dialectOf(db.flavour);
    this.time = dialect.time;
    const insert = `INSERT INTO ${TABLE} ("key", "points", "expire") VALUES (?, ?, ?) ON CONFLICT ("key") DO UPDATE SET`;
    const expired = `${TABLE}."expire" <= ?`;
    this.statements = {
      count: {
        name: 'counter_count',
        text: dialect.sql(
          `${insert} "points" = CASE WHEN ${expired} THEN excluded."points" ELSE ${TABLE}."points" + excluded."points" END,
             "expire" = CASE WHEN ${expired} THEN excluded."expire" ELSE ${TABLE}."expire" END
           RETURNING "points", "expire"`,
        ),
      },
      set: { name: 'counter_set', text: dialect.sql(`${insert} "points" = excluded."points", "expire" = excluded."expire" RETURNING "points", "expire"`) },
      get: { name: 'counter_get', text: dialect.sql(`SELECT "points", "expire" FROM ${TABLE} WHERE "key" = ? AND ("expire" IS NULL OR "expire" > ?)`) },
      delete: { name: 'counter_delete', text: dialect.sql(`DELETE FROM ${TABLE} WHERE "key" = ?`) },
    };
  }

  private static read(raw: { points: unknown; expire: unknown } | undefined): CounterRow | null {
    return raw ? { points: Number(raw.points), expire: readTime(raw.expire) } : null;
  }

  // The store's three calls (RateLimiterStoreAbstract), replacing RateLimiterPrisma's.
  async _upsert(rlKey: string, points: number, msDuration: number, forceExpire = false): Promise<CounterRow | null> {
    const key = storedKey(rlKey);
    const now = new Date();
    const expire = msDuration > 0 ? this.time(new Date(now.getTime() + msDuration)) : null;
    const [row] = forceExpire
      ? await this.sql.rows<{ points: unknown; expire: unknown }>(this.statements.set, [key, points, expire])
      : await this.sql.rows<{ points: unknown; expire: unknown }>(this.statements.count, [key, points, expire, this.time(now), this.time(now)]);
    return CounterOnExecutor.read(row);
  }

  async _get(rlKey: string): Promise<CounterRow | null> {
    const [row] = await this.sql.rows<{ points: unknown; expire: unknown }>(this.statements.get, [storedKey(rlKey), this.time(new Date())]);
    return CounterOnExecutor.read(row);
  }

  async _delete(rlKey: string): Promise<boolean> {
    return (await this.sql.changes(this.statements.delete, [storedKey(rlKey)])) > 0;
  }
}

/** Two counters moved by one statement each way: what one attempt at a guessed secret costs (people/sign-in-limits.ts). */
export interface CounterPair {
  /**
   * Adds a point to each row (full row keys, counterRowKey) in one statement, a row whose window
   * is over starting a new one of `windowSeconds`, exactly as a counter's penalty does; returns
   * each row's points after the count.
   */
  count(first: string, second: string, windowSeconds: number): Promise<[number, number]>;
  /**
   * In one statement: ends `cleared`'s window (the row counts as gone from now on, to every reader
   * and to the next count, which starts a new window; the sweeper deletes it) and takes one point
   * back from `rewarded`.
   */
  clearAndTakeBack(cleared: string, rewarded: string): Promise<void>;
}

export function counterPair(db: DbHandle): CounterPair {
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  const expired = `${TABLE}."expire" <= ?`;
  const count: Statement = {
    name: 'counter_count_pair',
    text: dialect.sql(
      `INSERT INTO ${TABLE} ("key", "points", "expire") VALUES (?, 1, ?), (?, 1, ?) ON CONFLICT ("key") DO UPDATE SET
         "points" = CASE WHEN ${expired} THEN excluded."points" ELSE ${TABLE}."points" + excluded."points" END,
         "expire" = CASE WHEN ${expired} THEN excluded."expire" ELSE ${TABLE}."expire" END
       RETURNING "key", "points"`,
    ),
  };
  const settle: Statement = {
    name: 'counter_clear_and_take_back',
    text: dialect.sql(
      `UPDATE ${TABLE} SET "points" = CASE WHEN "key" = ? THEN 0 ELSE "points" - 1 END, "expire" = CASE WHEN "key" = ? THEN ? ELSE "expire" END
       WHERE "key" IN (?, ?)`,
    ),
  };
  return {
    async count(firstKey, secondKey, windowSeconds) {
      const [first, second] = [storedKey(firstKey), storedKey(secondKey)];
      const now = new Date();
      const [at, until] = [dialect.time(now), dialect.time(new Date(now.getTime() + windowSeconds * 1000))];
      const rows = await sql.rows<{ key: string; points: unknown }>(count, [first, until, second, until, at, at]);
      const points = (key: string) => Number(rows.find((row) => row.key === key)?.points ?? 0);
      return [points(first), points(second)];
    },
    async clearAndTakeBack(clearedKey, rewardedKey) {
      const [cleared, rewarded] = [storedKey(clearedKey), storedKey(rewardedKey)];
      await sql.changes(settle, [cleared, cleared, dialect.time(new Date()), cleared, rewarded]);
    },
  };
}

/**
 * The key of the row counting `key` under `keyPrefix`: rate-limiter-flexible's own getKey, stored
 * as a limiter stores it (storedKey), for code that reads or clears counters without a limiter
 * (people/lockouts.ts).
 */
export const counterRowKey = (keyPrefix: string, key: string) => storedKey(`${keyPrefix}:${key}`);

/** A counter in the RateLimiterFlexible table whose window starts at its first point. */
export function counter(db: DbHandle, keyPrefix: string, points: number, windowSeconds: number): RateLimiterPrismaClass {
  // Expired rows are deleted by startCounterSweeper, not by a timer per limiter.
  return new CounterOnExecutor(db, { storeClient: db.prisma, tableName: 'rateLimiterFlexible', keyPrefix, points, duration: windowSeconds, clearExpiredByTimeout: false });
}

/**
 * The IP address a limit counts: IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 prefix, the
 * block one subscriber usually controls.
 */
export function ipKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('::');
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const all = [...before, ...Array<string>(Math.max(8 - before.length - after.length, 0)).fill('0'), ...after];
  return `${all.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}

/**
 * Deletes the counters that expired before `now`; how many. SQL on the executor, as every
 * background job's statement (server.ts, startBackgroundJobs).
 */
export function sweepExpiredCounters(db: DbHandle, now: Date = new Date()): Promise<number> {
  const expired = { name: 'counter_sweep', text: dialectOf(db.flavour).sql(`DELETE FROM ${TABLE} WHERE "expire" < ?`) };
  return executorOf(db).changes(expired, [dialectOf(db.flavour).time(now)]);
}

/** Deletes expired counters every `intervalSeconds` (0: never); returns the stop function. */
export function startCounterSweeper(db: DbHandle, intervalSeconds: number, onError: (error: unknown) => void): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    sweepExpiredCounters(db).catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
