// PostgreSQL's planner statistics, kept up to date where autovacuum does not do it. The hot
// statements are named (pg-executor.ts), and after five runs PostgreSQL may keep one generic plan
// for each, costed with the statistics of that moment. A table that was never analyzed has none,
// and a plan made on it can read a whole model's range of the wrong index instead of the primary
// key: on a server with autovacuum off, the bench's refreshes fell from about 800 to 370 per
// second over five 5-second runs as the tables grew. ANALYZE gives the planner real numbers and
// invalidates the plans made without them, on every connection of every instance. So, where
// autovacuum is off (for the server or for a table), every ANALYZE_CHECK_INTERVAL_MS the tables
// autovacuum would analyze by now (by its own threshold and scale factor) are analyzed here.
// Where autovacuum runs, this does nothing.
import type { Db } from './client.js';

export const ANALYZE_CHECK_INTERVAL_MS = 30_000;

/** This schema's tables with more changes since their last ANALYZE than autovacuum allows, where it will not analyze them. */
const STALE_TABLES = `
  SELECT s.relname AS "table"
  FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
  WHERE s.schemaname = current_schema()
    AND (current_setting('autovacuum')::boolean = false
      OR EXISTS (SELECT 1 FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_enabled' AND o.option_value::boolean = false))
    AND s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8 + current_setting('autovacuum_analyze_scale_factor')::float8 * s.n_live_tup
  ORDER BY s.relname`;

const STALE_TABLES_CHECK = { name: 'stale_tables', text: STALE_TABLES };

const quoted = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** Analyzes the tables autovacuum would have analyzed if it ran for them; returns their names. Nothing on SQLite. */
export async function analyzeStaleTables(db: Pick<Db, 'flavour' | 'executor'>): Promise<string[]> {
  if (db.flavour !== 'postgresql') return [];
  // On the executor, as every background job's statement (server.ts, startBackgroundJobs); each
  // ANALYZE alone, through the pool, never inside a group of the hot writes.
  const stale = await db.executor.rows<{ table: string }>(STALE_TABLES_CHECK, []);
  for (const { table } of stale) await db.executor.changes({ text: `ANALYZE ${quoted(table)}`, alone: true }, []);
  return stale.map(({ table }) => table);
}

/** On PostgreSQL, runs analyzeStaleTables every ANALYZE_CHECK_INTERVAL_MS; returns the stop function. */
export function startAnalyzingStaleTables(db: Db, onError: (error: unknown) => void, onAnalyzed: (tables: string[]) => void = () => {}): () => void {
  if (db.flavour !== 'postgresql') return () => {};
  let running = false;
  const timer = setInterval(() => {
    // A slow ANALYZE is not started again on top of itself.
    if (running) return;
    running = true;
    analyzeStaleTables(db)
      .then((tables) => {
        if (tables.length) onAnalyzed(tables);
      })
      .catch(onError)
      .finally(() => (running = false));
  }, ANALYZE_CHECK_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
