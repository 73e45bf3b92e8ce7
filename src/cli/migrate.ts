// `gatehouse migrate` (and `npm run db:migrate`): apply pending migrations to DATABASE_URL, then
// rewrite artifacts stored before their secret ids were hashed (artifacts/at-rest.ts).
import type { Command } from 'commander';
import { loadConfiguration, withDatabase } from './context.js';
import { note, printJson } from './io.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .summary('apply pending database migrations')
    .description('Apply pending database migrations to DATABASE_URL and exit.')
    .option('--json', 'print the applied, already applied and unknown migrations as JSON')
    .action(async (options: { json?: boolean }) => {
      const config = await loadConfiguration();
      const [{ migrate }, { sealStoredArtifacts }] = await Promise.all([import('../db/migrate.js'), import('../artifacts/at-rest.js')]);
      const report = await migrate(config.database);
      const rewritten = await withDatabase(({ db }) => sealStoredArtifacts(db, config.secrets), { config });
      if (rewritten) note(`hashed the ids of ${rewritten} stored tokens, codes and sessions`);
      if (options.json) {
        printJson(report);
      } else {
        for (const name of report.applied) console.log(`applied ${name}`);
        if (!report.applied.length) console.log(`database is up to date (${report.alreadyApplied.length} migrations applied)`);
      }
      for (const name of report.unknown) note(`warning: ${name} is applied in the database but unknown to this release`);
    });
}
