// `gatehouse audit list`: read the audit trail, newest first.
import { Option, InvalidArgumentError, type Command } from 'commander';
import { AUDIT_EVENT_TYPES, createAuditStore, type AuditEventType, type AuditFilter } from '../audit/store.js';
import { withDatabase } from './context.js';
import { durationSeconds, formatTable, note, parseWholeNumber, printJson, UsageError } from './io.js';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO 8601 date or time, or a duration before `now`. */
export function parseTime(value: string, now: Date): Date | undefined {
  const seconds = durationSeconds(value);
  if (seconds !== undefined) return new Date(now.getTime() - seconds * 1000);
  if (!ISO_TIME.test(value)) return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : time;
}

function timeOption(now: Date) {
  return (value: string): Date => {
    const time = parseTime(value, now);
    if (!time) throw new InvalidArgumentError('Expected an ISO 8601 time (2025-01-31, 2025-01-31T12:00:00Z) or a duration ago (90s, 15m, 24h, 7d).');
    return time;
  };
}

interface AuditListOptions {
  since?: Date;
  until?: Date;
  account?: string;
  client?: string;
  type?: AuditEventType;
  limit: number;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const now = new Date();
  const group = program.command('audit').summary('read the audit trail').description('The audit trail: sign-ins, MFA, consent, tokens, logouts, client and key changes.');
  group
    .command('list')
    .description('Print audit events, newest first.')
    .option('--since <time>', 'from this time: ISO 8601 (2025-01-31, 2025-01-31T12:00Z) or a duration ago (90s, 15m, 24h, 7d)', timeOption(now))
    .option('--until <time>', 'up to this time, in the same forms', timeOption(now))
    .option('--account <id>', 'of this account (user id)')
    .option('--client <id>', 'of this client')
    .addOption(new Option('--type <type>', 'of this type').choices(AUDIT_EVENT_TYPES))
    .option('--limit <n>', 'at most n events (1-1000)', parseWholeNumber(1, 1000), 100)
    .option('--json', 'print a JSON array instead of a table')
    .action(async (options: AuditListOptions) => {
      if (options.since && options.until && options.since > options.until) throw new UsageError('--since is after --until.');
      const filter: AuditFilter = { since: options.since, until: options.until, accountId: options.account, clientId: options.client, type: options.type, limit: options.limit };
      const rows = await withDatabase(({ db }) => createAuditStore(db).list(filter));
      if (options.json) {
        printJson(rows.map((row) => ({ ...row, at: row.at.toISOString() })));
        return;
      }
      if (!rows.length) {
        note('No audit events match.');
        return;
      }
      const cells = rows.map((row) => [
        row.at.toISOString(),
        row.type,
        row.accountId ?? '-',
        row.clientId ?? '-',
        row.ip ?? '-',
        (row.userAgent ?? '-').slice(0, 40),
        row.details == null ? '' : JSON.stringify(row.details),
      ]);
      console.log(formatTable(['TIME', 'TYPE', 'ACCOUNT', 'CLIENT', 'IP', 'USER AGENT', 'DETAILS'], cells));
    });
}
