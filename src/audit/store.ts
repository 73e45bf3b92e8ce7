// Queries on AuditEvent: an append-only record of security events. Nothing here updates a
// row; the only deletion is retention.
import { randomUUID } from 'node:crypto';
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
}

/** One event's values, in the column order of INSERT_COLUMNS. */
const auditValues = (event: AuditEventInput, at: Date | number) => [
  randomUUID(),
  at,
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
      await sql.changes(inserts[0] as Statement, auditValues(event, dialect.time(at)));
    },

    /** Several events in one statement (all or none). */
    async recordMany(events: readonly { event: AuditEventInput; at: Date }[]): Promise<void> {
      if (!events.length) return;
      await sql.changes(inserts[events.length - 1] ?? insert(events.length), events.flatMap(({ event, at }) => auditValues(event, dialect.time(at))));
    },

    list(filter: AuditFilter = {}) {
      return prisma.auditEvent.findMany({
        where: {
          at: { gte: filter.since, lte: filter.until },
          accountId: filter.accountId,
          clientId: filter.clientId,
          type: filter.type,
        },
        orderBy: { at: 'desc' },
        take: Math.min(filter.limit ?? 100, 1000),
      });
    },

    /** How many events of `type` there are since `since`. */
    count(filter: { type: AuditEventType; since: Date }) {
      return prisma.auditEvent.count({ where: { type: filter.type, at: { gte: filter.since } } });
    },

    async deleteBefore(cutoff: Date): Promise<number> {
      const { count } = await prisma.auditEvent.deleteMany({ where: { at: { lt: cutoff } } });
      return count;
    },
  };
}

export type AuditStore = ReturnType<typeof createAuditStore>;
