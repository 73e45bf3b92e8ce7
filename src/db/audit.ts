// Queries on AuditEvent: an append-only record of security events. Nothing here updates a
// row; the only deletion is retention.
import { randomUUID } from 'node:crypto';
import type { Prisma } from './client.js';

export const AUDIT_EVENT_TYPES = [
  'sign_in.success',
  'sign_in.failure',
  'sign_in.locked',
  'client_auth.locked',
  'mfa.enrolled',
  'mfa.removed',
  'mfa.failure',
  'mfa.recovery_code_used',
  'consent.given',
  'consent.revoked',
  'password.changed',
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
  'key.created',
  'key.retired',
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

const auditRow = (event: AuditEventInput, at: Date) => ({
  id: randomUUID(),
  at,
  type: event.type,
  accountId: event.accountId ?? null,
  clientId: event.clientId ?? null,
  ip: event.ip ?? null,
  userAgent: event.userAgent?.slice(0, 512) ?? null,
  details: (event.details ?? undefined) as object | undefined,
});

export function createAuditQueries(prisma: Prisma) {
  return {
    async record(event: AuditEventInput, at: Date = new Date()): Promise<void> {
      await prisma.auditEvent.create({ data: auditRow(event, at) });
    },

    /** Several events in one statement (all or none). */
    async recordMany(events: readonly { event: AuditEventInput; at: Date }[]): Promise<void> {
      await prisma.auditEvent.createMany({ data: events.map(({ event, at }) => auditRow(event, at)) });
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

    async deleteBefore(cutoff: Date): Promise<number> {
      const { count } = await prisma.auditEvent.deleteMany({ where: { at: { lt: cutoff } } });
      return count;
    },
  };
}

export type AuditQueries = ReturnType<typeof createAuditQueries>;
