// On PostgreSQL the hot reads share one connection in pipeline mode (src/db/executor.ts), while
// writes keep going through the pool. These tests run against a real server: the answers of
// concurrent reads reach the right callers, a failing read fails alone, writes are seen by the
// next read, and a connection the server ends is replaced without losing the process.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgExecutor } from '../../src/db/executor.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';

const available = await flavours();

describe.runIf(available.includes('postgresql'))('reads pipelined on one PostgreSQL connection', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let opened: pg.Client[];
  let executor: ReturnType<typeof pgExecutor>;
  const echo = { name: 'pipelined_echo', text: 'SELECT $1::int AS "n", pg_backend_pid() AS "pid"' };
  const insert = { name: 'pipelined_insert', text: 'INSERT INTO probe (id) VALUES ($1)' };
  const find = { name: 'pipelined_find', text: 'SELECT id FROM probe WHERE id = $1' };

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    pool = new pg.Pool({ connectionString: database.config.url, max: 4 });
    await pool.query('CREATE TABLE probe (id text PRIMARY KEY)');
    opened = [];
    executor = pgExecutor(pool, pg.types, {
      prepared: true,
      pipelinedReads: () => {
        const client = new pg.Client({ connectionString: database.config.url, pipeline: true });
        opened.push(client);
        return client;
      },
    });
  });
  afterAll(async () => {
    await executor?.end();
    await pool?.end();
    await database?.drop();
  });

  it('answers many concurrent reads each with its own rows, all from one connection, none through the pool', async () => {
    let fromPool = 0;
    const count = () => fromPool++;
    pool.on('acquire', count);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, n) => executor.rows<{ n: number; pid: number }>(echo, [n])));
    pool.off('acquire', count);
    expect(fromPool).toBe(0);
    expect(answers.map(([row]) => row?.n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    expect(new Set(answers.map(([row]) => row?.pid)).size).toBe(1);
    expect(opened).toHaveLength(1);
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(rows[0]?.pid).not.toBe(answers[0]?.[0]?.pid);
  });

  it('fails a bad read alone: the reads written before and after it on the connection are answered', async () => {
    const settled = await Promise.allSettled([executor.rows(echo, [1]), executor.rows(echo, ['not a number']), executor.rows(echo, [3])]);
    expect(settled.map((answer) => answer.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/invalid input syntax for type integer/);
    expect(await executor.rows(echo, [4])).toMatchObject([{ n: 4 }]);
  });

  it('sends writes and locking reads through the pool, and a read sees a write that has been answered', async () => {
    const [{ pid: reader } = { pid: 0 }] = await executor.rows<{ pid: number }>(echo, [0]);
    const fromPool: number[] = [];
    pool.on('acquire', (client) => fromPool.push((client as unknown as { processID: number }).processID));
    expect(await executor.changes(insert, ['a'])).toBe(1);
    expect(fromPool).toHaveLength(1);
    expect(await executor.rows(find, ['a'])).toEqual([{ id: 'a' }]);
    expect(fromPool).toHaveLength(1);
    expect(await executor.rows({ name: 'pipelined_lock', text: 'SELECT id FROM probe WHERE id = $1 FOR UPDATE' }, ['a'])).toEqual([{ id: 'a' }]);
    expect(fromPool).toHaveLength(2);
    pool.removeAllListeners('acquire');
    expect(fromPool).not.toContain(reader);
    await expect(executor.changes(insert, ['a'])).rejects.toThrow(/duplicate key/);
  });

  it('opens a new connection for the next read when the server ends the one in use, and the process carries on', async () => {
    const [{ pid } = { pid: 0 }] = await executor.rows<{ pid: number }>(echo, [0]);
    const ended = new Promise((resolve) => opened.at(-1)?.once('end', resolve));
    await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    await ended;
    const [row] = await executor.rows<{ n: number; pid: number }>(echo, [7]);
    expect(row?.n).toBe(7);
    expect(row?.pid).not.toBe(pid);
    expect(opened).toHaveLength(2);
  });

  it('closes its connection when ended', async () => {
    const [{ pid } = { pid: 0 }] = await executor.rows<{ pid: number }>(echo, [0]);
    await executor.end();
    const { rows } = await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(rows).toEqual([]);
  });
});
