// While another connection holds SQLite's write lock (a second worker process, the CLI), the
// executor's writes wait for it off the event loop (src/db/executor.ts): the process keeps serving,
// writes made meanwhile join the waiting group, and after the handle's busy timeout they are
// refused with SQLITE_BUSY. The other connection here is a second handle on the same file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteExecutor } from '../../src/db/executor.js';

const insert = { name: 'lock_insert', text: 'INSERT INTO t (id) VALUES (?)' };
const count = { name: 'lock_count', text: 'SELECT count(*) AS "n" FROM t' };

let dir: string;
let handles: Database.Database[];
/** A handle on the test's file in WAL mode, with `timeout` ms of busy timeout. */
function open(timeout: number): Database.Database {
  const handle = new Database(join(dir, 'lock.db'), { timeout });
  handle.pragma('journal_mode = WAL');
  handles.push(handle);
  return handle;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-lock-'));
  handles = [];
  open(5000).exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
});
afterEach(() => {
  handles.forEach((handle) => handle.close());
  rmSync(dir, { recursive: true, force: true });
});

/** Settles `promise` into what it came to, or 'pending' if it has not settled yet. */
const state = (promise: Promise<unknown>) => Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), sleep(0).then(() => 'pending')]);

describe('writes while another connection holds the write lock', () => {
  it('wait off the event loop, join together and commit once the lock is free', async () => {
    const handle = open(5000);
    const commits: string[] = [];
    const exec = handle.exec.bind(handle);
    handle.exec = ((sql: string) => (commits.push(sql), exec(sql))) as typeof handle.exec;
    const executor = sqliteExecutor(handle, { prepared: true });
    const other = open(5000);
    other.exec('BEGIN IMMEDIATE');

    const first = executor.changes(insert, ['a']);
    const started = performance.now();
    await sleep(30);
    // The timer fired on time: SQLite's busy handler did not hold the event loop.
    expect(performance.now() - started).toBeLessThan(500);
    expect(await state(first)).toBe('pending');
    // Reads go on meanwhile, and a write made now waits with the first.
    expect(await executor.rows(count, [])).toEqual([{ n: 0 }]);
    const second = executor.changes(insert, ['b']);
    await sleep(10);
    expect(await state(second)).toBe('pending');

    other.exec('COMMIT');
    expect(await Promise.all([first, second])).toEqual([1, 1]);
    expect(commits.filter((sql) => sql === 'COMMIT')).toHaveLength(1);
    expect(await executor.rows(count, [])).toEqual([{ n: 2 }]);
    // The handle waits for locks again as it was opened to, for Prisma's statements on it.
    expect(handle.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it("are refused with SQLITE_BUSY once the lock stays taken past the handle's busy timeout, and nothing is written", async () => {
    const handle = open(200);
    const executor = sqliteExecutor(handle, { prepared: true });
    const other = open(5000);
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    let longestTurn = 0;
    let last = performance.now();
    const ticks = setInterval(() => ((longestTurn = Math.max(longestTurn, performance.now() - last)), (last = performance.now())), 1);
    const refused = await Promise.allSettled([executor.changes(insert, ['a']), executor.changes(insert, ['b'])]);
    await sleep(5); // one more tick, to time the turn the answers came in
    clearInterval(ticks);
    expect(refused.map((answer) => answer.status === 'rejected' && (answer.reason as { code?: string }).code)).toEqual(['SQLITE_BUSY', 'SQLITE_BUSY']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    // Refused without waiting in SQLite once more: no turn of the event loop took the busy timeout.
    expect(longestTurn).toBeLessThan(150);
    other.exec('ROLLBACK');
    expect(await executor.rows(count, [])).toEqual([{ n: 0 }]);
    // The next write finds the lock free and commits at once.
    expect(await executor.changes(insert, ['b'])).toBe(1);
    expect(handle.pragma('busy_timeout', { simple: true })).toBe(200);
  });
});
