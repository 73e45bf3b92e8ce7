// The OutboxMessage table: the one writer of it. A message is queued in the transaction of
// whatever caused it (pass that transaction's handle), claimed by exactly one worker, and
// finished as sent or failed. Claiming is one conditional statement: on PostgreSQL the row is
// picked with FOR UPDATE SKIP LOCKED, so instances claim different rows without waiting; on
// SQLite the statement runs under the database's single write lock. A claim is a lease: when
// the worker that holds it dies (kill -9), the row is claimable again once `claimedUntil` passes.
// Every instance tries to claim every OUTBOX_POLL_INTERVAL and as it starts, mostly finding
// nothing. Queuing, claiming and finishing a message run on the executor (db/executor.ts), so
// neither the polls, a start, nor a sign-out's back-channel logouts go through Prisma's client
// (test/server/start-queries.test.ts); only the admin's list does.
import { randomUUID } from 'node:crypto';
import type { DbHandle } from '../db/client.js';
import { dialectOf, readTime } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import { decrypt, encrypt } from '../core/secrets.js';
import type { OutboxKind, OutboxState } from './schema.js';

export interface NewOutboxMessage {
  kind: OutboxKind;
  topic: string;
  recipient: string;
  /** Sealed with SECRETS until it is sent. */
  payload: unknown;
  maxAttempts: number;
}

export interface ClaimedMessage {
  id: string;
  kind: OutboxKind;
  topic: string;
  recipient: string;
  payload: unknown;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
  /** Proves the claim when finishing it. */
  claimToken: string;
}

export interface OutboxRow {
  id: string;
  kind: OutboxKind;
  topic: string;
  recipient: string;
  state: OutboxState;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

/** Error texts are cut to this length: they come from other servers. */
const MAX_ERROR_LENGTH = 500;

/** An error text as stored: cut, and without NUL characters (PostgreSQL refuses them in text). */
const storedError = (error: string) => error.replace(/\0/g, '').slice(0, MAX_ERROR_LENGTH);

export function createOutboxStore(db: DbHandle, secrets: readonly string[]) {
  const { prisma } = db;
  const sql = executorOf(db);
  const dialect = dialectOf(db.flavour);
  // Counted at every scrape of the metrics (the gatehouse_outbox_messages gauge), so on the executor too.
  const countByState = { name: 'outbox_count_by_state', text: 'SELECT "state", COUNT(*) AS "n" FROM "OutboxMessage" GROUP BY "state"' };
  const pruneFinished = { name: 'outbox_prune', text: dialect.sql(`DELETE FROM "OutboxMessage" WHERE "state" IN ('sent', 'failed') AND "finishedAt" < ?`) };
  const due = `"state" = 'pending' AND "nextAttemptAt" <= ? AND ("claimedUntil" IS NULL OR "claimedUntil" < ?)`;
  const pick = db.flavour === 'postgresql' ? `SELECT "id" FROM "OutboxMessage" WHERE ${due} ORDER BY "nextAttemptAt" LIMIT 1 FOR UPDATE SKIP LOCKED` : `SELECT "id" FROM "OutboxMessage" WHERE ${due} ORDER BY "nextAttemptAt" LIMIT 1`;
  const claim = {
    name: 'outbox_claim',
    text: dialect.sql(
      `UPDATE "OutboxMessage" SET "claimToken" = ?, "claimedUntil" = ?, "attempts" = "attempts" + 1 WHERE "id" = (${pick}) RETURNING "id", "kind", "topic", "recipient", "payloadEncrypted", "attempts", "maxAttempts"`,
    ),
  };
  const statement = (name: string, text: string) => ({ name: `outbox_${name}`, text: dialect.sql(text) });
  const finishing = 'WHERE "id" = ? AND "claimToken" = ?';
  const statements = {
    enqueue: statement(
      'enqueue',
      'INSERT INTO "OutboxMessage" ("id", "kind", "topic", "recipient", "payloadEncrypted", "state", "attempts", "maxAttempts", "nextAttemptAt", "createdAt") VALUES (?, ?, ?, ?, ?, \'pending\', 0, ?, ?, ?)',
    ),
    // Each finishes the message only while the claim is still this worker's.
    sent: statement('sent', `UPDATE "OutboxMessage" SET "state" = 'sent', "payloadEncrypted" = '', "finishedAt" = ?, "claimToken" = NULL, "claimedUntil" = NULL, "lastError" = NULL ${finishing}`),
    retry: statement('retry', `UPDATE "OutboxMessage" SET "nextAttemptAt" = ?, "claimToken" = NULL, "claimedUntil" = NULL, "lastError" = ? ${finishing}`),
    failed: statement('failed', `UPDATE "OutboxMessage" SET "state" = 'failed', "payloadEncrypted" = '', "finishedAt" = ?, "claimToken" = NULL, "claimedUntil" = NULL, "lastError" = ? ${finishing}`),
    pending: statement('pending', `SELECT "nextAttemptAt", "claimedUntil" FROM "OutboxMessage" WHERE "state" = 'pending' ORDER BY "nextAttemptAt" ASC LIMIT 50`),
  };

  return {
    /** Queues a message; with a transaction's handle, it exists exactly when that transaction commits. */
    async enqueue(message: NewOutboxMessage, now: Date = new Date()): Promise<string> {
      const id = randomUUID();
      const payloadEncrypted = encrypt(JSON.stringify(message.payload), secrets, `outbox:${id}`);
      const at = dialect.time(now);
      await sql.changes(statements.enqueue, [id, message.kind, message.topic, message.recipient, payloadEncrypted, message.maxAttempts, at, at]);
      return id;
    },

    /** Claims the message due first, for `leaseSeconds`; null when none is due. */
    async claimNext(now: Date, leaseSeconds: number): Promise<ClaimedMessage | null> {
      const claimToken = randomUUID();
      const until = new Date(now.getTime() + leaseSeconds * 1000);
      const [row] = await sql.rows<Record<string, unknown>>(claim, [claimToken, dialect.time(until), dialect.time(now), dialect.time(now)]);
      if (!row) return null;
      const id = String(row.id);
      return {
        id,
        kind: row.kind as OutboxKind,
        topic: String(row.topic),
        recipient: String(row.recipient),
        payload: JSON.parse(decrypt(String(row.payloadEncrypted), secrets, `outbox:${id}`).plaintext) as unknown,
        attempt: Number(row.attempts),
        maxAttempts: Number(row.maxAttempts),
        claimToken,
      };
    },

    /** Sent: the payload (its links) is dropped. False when the claim had lapsed and another worker holds it. */
    async markSent(message: ClaimedMessage, now: Date = new Date()): Promise<boolean> {
      return (await sql.changes(statements.sent, [dialect.time(now), message.id, message.claimToken])) === 1;
    },

    /** Another attempt at `at`. */
    async retryAt(message: ClaimedMessage, at: Date, error: string): Promise<boolean> {
      return (await sql.changes(statements.retry, [dialect.time(at), storedError(error), message.id, message.claimToken])) === 1;
    },

    /** No more attempts: failed, its payload dropped. */
    async markFailed(message: ClaimedMessage, error: string, now: Date = new Date()): Promise<boolean> {
      return (await sql.changes(statements.failed, [dialect.time(now), storedError(error), message.id, message.claimToken])) === 1;
    },

    /** When the next pending message is due (now or later, a lapsed claim counting from its lease's end); null when none is pending. */
    async nextDue(): Promise<Date | null> {
      const pending = await sql.rows<{ nextAttemptAt: unknown; claimedUntil: unknown }>(statements.pending, []);
      if (!pending.length) return null;
      return new Date(Math.min(...pending.map((row) => Math.max((readTime(row.nextAttemptAt) as Date).getTime(), readTime(row.claimedUntil)?.getTime() ?? 0))));
    },

    /** Newest first. */
    async list({ state, limit }: { state?: OutboxState | undefined; limit: number }): Promise<OutboxRow[]> {
      const rows = await prisma.outboxMessage.findMany({ where: state ? { state } : {}, orderBy: { createdAt: 'desc' }, take: limit, omit: { payloadEncrypted: true, claimToken: true, claimedUntil: true } });
      return rows.map((row) => ({ ...row, kind: row.kind as OutboxKind, state: row.state as OutboxState }));
    },

    async countByState(): Promise<Record<OutboxState, number>> {
      const counts: Record<OutboxState, number> = { pending: 0, sent: 0, failed: 0 };
      for (const { state, n } of await sql.rows<{ state: string; n: number | bigint | string }>(countByState, [])) if (state in counts) counts[state as OutboxState] = Number(n);
      return counts;
    },

    /** Deletes finished messages older than `before`; how many. */
    async pruneFinished(before: Date): Promise<number> {
      return sql.changes(pruneFinished, [dialect.time(before)]);
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;

