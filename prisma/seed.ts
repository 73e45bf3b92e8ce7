// `npx prisma db seed` (or `npm run db:seed`): applies SEED_FILE (default prisma/seed.json) to
// DATABASE_URL. The file is validated before anything is written, migrations are applied so a
// fresh database works, and the clients and users are written in one transaction.
// Exit codes: 0 done, 1 invalid configuration or seed file, 2 unexpected failure.
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from '../src/config.js';
import { createAuditQueries } from '../src/db/audit.js';
import { createDb } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { applySeed, parseSeedFile, type SeedChanges, type SeedFile } from '../src/db/seed.js';
import { clientSecretSealing } from '../src/oidc/client-secrets.js';

/** A problem with the input, reported as it is and answered with exit code 1. */
class InputError extends Error {}

function readSeedFile(path: string, passwordMinLength: number): SeedFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`Seed file ${path} does not exist (set SEED_FILE to choose another).`);
    throw new InputError(`Seed file ${path} cannot be read: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`Seed file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = parseSeedFile(json, { passwordMinLength });
  if (!parsed.ok) {
    const count = parsed.problems.length === 1 ? '1 problem' : `${parsed.problems.length} problems`;
    throw new InputError(`Seed file ${path} has ${count}; nothing was written:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return parsed.data;
}

function summary(kind: string, changes: SeedChanges): string {
  const named = (verb: string, names: string[]) => `${names.length} ${verb}${names.length ? ` (${names.join(', ')})` : ''}`;
  return `${kind}: ${named('created', changes.created)}, ${named('updated', changes.updated)}, ${changes.unchanged.length} unchanged`;
}

async function seed(config: Config): Promise<void> {
  const data = readSeedFile(config.seedFile, config.passwordMinLength);
  await migrate(config.database);
  const db = await createDb(config.database);
  try {
    const report = await applySeed(db, data, { bcryptCost: config.bcryptCost, clientSecrets: clientSecretSealing(config.secrets) });
    console.log(`Seeded from ${config.seedFile}`);
    console.log(summary('clients', report.clients));
    console.log(summary('users', report.users));
    console.log(summary('resources', report.resources));
    const audit = createAuditQueries(db.prisma);
    for (const clientId of report.clients.created) await audit.record({ type: 'client.created', clientId, details: { source: 'seed' } });
    for (const clientId of report.clients.updated) await audit.record({ type: 'client.updated', clientId, details: { source: 'seed' } });
  } finally {
    await db.close();
  }
}

async function main(): Promise<number> {
  try {
    await seed(loadConfig());
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof InputError) {
      console.error(error.message);
      return 1;
    }
    console.error('Seeding failed:', error);
    return 2;
  }
}

process.exitCode = await main();
