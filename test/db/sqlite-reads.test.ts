// A kept read on SQLite (src/db/executor.ts) makes its rows from better-sqlite3's array rows: the
// objects must be the ones the driver itself makes, whatever the columns are called or hold.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteExecutor } from '../../src/db/executor.js';

function withHandle(run: (handle: Database.Database) => Promise<void>) {
  return async () => {
    const handle = new Database(':memory:');
    handle.defaultSafeIntegers(true); // as Prisma's adapter opens it
    try {
      await run(handle);
    } finally {
      handle.close();
    }
  };
}

const asDriverReadsIt = (handle: Database.Database, text: string, args: unknown[]) => handle.prepare(text).all(...args);

describe('kept reads on SQLite', () => {
  it('give the rows the driver gives, column for column, value for value', withHandle(async (handle) => {
    handle.exec(`CREATE TABLE t ("id" TEXT PRIMARY KEY, "n" INTEGER, "x" REAL, "b" BLOB, "j" TEXT, "at" INTEGER)`);
    const insert = handle.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)');
    insert.run('a', 1, 1.5, Buffer.from([1, 2, 3]), '{"k":"v"}', Date.now());
    insert.run('b', null, null, null, null, null);
    insert.run('c', 2n ** 62n, -0.25, Buffer.alloc(0), '', 0);
    const text = `SELECT "id", "n", "x", "b", "j", "at", "id" AS "u_id", "n" + 1 AS "next" FROM t WHERE "id" >= ? ORDER BY "id"`;
    const executor = sqliteExecutor(handle, { prepared: true });
    const statement = { name: 'reads_probe', text };
    for (let i = 0; i < 2; i++) expect(await executor.rows(statement, ['a'])).toEqual(asDriverReadsIt(handle, text, ['a']));
    expect(await executor.rows(statement, ['z'])).toEqual([]);
  }));

  it('keep column names that need quoting and repeated names as the driver does, and __proto__ as a plain column', withHandle(async (handle) => {
    const text = `SELECT 1 AS "a""b", 2 AS "back\\slash", 3 AS "line
break", 4 AS "same", 5 AS "same", 6 AS "__proto__", 7 AS "constructor", 8 AS "ünï ${'$'}{code}"`;
    const executor = sqliteExecutor(handle, { prepared: true });
    const [row] = await executor.rows<Record<string, unknown>>({ name: 'names_probe', text }, []);
    const [driverRow] = asDriverReadsIt(handle, text, []) as Record<string, unknown>[];
    // Compared without __proto__: the driver drops that column on Node 20 (it sets the row's
    // __proto__ to the value, which a number cannot be) and keeps it on Node 22. Here it stays a
    // column on every runtime.
    const withoutProto = (r: Record<string, unknown>) => Object.entries(r).filter(([name]) => name !== '__proto__');
    expect(withoutProto(row!)).toEqual(withoutProto(driverRow!));
    expect(row!['same']).toBe(5n);
    expect(Object.hasOwn(row!, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(6n);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
  }));
});
