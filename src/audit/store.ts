// Queries on AuditEvent: an append-only record of security events. Nothing here updates a
// row; the only deletion is retention.
import { timeOrderedUuid } from '../core/ids.js';
import type { DbHandle } from '../db/client.js';
import { dialectOf } from '../db/dialect.js';
import { executorOf, type Statement } from '../db/executor.js';

export const AUDIT_EVENT_TYPES = [
  'sign_in.success',
  'sign_in.failure',
  'sign_in.locked',
  'client_auth.locked',
  'user_code.locked',
  'mfa.enrolled',
  'mfa.removed',
  'mfa.failure',
  'mfa.locked',
  'mfa.recovery_code_used',
  'consent.given',
  'consent.revoked',
  'password.changed',
  'password.removed',
  'passkey.added',
  'passkey.renamed',
  'passkey.removed',
  'passkey.used',
  'passkey.failure',
  'passkey.counter_regressed',
  'session.revoked',
  'token.issued',
  'token.revoked',
  'logout',
  'client.created',
  'client.updated',
  'client.deleted',
  'client.secret_rotated',
  'user.created',
  'user.updated',
  'user.disabled',
  'user.enabled',
  'user.unlocked',
  'address.unlocked',
  'user.password_rehashed',
  'password.reset_requested',
  'password.reset',
  'email.verified',
  'email.changed',
  'user.sign_up_existing',
  'invitation.created',
  'invitation.resent',
  'invitation.revoked',
  'invitation.accepted',
  'key.created',
  'key.retired',
  'federation.sign_in',
  'federation.failure',
  'federation.linked',
  'federation.unlinked',
  'federation.account_created',
  'idp.created',
  'idp.updated',
  'idp.deleted',
  'group.created',
  'group.updated',
  'group.deleted',
  'group.members_added',
  'group.members_removed',
  'user.groups_changed',
  'console.signed_in',
  'console.refused',
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export interface AuditEventInput {
  type: AuditEventType;
  accountId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Context only: never a password, secret, code or token. */
  details?: Record<string, unknown> | null;
}

export interface AuditFilter {
  since?: Date;
  until?: Date;
  accountId?: string;
  clientId?: string;
  type?: AuditEventType;
  limit?: number;
  /** Skip this many of the newest matching events (paging). */
  offset?: number;
}

/**
 * One event's values, in the column order of INSERT_COLUMNS (`stored`: `at` as the database
 * takes it). The id is time-ordered (core/ids.ts): events arrive in time order (retention deletes
 * the oldest), and a random id would put each event's primary-key entry on a page of its own
 * (measured on a table of 300,000 events: on SQLite 30 pages written per commit of eight events
 * instead of 21, on PostgreSQL 1.03 KB of WAL an event instead of 0.61 KB).
 */
const auditValues = (event: AuditEventInput, at: Date, stored: Date | number) => [
  timeOrderedUuid(at.getTime()),
  stored,
  event.type,
  event.accountId ?? null,
  event.clientId ?? null,
  event.ip ?? null,
  event.userAgent?.slice(0, 512) ?? null,
  event.details ? JSON.stringify(event.details) : null,
];
const INSERT_COLUMNS = '"id", "at", "type", "accountId", "clientId", "ip", "userAgent", "details"';
/** Batch sizes whose INSERT is kept prepared. */
const KEPT_PREPARED = 16;

export function createAuditStore(db: DbHandle) {
  const { prisma } = db;
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  const tuple = `(?, ?, ?, ?, ?, ?, ?, ${dialect.json})`;
  const pruneBefore = { name: 'audit_prune', text: dialect.sql('DELETE FROM "AuditEvent" WHERE "at" < ?') };
  // Written in SQL: a token request records an event, and the query builder's planning would
  // cost more than the INSERT itself (dialect.ts). Batches of up to KEPT_PREPARED events are
  // kept prepared (db/executor.ts); larger ones, rare, are prepared when used.
  const insert = (count: number): Statement => ({
    ...(count <= KEPT_PREPARED ? { name: `audit_insert_${count}` } : {}),
    text: dialect.sql(`INSERT INTO "AuditEvent" (${INSERT_COLUMNS}) VALUES ${Array.from({ length: count }, () => tuple).join(', ')}`),
  });
  const inserts = Array.from({ length: KEPT_PREPARED }, (_, i) => insert(i + 1));

  return {
    async record(event: AuditEventInput, at: Date = new Date()): Promise<void> {
      await sql.changes(inserts[0] as Statement, auditValues(event, at, dialect.time(at)));
    },

    /** Several events in one statement (all or none). */
    async recordMany(events: readonly { event: AuditEventInput; at: Date }[]): Promise<void> {
      if (!events.length) return;
      await sql.changes(inserts[events.length - 1] ?? insert(events.length), events.flatMap(({ event, at }) => auditValues(event, at, dialect.time(at))));
    },

    list(filter: AuditFilter = {}) {
      return prisma.auditEvent.findMany({
        where: {
          at: { gte: filter.since, lte: filter.until },
          accountId: filter.accountId,
          clientId: filter.clientId,
          type: filter.type,
        },
        // The id breaks ties between events of the same instant, so pages neither repeat nor skip one.
        orderBy: [{ at: 'desc' }, { id: 'desc' }],
        take: Math.min(filter.limit ?? 100, 1000),
        skip: filter.offset ?? 0,
      });
    },

    /**
     * The account that has this email now (already normalized), to filter by a person's email.
     * Read only: people/store.ts stays the one writer of User.
     */
    async accountIdByEmail(email: string): Promise<string | undefined> {
      return (await prisma.user.findUnique({ where: { email }, select: { id: true } }))?.id;
    },

    /** How many events of `type` there are since `since`. */
    count(filter: { type: AuditEventType; since: Date }) {
      return prisma.auditEvent.count({ where: { type: filter.type, at: { gte: filter.since } } });
    },

    // SQL on the executor, as every background job's statement (server.ts, startBackgroundJobs).
    async deleteBefore(cutoff: Date): Promise<number> {
      return sql.changes(pruneBefore, [dialect.time(cutoff)]);
    },
  };
}

export type AuditStore = ReturnType<typeof createAuditStore>;
