// Configuration and database for a command. Both load only when a command runs, and their
// modules are imported only then, so --help and usage errors need no environment and start
// quickly. The database is migrated first when AUTO_MIGRATE allows, and always closed.
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../core/logger.js';

export interface CommandContext {
  readonly config: Config;
  readonly db: Db;
  /** Warnings and errors as JSON lines on stderr, so stdout carries only the command's output. */
  readonly logger: Logger;
}

/** The configuration from the environment, as the server reads it; throws ConfigError. */
export async function loadConfiguration(): Promise<Config> {
  const { loadConfig } = await import('../config/index.js');
  return loadConfig();
}

async function createCliLogger(config: Pick<Config, 'logLevel'>): Promise<Logger> {
  // pino is CommonJS: its default export is the module, under Node's loader and in the bundle.
  const [{ default: pino }, { createLogger }] = await Promise.all([import('pino'), import('../core/logger.js')]);
  return createLogger({ logLevel: config.logLevel === 'silent' ? 'silent' : 'warn' }, pino.destination(2));
}

/** Runs `work` with the configuration and an open database, which it closes afterwards. */
export async function withDatabase<T>(work: (context: CommandContext) => Promise<T>, options: { config?: Config } = {}): Promise<T> {
  const config = options.config ?? (await loadConfiguration());
  const [{ createDb }, { migrate }] = await Promise.all([import('../db/client.js'), import('../db/migrate.js')]);
  if (config.database.autoMigrate) await migrate(config.database);
  const db = await createDb(config.database);
  try {
    return await work({ config, db, logger: await createCliLogger(config) });
  } finally {
    await db.close();
  }
}
