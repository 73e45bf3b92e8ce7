// The outbox as the rest of Gatehouse sees it: queue a mail (or another kind of message) in the
// transaction that causes it, and a worker per instance that delivers what is due. Senders for
// other kinds (back-channel logout, oidc/backchannel-logout.ts) register themselves before the
// worker starts.
import type { Config } from '../config/index.js';
import type { Logger } from '../core/logger.js';
import type { DbHandle } from '../db/client.js';
import { MailMessage, type OutboxKind } from './schema.js';
import { createOutboxStore, type NewOutboxMessage } from './store.js';
import { createMailTransport, type MailTransport } from './transport.js';
import { startOutboxWorker, type OutboxOutcome, type OutboxSender, type OutboxWorker } from './worker.js';

/** No retry waits longer than this. */
const MAX_RETRY_DELAY_MS = 3_600_000;

export interface Outbox {
  readonly transport: MailTransport;
  /** Queues a mail through `handle` (a transaction's, so it exists exactly when that commits); call wake() once committed. */
  queueMail(handle: DbHandle, message: MailMessage, topic: string): Promise<string>;
  /** Queues another kind of message. */
  queue(handle: DbHandle, message: NewOutboxMessage): Promise<string>;
  register(kind: OutboxKind, sender: OutboxSender): void;
  /** Starts this instance's worker (once). */
  start(): void;
  /** Delivers now what this instance just queued. */
  wake(): void;
  /** Resolves once nothing is pending (tests, `mail` CLI). */
  drain(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface OutboxDeps {
  config: Pick<Config, 'mail' | 'secrets' | 'issuer'>;
  db: DbHandle;
  logger: Logger;
  transport?: MailTransport;
  observe?: (kind: OutboxKind, outcome: OutboxOutcome) => void;
}

/** A mail's retries: MAIL_RETRY_DELAY_MS, doubling with each attempt, at most an hour. */
export const mailRetryDelayMs = (firstDelayMs: number, attempt: number) => Math.min(firstDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);

export function createOutbox({ config, db, logger, transport = createMailTransport(config.mail, { issuer: config.issuer }), observe }: OutboxDeps): Outbox {
  const senders: Partial<Record<OutboxKind, OutboxSender>> = {
    mail: {
      send: async (payload) => void (await transport.send(MailMessage.parse(payload))),
      retryDelayMs: (attempt) => mailRetryDelayMs(config.mail.retryDelayMs, attempt),
    },
  };
  let worker: OutboxWorker | undefined;
  const storeOf = (handle: DbHandle) => createOutboxStore(handle, config.secrets);
  return {
    transport,
    queueMail: (handle, message, topic) => storeOf(handle).enqueue({ kind: 'mail', topic, recipient: message.to, payload: MailMessage.parse(message), maxAttempts: config.mail.maxAttempts }),
    queue: (handle, message) => storeOf(handle).enqueue(message),
    register(kind, sender) {
      senders[kind] = sender;
    },
    start() {
      worker ??= startOutboxWorker({ store: storeOf(db), senders, pollIntervalSeconds: config.mail.pollInterval, leaseSeconds: config.mail.lease, logger, observe });
    },
    wake: () => worker?.wake(),
    drain: async (timeoutMs) => worker?.drain(timeoutMs),
    async stop() {
      await worker?.stop();
      transport.close();
    },
  };
}
