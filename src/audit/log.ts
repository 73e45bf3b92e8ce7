// Recording security events. A failed write is logged and never fails the request that
// caused it: the audit trail must not become a way to stop people signing in.
import type { AuditEventInput } from './store.js';
import { createAuditStore } from './store.js';
import type { Db, DbHandle } from '../db/client.js';
import type { Logger } from '../core/logger.js';

export interface AuditLog {
  record(event: AuditEventInput): Promise<void>;
}

interface Pending {
  event: AuditEventInput;
  at: Date;
  written: () => void;
}

const MAX_BATCH = 500;

/**
 * Events are written in batches: those recorded in one turn of the event loop go together in one
 * INSERT, written once the turn's callbacks have run (setImmediate), and those recorded while a
 * write is in flight go in the next one. Under load each request does not pay for its own
 * statement, on SQLite too, whose driver answers before the next request is read. record() still
 * resolves only once its event is written (or has failed), so a token does not leave first.
 */
export function createAuditLog(db: DbHandle, logger: Logger): AuditLog {
  const queries = createAuditStore(db);
  const queue: Pending[] = [];
  let pending = false;

  async function writeOne({ event, at }: Pending): Promise<void> {
    try {
      await queries.record(event, at);
    } catch (error) {
      logger.error({ err: error, type: event.type }, 'recording an audit event failed');
    }
  }

  async function writeQueued(): Promise<void> {
    while (queue.length) {
      // Bounded, so one statement stays well under SQLite's and PostgreSQL's parameter limits.
      const batch = queue.splice(0, MAX_BATCH);
      try {
        if (batch.length === 1) await writeOne(batch[0] as Pending);
        else await queries.recordMany(batch);
      } catch {
        // One bad event must not cost the others theirs: write them one by one.
        for (const pending of batch) await writeOne(pending);
      }
      for (const pending of batch) pending.written();
    }
    pending = false;
  }

  return {
    record(event) {
      return new Promise<void>((resolve) => {
        queue.push({ event, at: new Date(), written: resolve });
        if (!pending) {
          pending = true;
          setImmediate(() => void writeQueued());
        }
      });
    },
  };
}

/** Where a request came from, for the audit trail (the IP as Express/the engine resolved it). */
export interface RequestOrigin {
  ip?: string | null;
  userAgent?: string | null;
}

/** Who asked, for the audit trail. */
export interface Actor extends RequestOrigin {
  /** account: the person themself, on the account page (people/self-service.ts); console: an administrator at /console. */
  via: 'admin' | 'cli' | 'account' | 'console';
  /** The admin API's caller (its client_id). */
  clientId?: string;
  /** The console's signed-in administrator. */
  admin?: { id: string; email: string };
}

/** Who did it, as an event's details name them: how (via), and by whom (the admin API's client, or the console's administrator). */
export const actorDetails = (actor: Actor): Record<string, string | undefined> => ({
  via: actor.via,
  by: actor.clientId ?? actor.admin?.email,
  ...(actor.admin ? { admin_id: actor.admin.id } : {}),
});

/** Deletes audit events older than the retention period; returns how many. */
export function pruneAuditEvents(db: Db, retentionSeconds: number, now: Date = new Date()): Promise<number> {
  return createAuditStore(db).deleteBefore(new Date(now.getTime() - retentionSeconds * 1000));
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
