// Reading the audit trail, for the admin API and the CLI: filters by time, account, client and
// event type, newest first.
import { z } from 'zod';
import { wholeNumber } from '../core/fields.js';
import { AUDIT_EVENT_TYPES, createAuditStore } from './store.js';
import type { Db } from '../db/client.js';
import { parseInput } from '../core/errors.js';

const instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time (e.g. 2026-11-26T20:00:00Z)' });

export const AuditQuery = z
  .strictObject(
    {
      since: instant.optional().describe('Only events at or after this time.'),
      until: instant.optional().describe('Only events at or before this time.'),
      account_id: z.string({ error: 'must be a string' }).min(1).max(255).optional(),
      client_id: z.string({ error: 'must be a string' }).min(1).max(255).optional(),
      type: z.enum(AUDIT_EVENT_TYPES, { error: `must be one of ${AUDIT_EVENT_TYPES.join(', ')}` }).optional(),
      limit: wholeNumber(1, 1000, 100),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'AuditQuery' });

export const AuditEventView = z
  .object({
    id: z.string(),
    at: z.iso.datetime(),
    type: z.enum(AUDIT_EVENT_TYPES),
    account_id: z.string().nullable(),
    client_id: z.string().nullable(),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'AuditEvent' });
export type AuditEventView = z.infer<typeof AuditEventView>;

export const AuditEventList = z.object({ events: z.array(AuditEventView) }).meta({ id: 'AuditEventList' });

/** Events matching `query` (AuditQuery), newest first. */
export async function queryAuditEvents({ db }: { db: Db }, query: unknown = {}): Promise<AuditEventView[]> {
  const filter = parseInput(AuditQuery, query);
  const rows = await createAuditStore(db).list({
    since: filter.since ? new Date(filter.since) : undefined,
    until: filter.until ? new Date(filter.until) : undefined,
    accountId: filter.account_id,
    clientId: filter.client_id,
    type: filter.type,
    limit: filter.limit,
  });
  return rows.map((row) => ({
    id: row.id,
    at: row.at.toISOString(),
    type: row.type as AuditEventView['type'],
    account_id: row.accountId,
    client_id: row.clientId,
    ip: row.ip,
    user_agent: row.userAgent,
    details: (row.details ?? null) as Record<string, unknown> | null,
  }));
}

/** How many events of each type in `types` happened since `since` (the console's first page: sign-ins over the last day). */
export async function countAuditEvents({ db }: { db: Db }, types: readonly AuditEventView['type'][], since: Date): Promise<Record<string, number>> {
  const store = createAuditStore(db);
  const counts = await Promise.all(types.map((type) => store.count({ type, since })));
  return Object.fromEntries(types.map((type, i) => [type, counts[i] ?? 0]));
}
