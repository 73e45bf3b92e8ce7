// SQLite's checkpoints run on a worker thread (db/sqlite-checkpoints.ts): the database file takes
// in committed writes long before SQLite's own automatic checkpoint would have run, that automatic
// checkpoint is left only as a backstop (SQLite's usual one again if the worker fails), and
// closing runs a last checkpoint and ends the worker. A process whose checkpoints another runs
// (a cluster's workers, whose primary runs them) starts no worker and keeps only the backstop.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createDb, sqliteFilePath, type Db } from '../../src/db/client.js';
import { BACKSTOP_PAGES, checkpointInBackground, SQLITE_DEFAULT_PAGES } from '../../src/db/sqlite-checkpoints.js';
import { migratedDb, type MigratedDb } from '../helpers/databases.js';

const PAGE_BYTES = 4096;
/** SQLite's default automatic checkpoint: the log would reach this many pages before the commit that crossed it copied them back. */
const SQLITE_DEFAULT_CHECKPOINT_PAGES = SQLITE_DEFAULT_PAGES;

describe('SQLite checkpoints in the background', () => {
  let db: MigratedDb | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  /** Commits about `pages` pages of rows to the Setting table, a row per commit. */
  async function write(target: Db, pages: number): Promise<void> {
    const value = 'x'.repeat(PAGE_BYTES - 200);
    for (let i = 0; i < pages; i++) await target.prisma.setting.create({ data: { key: `filler-${i}`, valueEncrypted: value } });
  }

  it('copies committed writes into the database file within a moment, with the log far below the 1,000 pages at which SQLite would have done it inside a commit', async () => {
    db = await migratedDb('sqlite');
    const file = sqliteFilePath(db.url);
    const before = statSync(file).size;
    await write(db, 200);
    expect(statSync(`${file}-wal`).size).toBeLessThan(SQLITE_DEFAULT_CHECKPOINT_PAGES * PAGE_BYTES);
    const deadline = Date.now() + 5000;
    while (statSync(file).size < before + 150 * PAGE_BYTES && Date.now() < deadline) await sleep(25);
    expect(statSync(file).size).toBeGreaterThanOrEqual(before + 150 * PAGE_BYTES);
    // Nothing was lost on the way: the rows are there, read back through the main connection.
    expect(await db.prisma.setting.count({ where: { key: { startsWith: 'filler-' } } })).toBe(200);
  });

  it("leaves the main connection's own automatic checkpoint only as a backstop, far beyond what the worker lets the log reach", async () => {
    db = await migratedDb('sqlite');
    const [row] = await db.prisma.$queryRawUnsafe<{ wal_autocheckpoint: bigint }[]>('PRAGMA wal_autocheckpoint');
    expect(Number(row!.wal_autocheckpoint)).toBe(BACKSTOP_PAGES);
    expect(BACKSTOP_PAGES).toBeGreaterThan(SQLITE_DEFAULT_CHECKPOINT_PAGES);
  });

  it('on close, runs a last checkpoint and ends the worker: the last connection out removes the log, and the rows stay', async () => {
    db = await migratedDb('sqlite');
    const file = sqliteFilePath(db.url);
    const second = await createDb({ flavour: 'sqlite', url: db.url });
    await write(second, 20);
    expect(existsSync(`${file}-wal`)).toBe(true);
    await second.close();
    await db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const reopened = await createDb({ flavour: 'sqlite', url: db.url });
    try {
      expect(await reopened.prisma.setting.count({ where: { key: { startsWith: 'filler-' } } })).toBe(20);
    } finally {
      await reopened.close();
    }
  });

  it('with checkpoints left to another process, runs none below the backstop: the file takes the writes in only when a connection that checkpoints does', async () => {
    db = await migratedDb('sqlite');
    const file = sqliteFilePath(db.url);
    // The migrated database's own connection (which checkpoints) is closed, with its last checkpoint.
    await db.close();
    const worker = await createDb({ flavour: 'sqlite', url: db.url }, { checkpoints: false });
    try {
      const [row] = await worker.prisma.$queryRawUnsafe<{ wal_autocheckpoint: bigint }[]>('PRAGMA wal_autocheckpoint');
      expect(Number(row!.wal_autocheckpoint)).toBe(BACKSTOP_PAGES);
      const before = statSync(file);
      await write(worker, 50);
      await sleep(600);
      expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
      expect(statSync(`${file}-wal`).size).toBeGreaterThanOrEqual(50 * PAGE_BYTES);
      // The primary's connection, as a cluster's primary opens it.
      const primary = await createDb({ flavour: 'sqlite', url: db.url });
      try {
        const deadline = Date.now() + 5000;
        while (statSync(file).size < before.size + 40 * PAGE_BYTES && Date.now() < deadline) await sleep(25);
        expect(statSync(file).size).toBeGreaterThanOrEqual(before.size + 40 * PAGE_BYTES);
      } finally {
        await primary.close();
      }
    } finally {
      await worker.close();
    }
  });

  it('when the worker fails, says so and gives SQLite back its own checkpoint at the usual size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-checkpoints-'));
    const handle = new Database(join(dir, 'main.db'));
    try {
      handle.pragma('journal_mode = WAL');
      // The worker cannot open a database inside a folder that does not exist.
      const failure = new Promise<string>((resolve) => checkpointInBackground(handle, join(dir, 'missing', 'main.db'), 100, resolve));
      expect(await failure).toMatch(/directory does not exist|unable to open/i);
      expect(handle.pragma('wal_autocheckpoint', { simple: true })).toBe(SQLITE_DEFAULT_PAGES);
    } finally {
      handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
