// `npx prisma db seed` (or `npm run db:seed`): applies SEED_FILE (default prisma/seed.json) to
// DATABASE_URL, exactly as `gatehouse seed <file>` does (src/cli/seed-run.ts). The file is validated
// before anything is written, migrations are applied so a fresh database works, and the
// clients and users are written in one transaction.
// Exit codes: 0 done, 1 invalid configuration or seed file, 2 unexpected failure.
import { ConfigError, loadConfig } from '../src/config/index.js';
import { describeSeedReport, SeedInputError, seedFromFile } from '../src/cli/seed-run.js';

async function main(): Promise<number> {
  try {
    const config = loadConfig();
    const report = await seedFromFile(config, config.seedFile, { hint: ' (set SEED_FILE to choose another)' });
    console.log(describeSeedReport(config.seedFile, report));
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof SeedInputError) {
      console.error(error.message);
      return 1;
    }
    console.error('Seeding failed:', error);
    return 2;
  }
}

process.exitCode = await main();
