// Writes answered before their commit (src/db/executor.ts, EarlyAnswers): while the caller's scope
// is set, a write runs at once in its turn's transaction and answers at once; the caller learns
// from committed(scope) when the turn is committed, or that it failed. Other connections see the
// writes only once committed. The other connection here is a second handle on the same file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteExecutor, type EarlyAnswers } from '../../src/db/executor.js';

const insert = { name: 'early_insert', text: 'INSERT INTO t (id) VALUES (?)' };
const count = { name: 'early_count', text: 'SELECT count(*) AS "n" FROM t' };
/** A row whose parent is missing: refused only at COMMIT (a deferred foreign key), as a commit that fails. */
const orphan = { name: 'early_orphan', text: 'INSERT INTO child (parent) VALUES (?)' };

let dir: string;
let handles: Database.Database[];
function open(): Database.Database {
  const handle = new Database(join(dir, 'early.db'), { timeout: 5000 });
  handle.pragma('journal_mode = WAL');
  handle.pragma('foreign_keys = ON');
  handles.push(handle);
  return handle;
}
const rowsSeenBy = (handle: Database.Database) => (handle.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-early-'));
  handles = [];
  open().exec(`
    CREATE TABLE t (id TEXT PRIMARY KEY);
    CREATE TABLE parent (id INTEGER PRIMARY KEY);
    CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`);
});
afterEach(() => {
  handles.forEach((handle) => handle.close());
  rmSync(dir, { recursive: true, force: true });
});

/** The executor on a new handle, with early answers for `scope` while `inScope.on` is true. */
function executorWithScope() {
  const executor = sqliteExecutor(open(), { prepared: true });
  const early = executor.early as EarlyAnswers;
  const scope = {};
  const inScope = { on: true };
  early.answerWhile(() => (inScope.on ? scope : undefined));
  return { executor, early, scope, inScope };
}

describe('writes answered early', () => {
  it('answer before their commit, which other connections wait for, and committed() tells when it is done', async () => {
    const { executor, early, scope } = executorWithScope();
    const other = open();
    expect(await executor.changes(insert, ['a'])).toBe(1);
    expect(await executor.changes(insert, ['b'])).toBe(1);
    // Answered, in the same turn: this connection sees both, the other neither yet.
    expect(await executor.rows(count, [])).toEqual([{ n: 2 }]);
    expect(rowsSeenBy(other)).toBe(0);
    await early.committed(scope);
    expect(rowsSeenBy(other)).toBe(2);
    // Nothing waits any more: at once.
    await early.committed(scope);
  });

  it('leave writes made outside the scope answered only once committed, in the same transaction', async () => {
    const { executor, scope, early, inScope } = executorWithScope();
    const other = open();
    await executor.changes(insert, ['early']);
    inScope.on = false;
    const late = executor.changes(insert, ['late']).then((n) => ({ n, seen: rowsSeenBy(other) }));
    // By the time the late write answers, the other connection sees it and the early one.
    expect(await late).toEqual({ n: 1, seen: 2 });
    await early.committed(scope);
  });

  it('are not made before answerWhile is called: each write answers once committed, as always', async () => {
    const executor = sqliteExecutor(open(), { prepared: true });
    const other = open();
    const answered = executor.changes(insert, ['a']).then(() => rowsSeenBy(other));
    expect(await answered).toBe(1);
  });

  it('refuse only the statement that fails; the rest of the turn is committed', async () => {
    const { executor, early, scope } = executorWithScope();
    const other = open();
    await executor.changes(insert, ['a']);
    await expect(executor.changes(insert, ['a'])).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    await executor.changes(insert, ['b']);
    await early.committed(scope);
    expect(rowsSeenBy(other)).toBe(2);
  });

  it('when the commit fails, make committed() refuse, refuse the late writes and leave nothing written', async () => {
    const { executor, early, scope, inScope } = executorWithScope();
    const other = open();
    await executor.changes(insert, ['a']);
    await executor.changes(orphan, [42]);
    inScope.on = false;
    const late = executor.changes(insert, ['late']);
    await expect(early.committed(scope)).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    await expect(late).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    // Still refused when asked again after the turn ended, and nothing of it was kept.
    await expect(early.committed(scope)).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    expect(rowsSeenBy(other)).toBe(0);
    expect(await executor.rows(count, [])).toEqual([{ n: 0 }]);
    // The next turn starts afresh, for another scope.
    const next = {};
    early.answerWhile(() => next);
    await executor.changes(insert, ['again']);
    await early.committed(next);
    expect(rowsSeenBy(other)).toBe(1);
  });

  it('keep refusing a scope whose earlier turn failed, though it went on to write in a later one that was committed', async () => {
    const { executor, early, scope } = executorWithScope();
    await executor.changes(orphan, [42]);
    await new Promise((resolve) => setImmediate(resolve));
    await executor.changes(insert, ['later']);
    await expect(early.committed(scope)).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    // Another scope's answer is not refused for it.
    const another = {};
    early.answerWhile(() => another);
    await executor.changes(insert, ['another']);
    await early.committed(another);
  });

  it('give way to statements run outside(): the open turn is committed first and none opens until they end', async () => {
    const { executor, early, scope } = executorWithScope();
    const handle = handles.at(-1) as Database.Database;
    const other = open();
    await executor.changes(insert, ['a']);
    let release = () => {};
    const outside = early.outside(async () => {
      // As Prisma's transaction on the same connection: it could not begin inside the turn's.
      handle.exec('BEGIN');
      handle.prepare('INSERT INTO t (id) VALUES (?)').run('prisma');
      await new Promise<void>((resolve) => (release = resolve));
      handle.exec('COMMIT');
    });
    expect(rowsSeenBy(other)).toBe(1);
    await early.committed(scope);
    // A write meanwhile opens no turn inside that transaction (it joins it, as any write on the connection would).
    const meanwhile = executor.changes(insert, ['meanwhile']);
    release();
    await outside;
    expect(await meanwhile).toBe(1);
    expect(rowsSeenBy(other)).toBe(3);
  });
});
