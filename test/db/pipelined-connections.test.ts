// On PostgreSQL the hot statements run on connections of the executor's own in pg's pipeline
// mode (src/db/pg-executor.ts): reads share one, and the writes of one event-loop turn go to one
// of the writes' connections as one transaction. These tests run against a real server: answers
// reach the right callers, a failing statement fails alone, a group stuck on a row lock gives
// way, connections the server ends are replaced, and statements are planned again as tables grow.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { GROUP_LOCK_TIMEOUT_MS, pgExecutor } from '../../src/db/pg-executor.js';
import { addFullAccountIndex, createTestDatabase, FULL_ACCOUNT_INDEX, flavours, growArtifacts, indexScans as indexScansOf, migratedDb, statisticsReported, testPool, type MigratedDb, type TestDatabase } from '../helpers/databases.js';

const available = await flavours();

type Row = { id: string; tx: string; pid: number };

describe.runIf(available.includes('postgresql'))('hot statements on pipelined PostgreSQL connections', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let opened: pg.Client[];
  let executor: ReturnType<typeof pgExecutor>;
  const echo = { name: 'pipelined_echo', text: 'SELECT $1::int AS "n", pg_backend_pid() AS "pid"' };
  const insert = { name: 'pipelined_insert', text: 'INSERT INTO probe (id) VALUES ($1)' };
  const find = { name: 'pipelined_find', text: 'SELECT id, tx::text AS tx, pid FROM probe WHERE id = $1' };
  const touch = { name: 'pipelined_touch', text: "UPDATE probe SET note = 'touched' WHERE id = $1" };
  const rowsOf = async (ids: string[]) => (await pool.query<Row>('SELECT id, tx::text AS tx, pid FROM probe WHERE id = ANY($1) ORDER BY id', [ids])).rows;
  /** Socket writes of the pipelined connection `client` from now on (each a system call). */
  const countSocketWrites = (client: pg.Client) => {
    const socket = (client as unknown as { connection: { stream: Record<'_write' | '_writev', (...args: unknown[]) => unknown> } }).connection.stream;
    let writes = 0;
    for (const method of ['_write', '_writev'] as const) {
      const original = socket[method].bind(socket);
      socket[method] = (...args: unknown[]) => (writes++, original(...args));
    }
    return () => writes;
  };
  const countCheckouts = () => {
    const pids: number[] = [];
    const count = (client: pg.PoolClient) => pids.push((client as unknown as { processID: number }).processID);
    pool.on('acquire', count);
    return { pids, stop: () => pool.off('acquire', count) };
  };

  beforeAll(async () => {
    database = await createTestDatabase('postgresql');
    pool = testPool(database.config.url, 4);
    await pool.query('CREATE TABLE probe (id text PRIMARY KEY, note text, tx bigint NOT NULL DEFAULT txid_current(), pid int NOT NULL DEFAULT pg_backend_pid())');
    opened = [];
    executor = pgExecutor(pool, pg.types, {
      prepared: true,
      pipelined: () => {
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
    const checkouts = countCheckouts();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, n) => executor.rows<{ n: number; pid: number }>(echo, [n])));
    checkouts.stop();
    expect(checkouts.pids).toEqual([]);
    expect(answers.map(([row]) => row?.n)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    expect(new Set(answers.map(([row]) => row?.pid)).size).toBe(1);
    expect(opened).toHaveLength(1);
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(rows[0]?.pid).not.toBe(answers[0]?.[0]?.pid);
  });

  it('writes the reads of one turn to the socket at once', async () => {
    const socketWrites = countSocketWrites(opened[0]!);
    expect((await Promise.all(Array.from({ length: 20 }, (_, n) => executor.rows<{ n: number }>(echo, [n])))).map(([row]) => row?.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(socketWrites()).toBe(1);
  });

  it('fails a bad read alone: the reads written before and after it on the connection are answered', async () => {
    const settled = await Promise.allSettled([executor.rows(echo, [1]), executor.rows(echo, ['not a number']), executor.rows(echo, [3])]);
    expect(settled.map((answer) => answer.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/invalid input syntax for type integer/);
    expect(await executor.rows(echo, [4])).toMatchObject([{ n: 4 }]);
  });

  it('commits the writes of one turn in one transaction, on a connection of its own, and a read then sees them', async () => {
    const [{ pid: reader } = { pid: 0 }] = await executor.rows<{ pid: number }>(echo, [0]);
    const checkouts = countCheckouts();
    // The first write opens a writes connection; the next group, made when it is free, goes to it again.
    expect(await executor.changes(insert, ['turn-0'])).toBe(1);
    const socketWrites = countSocketWrites(opened.at(-1)!);
    const ids = ['turn-1', 'turn-2', 'turn-3', 'turn-4', 'turn-5'];
    expect(await Promise.all(ids.map((id) => executor.changes(insert, [id])))).toEqual([1, 1, 1, 1, 1]);
    expect(socketWrites()).toBe(1);
    checkouts.stop();
    expect(checkouts.pids).toEqual([]);
    const rows = await rowsOf(ids);
    expect(rows.map((row) => row.id)).toEqual(ids);
    expect(new Set(rows.map((row) => row.tx)).size).toBe(1);
    expect(new Set(rows.map((row) => row.pid)).size).toBe(1);
    expect(rows[0]?.pid).not.toBe(reader);
    expect(await executor.rows(find, ['turn-3'])).toMatchObject([{ id: 'turn-3' }]);
    // A write made in a later turn is another transaction.
    expect(await executor.changes(insert, ['turn-6'])).toBe(1);
    expect((await rowsOf(['turn-6']))[0]?.tx).not.toBe(rows[0]?.tx);
  });

  it('fails only the write that fails: its group is rolled back and the others are committed one by one', async () => {
    expect(await executor.changes(insert, ['taken'])).toBe(1);
    const settled = await Promise.allSettled([executor.changes(insert, ['beside-1']), executor.changes(insert, ['taken']), executor.changes(insert, ['beside-2'])]);
    expect(settled.map((answer) => answer.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/duplicate key/);
    const rows = await rowsOf(['beside-1', 'beside-2']);
    expect(rows.map((row) => row.id)).toEqual(['beside-1', 'beside-2']);
    expect(rows[0]?.tx).not.toBe(rows[1]?.tx);
  });

  it('sends locking reads through the pool', async () => {
    const checkouts = countCheckouts();
    expect(await executor.rows({ name: 'pipelined_lock', text: 'SELECT id FROM probe WHERE id = $1 FOR UPDATE' }, ['taken'])).toEqual([{ id: 'taken' }]);
    checkouts.stop();
    expect(checkouts.pids).toHaveLength(1);
  });

  it('sends a statement marked alone through the pool, outside any group, even while writes are grouped', async () => {
    const checkouts = countCheckouts();
    const [analyzed] = await Promise.all([executor.changes({ text: 'ANALYZE probe', alone: true }, []), executor.changes(insert, ['beside-analyze'])]);
    checkouts.stop();
    expect(analyzed).toBe(0);
    expect(checkouts.pids).toHaveLength(1);
    expect(await rowsOf(['beside-analyze'])).toHaveLength(1);
  });

  it('gives way when a group waits on a row lock held elsewhere: its other writes are committed while the lock is held', async () => {
    expect(await executor.changes(insert, ['held'])).toBe(1);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("UPDATE probe SET note = 'holding' WHERE id = 'held'");
      let touched: number | undefined;
      const beside = executor.changes(insert, ['beside-held']);
      const waiting = executor.changes(touch, ['held']).then((count) => (touched = count));
      const started = Date.now();
      expect(await beside).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(GROUP_LOCK_TIMEOUT_MS - 100);
      expect(await rowsOf(['beside-held'])).toHaveLength(1);
      expect(touched).toBeUndefined();
      await holder.query('COMMIT');
      expect(await waiting).toBe(1);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
    expect((await pool.query("SELECT note FROM probe WHERE id = 'held'")).rows).toEqual([{ note: 'touched' }]);
  });

  it('opens new connections when the server ends the ones in use, and the process carries on', async () => {
    const [{ pid: reader } = { pid: 0 }] = await executor.rows<{ pid: number }>(echo, [0]);
    expect(await executor.changes(insert, ['before-end'])).toBe(1);
    const [{ pid: writer } = { pid: 0 }] = await rowsOf(['before-end']);
    const ended = Promise.all(opened.map((client) => new Promise((resolve) => client.once('end', resolve))).slice(0, 2));
    await pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [[reader, writer]]);
    await Promise.race([ended, sleep(2000)]);
    const [row] = await executor.rows<{ n: number; pid: number }>(echo, [7]);
    expect(row?.n).toBe(7);
    expect(row?.pid).not.toBe(reader);
    expect(await executor.changes(insert, ['after-end'])).toBe(1);
    expect((await rowsOf(['after-end']))[0]?.pid).not.toBe(writer);
  });

  it('answers reads that waited for a connection which was retired before their turn came, on the next one', async () => {
    const pids: number[] = [];
    const retiring = pgExecutor(pool, pg.types, {
      prepared: true,
      replanAfter: { first: 3, last: 3 },
      pipelined: () => {
        const client = new pg.Client({ connectionString: database.config.url, pipeline: true });
        client.on('connect', () => pids.push((client as unknown as { processID: number }).processID));
        return client;
      },
    });
    try {
      // Three turns' reads, all made before the first connection has opened: the second turn's
      // reach the third statement and retire it, so the third turn's go to a new one.
      const answers: Promise<{ n: number; pid: number }[]>[] = [];
      for (let turn = 0; turn < 3; turn++) {
        answers.push(retiring.rows(echo, [turn * 2]), retiring.rows(echo, [turn * 2 + 1]));
        await new Promise(setImmediate);
      }
      const rows = (await Promise.all(answers)).map(([row]) => row!);
      expect(rows.map((row) => row.n)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(pids).toHaveLength(2);
      expect(rows.map((row) => pids.indexOf(row.pid))).toEqual([0, 0, 0, 0, 1, 1]);
    } finally {
      await retiring.end();
    }
  });

  it('commits the writes still queued when it is ended, then closes its connections', async () => {
    const queued = [executor.changes(insert, ['at-end-1']), executor.changes(insert, ['at-end-2'])];
    await executor.end();
    expect(await Promise.all(queued)).toEqual([1, 1]);
    expect((await rowsOf(['at-end-1', 'at-end-2'])).map((row) => row.id)).toEqual(['at-end-1', 'at-end-2']);
    const pids = opened.map((client) => (client as unknown as { processID: number }).processID);
    expect((await pool.query('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)', [pids])).rows).toEqual([]);
  });
});

describe.runIf(available.includes('postgresql'))('statements planned again as the tables grow', () => {
  let db: MigratedDb;
  let pool: pg.Pool;
  let executor: ReturnType<typeof pgExecutor>;
  const indexScans = () => indexScansOf(pool, 'OidcArtifact');

  beforeAll(async () => {
    db = await migratedDb('postgresql');
    pool = testPool(db.url, 2);
    await addFullAccountIndex(pool);
  });
  afterAll(async () => {
    await executor?.end();
    await pool?.end();
    await db?.drop();
  });

  it('plans an artifact lookup first prepared on an empty table again, on a new connection, and then uses the primary key', async () => {
    const pids: number[] = [];
    executor = pgExecutor(pool, pg.types, {
      prepared: true,
      replanAfter: { first: 40, last: 40 },
      pipelined: () => {
        const client = new pg.Client({ connectionString: db.url, pipeline: true });
        client.on('connect', () => pids.push((client as unknown as { processID: number }).processID));
        return client;
      },
    });
    const store = createArtifactStore({ prisma: db.prisma, flavour: 'postgresql', executor });
    const lookUp = (n: number) => store.findWithBindings('AccessToken', `token-${n}`, new Date());
    const reported = () => statisticsReported(executor);

    for (let n = 0; n < 10; n++) await lookUp(n);
    await growArtifacts(pool);

    // The plan made on the empty table reads the model's whole range of the full index (the trap).
    await reported();
    const before = await indexScans();
    for (let n = 1; n <= 10; n++) await lookUp(n * 3 + 1);
    await reported();
    const stale = await indexScans();
    expect(stale[FULL_ACCOUNT_INDEX]! - before[FULL_ACCOUNT_INDEX]!).toBeGreaterThanOrEqual(10);

    // Past `first` queries the connection is replaced; the new one plans with the grown table.
    for (let n = 11; n <= 30; n++) await lookUp(n * 3 + 1);
    await reported();
    expect(pids).toHaveLength(2);
    await expect.poll(async () => (await pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pids[0]])).rowCount, { timeout: 5000 }).toBe(0);
    // A backend leaves pg_stat_activity just before its exit flushes its last counts.
    await sleep(200);
    const replanned = await indexScans();
    for (let n = 31; n <= 50; n++) expect(await lookUp(n * 3 + 1)).not.toBeNull();
    await reported();
    const after = await indexScans();
    expect(after[FULL_ACCOUNT_INDEX]).toBe(replanned[FULL_ACCOUNT_INDEX]);
    expect(after.OidcArtifact_pkey! - replanned.OidcArtifact_pkey!).toBeGreaterThanOrEqual(20);
  });
});
