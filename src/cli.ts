// Command-line entry for operators. `npm run db:migrate` runs `migrate`.
import { ConfigError, loadConfig } from './config.js';
import { migrate, MigrationError } from './db/migrate.js';

const USAGE = `Usage: tsx src/cli.ts <command>

Commands:
  migrate   Apply pending database migrations to DATABASE_URL and exit
  help      Show this help

Configuration comes from the environment (see .env.example).`;

async function runMigrate(): Promise<number> {
  const config = loadConfig();
  const report = await migrate(config.database);
  for (const name of report.applied) console.log(`applied ${name}`);
  if (!report.applied.length) console.log(`database is up to date (${report.alreadyApplied.length} migrations applied)`);
  for (const name of report.unknown) console.warn(`warning: ${name} is applied in the database but unknown to this release`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'migrate') return runMigrate();
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
