// `gatehouse seed <file>`; the work is in seed.ts, loaded only when the command runs.
import type { Command } from 'commander';
import { loadConfiguration } from './context.js';
import { printJson } from './io.js';

export function registerSeed(program: Command): void {
  program
    .command('seed')
    .summary('create or update clients, users and resources from a JSON file')
    .description('Create or update the clients, users and resources in a seed file (JSON; see prisma/seed.json). Validates the whole file first and writes all or nothing; re-running changes nothing.')
    .argument('<file>', 'the seed file, or - to read it from stdin')
    .option('--json', 'print what changed as JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const { describeSeedReport, seedFromFile } = await import('./seed-run.js');
      const report = await seedFromFile(await loadConfiguration(), file);
      if (options.json) printJson({ file, clients: report.clients, users: report.users, resources: report.resources });
      else console.log(describeSeedReport(file, report));
    });
}
