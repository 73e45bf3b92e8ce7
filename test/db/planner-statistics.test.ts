// Where autovacuum does not run, Gatehouse analyzes the tables it would have analyzed
// (src/db/planner-statistics.ts), so that a plan PostgreSQL kept for a named statement while the
// table was empty is replaced by one made with real statistics. Against a real server, on a
// table with autovacuum turned off (whatever the server's own setting), and with the full index
// the lookup indexes were before they became partial, whose empty-table plan is the known trap.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { pgExecutor } from '../../src/db/pg-executor.js';
import { analyzeStaleTables } from '../../src/db/planner-statistics.js';
import { addFullAccountIndex, FULL_ACCOUNT_INDEX, flavours, growArtifacts, indexScans, migratedDb, statisticsReported, testPool, type MigratedDb } from '../helpers/databases.js';

const available = await flavours();

describe.runIf(available.includes('postgresql'))('tables analyzed where autovacuum does not run', () => {
  let db: MigratedDb;
  let pool: pg.Pool;
  let executor: ReturnType<typeof pgExecutor>;

  beforeAll(async () => {
    db = await migratedDb('postgresql');
    pool = testPool(db.url, 2);
    await pool.query('ALTER TABLE "OidcArtifact" SET (autovacuum_enabled = off)');
    await addFullAccountIndex(pool);
    // Never replaced: only ANALYZE can get the plan made on the empty table replaced.
    executor = pgExecutor(pool, pg.types, { prepared: true, replanAfter: { first: 1e12, last: 1e12 }, pipelined: () => new pg.Client({ connectionString: db.url, pipeline: true }) });
  });
  afterAll(async () => {
    await executor?.end();
    await pool?.end();
    await db?.drop();
  });

  it('analyzes a grown table, after which the plan kept from its empty days gives way to the primary key on the same connection', async () => {
    const store = createArtifactStore({ prisma: db.prisma, flavour: 'postgresql', executor });
    const lookUp = (n: number) => store.findWithBindings('AccessToken', `token-${n}`, new Date());
    const scans = () => indexScans(pool, 'OidcArtifact');
    const reported = () => statisticsReported(executor);

    for (let n = 0; n < 10; n++) await lookUp(n);
    // With the access tokens' grants, so that every join of the lookup finds its row.
    await growArtifacts(pool, { grants: true });
    await reported();
    const before = await scans();
    for (let n = 1; n <= 10; n++) await lookUp(n * 3 + 1);
    await reported();
    const stale = await scans();
    // The plan made on the empty table reads the model's whole range of the full index.
    expect(stale[FULL_ACCOUNT_INDEX]! - before[FULL_ACCOUNT_INDEX]!).toBeGreaterThanOrEqual(10);

    // The insert's changes reach the statistics views a moment later; then the table is analyzed.
    await expect.poll(() => analyzeStaleTables(db), { timeout: 15_000, interval: 500 }).toContain('OidcArtifact');
    const { rows } = await pool.query<{ analyzed: boolean }>(`SELECT last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'OidcArtifact'`);
    expect(rows[0]?.analyzed).toBe(true);

    const analyzed = await scans();
    for (let n = 11; n <= 30; n++) expect(await lookUp(n * 3 + 1)).not.toBeNull();
    await reported();
    const after = await scans();
    expect(after[FULL_ACCOUNT_INDEX]).toBe(analyzed[FULL_ACCOUNT_INDEX]);
    // The token and its grant by the primary key, its session by its uid.
    expect(after.OidcArtifact_pkey! - analyzed.OidcArtifact_pkey!).toBeGreaterThanOrEqual(40);
    expect(after.OidcArtifact_model_uid_idx! - analyzed.OidcArtifact_model_uid_idx!).toBeGreaterThanOrEqual(20);

    // Nothing changed since: not analyzed again.
    expect(await analyzeStaleTables(db)).not.toContain('OidcArtifact');
  });
});

describe('tables analyzed where autovacuum does not run, on SQLite', () => {
  it('does nothing: SQLite plans each statement when it is prepared, from its own statistics', async () => {
    const db = await migratedDb('sqlite');
    try {
      expect(await analyzeStaleTables(db)).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});
