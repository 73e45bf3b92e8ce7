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

/** Deletes audit events older than the retention period; returns how many. */
export function pruneAuditEvents(db: Db, retentionSeconds: number, now: Date = new Date()): Promise<number> {
  return createAuditQueries(db.prisma).deleteBefore(new Date(now.getTime() - retentionSeconds * 1000));
}

/** Applies retention every `intervalSeconds` (the artifact sweeper's interval; 0 turns it off). */
export function startAuditRetention(db: Db, retentionSeconds: number, intervalSeconds: number, onError: (error: unknown) => void, now: () => Date = () => new Date()): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    pruneAuditEvents(db, retentionSeconds, now()).catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
