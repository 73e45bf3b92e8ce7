// Recording security events. A failed write is logged and never fails the request that
// caused it: the audit trail must not become a way to stop people signing in.
import type { AuditEventInput } from '../db/audit.js';
import { createAuditQueries } from '../db/audit.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../logger.js';

export interface AuditLog {
  record(event: AuditEventInput): Promise<void>;
}

export function createAuditLog(db: Db, logger: Logger): AuditLog {
  const queries = createAuditQueries(db.prisma);
  return {
    async record(event) {
      try {
        await queries.record(event);
      } catch (error) {
        logger.error({ err: error, type: event.type }, 'recording an audit event failed');
      }
    },
  };
}

/** Where a request came from, for the audit trail (the IP as Express/the engine resolved it). */
export interface RequestOrigin {
  ip?: string | null;
  userAgent?: string | null;
}
