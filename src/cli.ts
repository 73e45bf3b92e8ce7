// Command-line entry for operators. `npm run db:migrate` runs `migrate`.
import { ConfigError, loadConfig } from './config.js';
import { createDb } from './db/client.js';
import { migrate, MigrationError } from './db/migrate.js';
import { createLogger } from './logger.js';
import { createEngine } from './server.js';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  migrate                       Apply pending database migrations to DATABASE_URL and exit
  initial-access-token create   Print a new initial access token for dynamic client
    [--expires-in <duration>]   registration (FEATURE_REGISTRATION=true); default 1d
  help                          Show this help

Configuration comes from the environment (see .env.example).`;

async function runMigrate(): Promise<number> {
  const config = loadConfig();
  const report = await migrate(config.database);
  for (const name of report.applied) console.log(`applied ${name}`);
  if (!report.applied.length) console.log(`database is up to date (${report.alreadyApplied.length} migrations applied)`);
  for (const name of report.unknown) console.warn(`warning: ${name} is applied in the database but unknown to this release`);
  return 0;
}

const DURATION = /^(\d+)([smhd])?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

async function createInitialAccessToken(args: string[]): Promise<number> {
  let expiresIn = 86400;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--expires-in') {
      const match = DURATION.exec(args[i + 1] ?? '');
      if (!match || Number(match[1]) <= 0) {
        console.error('--expires-in needs a positive duration, e.g. 3600, 15m, 12h or 7d');
        return 2;
      }
      expiresIn = Number(match[1]) * (UNIT_SECONDS[match[2] ?? 's'] ?? 1);
      i++;
    } else {
      console.error(`Unknown option: ${args[i]}\n\n${USAGE}`);
      return 2;
    }
  }
  const config = loadConfig();
  if (!config.features.registration) {
    console.error('Dynamic client registration is off: set FEATURE_REGISTRATION=true on the server (and here) first.');
    return 1;
  }
  const logger = createLogger({ logLevel: 'warn' });
  await migrate(config.database);
  const db = await createDb(config.database);
  try {
    const { provider } = await createEngine(config, db, logger);
    const token = new provider.InitialAccessToken({ expiresIn });
    const value = await token.save();
    console.log(value);
    console.error(`Valid for ${expiresIn} seconds. Send it as "Authorization: Bearer <token>" to ${config.issuer}/register.`);
    return 0;
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'migrate') return runMigrate();
  if (command === 'initial-access-token' && argv[1] === 'create') return createInitialAccessToken(argv.slice(2));
  console.error(`Unknown command: ${command}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof MigrationError) {
      console.error(error.message);
      process.exit(1);
    }
    console.error(error);
    process.exit(3);
  });
