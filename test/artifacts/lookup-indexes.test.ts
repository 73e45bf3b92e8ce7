// OidcArtifact's lookup indexes hold only the rows that have their value (partial indexes,
// prisma/*/migrations/*_partial_artifact_indexes). Each look-up compares the column with a value,
// which both databases take to imply IS NOT NULL: every look-up still uses its index.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { sqliteFilePath } from '../../src/db/client.js';
import type { Executor, Statement } from '../../src/db/executor.js';
import { flavours, migratedDb, testPool, type MigratedDb } from '../helpers/databases.js';

const FLAVOURS = await flavours();
const NOW = new Date('2026-12-05T12:00:00Z');
/** The partial indexes, each holding only the rows that have its value. */
const LOOKUP_INDEXES = ['OidcArtifact_grantId_idx', 'OidcArtifact_model_uid_idx', 'OidcArtifact_model_userCode_idx', 'OidcArtifact_model_accountId_clientId_idx', 'OidcArtifact_clientId_idx'];

type Store = ReturnType<typeof createArtifactStore>;
type Sent = { statement: Statement; args: readonly unknown[] };

/** Each statement a store call sends, with its arguments; it answers no rows. */
function recordingExecutor(sent: Sent[]): Executor {
  return {
    rows: async (statement, args) => (sent.push({ statement, args }), []),
    changes: async (statement, args) => (sent.push({ statement, args }), 0),
  };
}

describe.each(FLAVOURS)('artifact look-ups on %s', (flavour) => {
  let db: MigratedDb;
  /**
   * The plan the database makes for a statement and its arguments, as text, with the other lookup
   * indexes out of the way (dropped in a transaction that is rolled back), so that a plan naming
   * `index` shows the statement can use it, not merely that another index served.
   */
  let plan: (statement: Statement, args: readonly unknown[], index: string) => Promise<string>;
  let close: () => Promise<void>;
  const others = (index: string) => LOOKUP_INDEXES.filter((name) => name !== index).map((name) => `DROP INDEX "${name}"`);

  beforeAll(async () => {
    db = await migratedDb(flavour);
    if (flavour === 'sqlite') {
      const handle = new Database(sqliteFilePath(db.url));
      const sqliteArgs = (args: readonly unknown[]) => args.map((value) => (value instanceof Date ? value.getTime() : value));
      plan = async ({ text }, args, index) => {
        handle.exec(['BEGIN', ...others(index)].join(';'));
        try {
          return (handle.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...sqliteArgs(args)) as { detail: string }[]).map((row) => row.detail).join('\n');
        } finally {
          handle.exec('ROLLBACK');
        }
      };
      close = async () => void handle.close();
    } else {
      const pool = testPool(db.url, 1);
      const client = await pool.connect();
      // An index scan wherever one is possible: a table this small would otherwise be read whole.
      await client.query('SET enable_seqscan = off');
      plan = async ({ text }, args, index) => {
        await client.query(['BEGIN', ...others(index)].join(';'));
        try {
          return (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, [...args])).rows.map((row) => row['QUERY PLAN']).join('\n');
        } finally {
          await client.query('ROLLBACK');
        }
      };
      close = async () => {
        client.release();
        await pool.end();
      };
    }
  });
  afterAll(async () => {
    await close();
    await db.drop();
  });

  /** The statement and arguments a store call sends. */
  async function sentBy(call: (store: Store) => Promise<unknown>): Promise<Sent> {
    const sent: Sent[] = [];
    await call(createArtifactStore({ ...db, executor: recordingExecutor(sent) }));
    expect(sent).toHaveLength(1);
    return sent[0]!;
  }

  it.each([
    ['a session by its uid', (store: Store) => store.findBy('Session', 'uid', 'some-uid', NOW), 'OidcArtifact_model_uid_idx'],
    ['a device code by its user code', (store: Store) => store.findBy('DeviceCode', 'userCode', 'WXYZ-1234', NOW), 'OidcArtifact_model_userCode_idx'],
    ['the latest grant of a person to a client', (store: Store) => store.latestGrant('account-1', 'client-1', NOW), 'OidcArtifact_model_accountId_clientId_idx'],
    ["a token's session, read with the token", (store: Store) => store.findWithBindings('AccessToken', 'token-1', NOW), 'OidcArtifact_model_uid_idx'],
  ])('%s uses its index', async (_, call, index) => {
    const { statement, args } = await sentBy(call);
    expect(await plan(statement, args, index)).toContain(index);
  });
});
