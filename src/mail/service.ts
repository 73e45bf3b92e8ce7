// What the admin API and the CLI do with mail: list the outbox (what is pending, sent, failed,
// and why), and send a test mail straight through the transport to see what the server answers.
import type { DbHandle } from '../db/client.js';
import { parseInput } from '../core/errors.js';
import { OutboxQuery, TestMailInput, type OutboxList, type OutboxMessageView, type TestMailResult } from './schema.js';
import { createOutboxStore, type OutboxRow } from './store.js';
import type { MailTransport } from './transport.js';

export interface MailServiceDeps {
  db: DbHandle;
  secrets: readonly string[];
}

const toView = (row: OutboxRow): OutboxMessageView => ({
  id: row.id,
  kind: row.kind,
  topic: row.topic,
  recipient: row.recipient,
  state: row.state,
  attempts: row.attempts,
  max_attempts: row.maxAttempts,
  next_attempt_at: row.state === 'pending' ? row.nextAttemptAt.toISOString() : null,
  last_error: row.lastError,
  created_at: row.createdAt.toISOString(),
  finished_at: row.finishedAt?.toISOString() ?? null,
});

/** The newest messages (of one state), and how many there are in each state. */
export async function listOutbox({ db, secrets }: MailServiceDeps, query: unknown = {}): Promise<OutboxList> {
  const { state, limit } = parseInput(OutboxQuery, query);
  const store = createOutboxStore(db, secrets);
  const [rows, counts] = await Promise.all([store.list({ state, limit }), store.countByState()]);
  return { messages: rows.map(toView), counts };
}

/** Sends a short mail now, not through the outbox, and reports the server's answer; a refusal throws. */
export async function sendTestMail(transport: MailTransport, input: unknown, productName: string): Promise<TestMailResult> {
  const { to } = parseInput(TestMailInput, input);
  const text = `This is a test mail from ${productName}. If you can read it, mail works.`;
  const sent = await transport.send({ to, subject: `${productName}: test mail`, text, html: `<p>${text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</p>` });
  return { to, via: transport.via, response: sent.response, message_id: sent.messageId };
}
