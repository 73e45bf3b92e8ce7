// Command-line entry for operators. `npm run db:migrate` runs `migrate`.
import { ConfigError, loadConfig } from './config.js';
import { AUDIT_EVENT_TYPES, createAuditQueries, type AuditEventType, type AuditFilter } from './db/audit.js';
import { createDb } from './db/client.js';
import { migrate, MigrationError } from './db/migrate.js';
import { createLogger } from './logger.js';
import { createEngine } from './server.js';

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  migrate                       Apply pending database migrations to DATABASE_URL and exit
  initial-access-token create   Print a new initial access token for dynamic client
    [--expires-in <duration>]   registration (FEATURE_REGISTRATION=true); default 1d
  audit list                    Print audit events, newest first:
    [--since <time>]            from this time: ISO 8601 (2025-01-31, 2025-01-31T12:00Z)
    [--until <time>]              or a duration ago (90s, 15m, 24h, 7d)
    [--account <id>]            of this account
    [--client <id>]             of this client
    [--type <type>]             of this type (listed below)
    [--limit <n>]               at most n events (1-1000); default 100
    [--json]                    one JSON object a line instead of a table
  help                          Show this help

Audit event types: ${AUDIT_EVENT_TYPES.join(', ')}.

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

/** An ISO 8601 date or time, or a duration before `now`. */
function parseTime(value: string, now: Date): Date | undefined {
  const duration = DURATION.exec(value);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * (UNIT_SECONDS[duration[2] ?? 's'] ?? 1) * 1000);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(value)) return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : time;
}

type AuditListOptions = { filter: AuditFilter; json: boolean };

function parseAuditListOptions(args: string[], now: Date): AuditListOptions | string {
  const filter: AuditFilter = {};
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const option = args[i];
    if (option === '--json') {
      json = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined || value.startsWith('--')) return `${option ?? ''} needs a value`;
    if (option === '--since' || option === '--until') {
      const time = parseTime(value, now);
      if (!time) return `${option} needs an ISO 8601 time (2025-01-31T12:00:00Z) or a duration ago (15m, 24h, 7d), not "${value}"`;
      filter[option === '--since' ? 'since' : 'until'] = time;
    } else if (option === '--account') {
      filter.accountId = value;
    } else if (option === '--client') {
      filter.clientId = value;
    } else if (option === '--type') {
      if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(value)) return `--type must be one of ${AUDIT_EVENT_TYPES.join(', ')}; not "${value}"`;
      filter.type = value as AuditEventType;
    } else if (option === '--limit') {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) return `--limit needs a whole number from 1 to 1000, not "${value}"`;
      filter.limit = Number(value);
    } else {
      return `Unknown option: ${option ?? ''}`;
    }
  }
  if (filter.since && filter.until && filter.since > filter.until) return '--since is after --until';
  return { filter, json };
}

function auditTable(rows: { at: Date; type: string; accountId: string | null; clientId: string | null; ip: string | null; userAgent: string | null; details: unknown }[]): string {
  const header = ['TIME', 'TYPE', 'ACCOUNT', 'CLIENT', 'IP', 'USER AGENT', 'DETAILS'];
  const cells = rows.map((row) => [
    row.at.toISOString(),
    row.type,
    row.accountId ?? '-',
    row.clientId ?? '-',
    row.ip ?? '-',
    (row.userAgent ?? '-').slice(0, 40),
    row.details == null ? '' : JSON.stringify(row.details),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column]?.length ?? 0)));
  return [header, ...cells].map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd()).join('\n');
}

async function listAuditEvents(args: string[]): Promise<number> {
  const options = parseAuditListOptions(args, new Date());
  if (typeof options === 'string') {
    console.error(`${options}\n\n${USAGE}`);
    return 2;
  }
  const config = loadConfig();
  const db = await createDb(config.database);
  try {
    const rows = await createAuditQueries(db.prisma).list(options.filter);
    if (options.json) {
      for (const row of rows) console.log(JSON.stringify({ ...row, at: row.at.toISOString() }));
    } else if (rows.length) {
      console.log(auditTable(rows));
    } else {
      console.error('No audit events match.');
    }
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
  if (command === 'audit' && argv[1] === 'list') return listAuditEvents(argv.slice(2));
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
