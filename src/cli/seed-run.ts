// `gatehouse seed <file>` (cli/seed.ts) and `npx prisma db seed` (prisma/seed.ts) share this: read and
// validate the whole file before anything is written, migrate so a fresh database works, apply
// it in one transaction, record client and identity provider changes in the audit trail, and report what changed.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { createAuditStore } from '../audit/store.js';
import { createDb } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { applySeed, type SeedChanges, type SeedReport } from '../seed/apply.js';
import { parseSeedFile, type SeedFile } from '../seed/schema.js';
import { clientSecretSealing } from '../clients/secrets.js';
import { CommandFailed } from './io.js';
import { ValidationError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { createOutbox } from '../mail/outbox.js';
import { accountMailOf } from '../http/mail-renderer.js';

/** A problem with the seed file, reported as it is (exit 1). */
export class SeedInputError extends CommandFailed {
  override name = 'SeedInputError';
}

/** Reads and validates the seed file at `path` (`-`: stdin). */
export function readSeedFile(path: string, passwordMinLength: number, hint = ''): SeedFile {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SeedInputError(`Seed file ${path} does not exist${hint}.`);
    throw new SeedInputError(`Seed file ${path} cannot be read: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SeedInputError(`Seed file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = parseSeedFile(json, { passwordMinLength });
  if (!parsed.ok) {
    throw seedProblems(path, parsed.problems);
  }
  return parsed.data;
}

function seedProblems(path: string, problems: readonly string[]): SeedInputError {
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  return new SeedInputError(`Seed file ${path} has ${count}; nothing was written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

/** Validates, migrates and applies the seed file at `path`. */
export async function seedFromFile(config: Config, path: string, { hint = '' } = {}): Promise<SeedReport> {
  const data = readSeedFile(path, config.passwords.minLength, hint);
  await migrate(config.database);
  const db = await createDb(config.database);
  try {
    // Invitations are queued in the seed's transaction and sent by the running server's outbox worker.
    const mail = data.invitations.length ? accountMailOf(config, createOutbox({ config, db, logger: createLogger(config) })) : undefined;
    let report: SeedReport;
    try {
      report = await applySeed(db, data, { bcryptCost: config.passwords.bcryptCost, clientSecrets: clientSecretSealing(config.secrets), secrets: config.secrets, mail });
    } catch (error) {
      // What only the database can tell (a user's group that does not exist): reported as the file's problems.
      if (error instanceof ValidationError) throw seedProblems(path, error.issues.map((issue) => `${issue.path}: ${issue.message}`));
      throw error;
    }
    const audit = createAuditStore(db);
    for (const clientId of report.clients.created) await audit.record({ type: 'client.created', clientId, details: { source: 'seed' } });
    for (const clientId of report.clients.updated) await audit.record({ type: 'client.updated', clientId, details: { source: 'seed' } });
    for (const idp of report.identityProviders.created) await audit.record({ type: 'idp.created', details: { source: 'seed', idp } });
    for (const idp of report.identityProviders.updated) await audit.record({ type: 'idp.updated', details: { source: 'seed', idp } });
    for (const group of report.groups.created) await audit.record({ type: 'group.created', details: { source: 'seed', group } });
    for (const group of report.groups.updated) await audit.record({ type: 'group.updated', details: { source: 'seed', group, fields: ['description'] } });
    for (const { userId, added, removed } of report.memberships) await audit.record({ type: 'user.groups_changed', accountId: userId, details: { source: 'seed', added, removed } });
    for (const email of report.invitations.created) await audit.record({ type: 'invitation.created', details: { source: 'seed', email } });
    return report;
  } finally {
    await db.close();
  }
}

function summary(kind: string, changes: SeedChanges): string {
  const named = (verb: string, names: string[]) => `${names.length} ${verb}${names.length ? ` (${names.join(', ')})` : ''}`;
  return `${kind}: ${named('created', changes.created)}, ${named('updated', changes.updated)}, ${changes.unchanged.length} unchanged`;
}

/** The report people read: where from, then one line per kind. */
export function describeSeedReport(path: string, report: SeedReport): string {
  return [`Seeded from ${path === '-' ? 'stdin' : path}`, summary('clients', report.clients), summary('groups', report.groups), summary('users', report.users), summary('resources', report.resources), summary('identity providers', report.identityProviders), summary('invitations', report.invitations)].join('\n');
}
