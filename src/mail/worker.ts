// The outbox worker: every instance runs one. It claims due messages (store.ts makes each claim
// exclusive), hands each to the sender for its kind, and records the outcome: sent; or, after a
// failure, another attempt later (the kind's backoff) until its attempts are used up or the
// failure is permanent, then failed, with one error line and the metric. It looks for work every
// OUTBOX_POLL_INTERVAL, at once when this instance queues something (wake), and when a retry
// it scheduled falls due.
import type { Logger } from '../core/logger.js';
import type { OutboxKind } from './schema.js';
import type { ClaimedMessage, OutboxStore } from './store.js';
import { PermanentDeliveryError } from './transport.js';

export interface OutboxSender {
  /** Delivers it; throws to fail this attempt (PermanentDeliveryError, or `permanent` on the error: no retry). */
  send(payload: unknown): Promise<void>;
  /** Pause before attempt `attempt + 1`, in ms. */
  retryDelayMs(attempt: number): number;
  /** Fields for its log lines (never a secret). */
  describe?(payload: unknown): Record<string, unknown>;
  /** Told once the outcome is final (awaited: drain() includes it). */
  settled?(payload: unknown, outcome: { sent: true } | { sent: false; error: unknown }): Promise<void> | void;
}

export type OutboxOutcome = 'sent' | 'retry' | 'failed';

export interface OutboxWorkerOptions {
  store: OutboxStore;
  senders: Partial<Record<OutboxKind, OutboxSender>>;
  pollIntervalSeconds: number;
  leaseSeconds: number;
  logger: Logger;
  /** At most this many sends at once. */
  concurrency?: number;
  observe?: (kind: OutboxKind, outcome: OutboxOutcome) => void;
}

export interface OutboxWorker {
  /** Looks for due messages now (after this instance queued one). */
  wake(): void;
  /** Resolves once no message is pending (waiting for retries that fall due), or after `timeoutMs`. */
  drain(timeoutMs?: number): Promise<void>;
  /** Stops looking and waits for the sends under way. */
  stop(): Promise<void>;
}

const isPermanent = (error: unknown) => error instanceof PermanentDeliveryError || (error as { permanent?: unknown })?.permanent === true;

const reasonFor = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message}` : '';
  return `${error.message}${cause}`;
};

async function tellSettled(sender: OutboxSender | undefined, payload: unknown, outcome: Parameters<NonNullable<OutboxSender['settled']>>[1], log: Logger): Promise<void> {
  try {
    await sender?.settled?.(payload, outcome);
  } catch (error) {
    log.error({ reason: reasonFor(error) }, 'an outbox listener failed');
  }
}

export function startOutboxWorker({ store, senders, pollIntervalSeconds, leaseSeconds, logger, concurrency = 4, observe = () => {} }: OutboxWorkerOptions): OutboxWorker {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  const retryTimers = new Set<NodeJS.Timeout>();

  async function deliver(message: ClaimedMessage): Promise<void> {
    const sender = senders[message.kind];
    const log = logger.child({ outbox_id: message.id, kind: message.kind, topic: message.topic, ...(sender?.describe?.(message.payload) ?? {}) });
    try {
      if (!sender) throw Object.assign(new Error(`no sender for ${message.kind} on this instance`), { permanent: true });
      await sender.send(message.payload);
      await store.markSent(message);
      observe(message.kind, 'sent');
      log.info({ attempt: message.attempt }, `${message.kind === 'mail' ? 'mail' : 'back-channel logout'} delivered`);
    } catch (error) {
      const reason = reasonFor(error);
      if (message.attempt >= message.maxAttempts || isPermanent(error)) {
        await store.markFailed(message, reason);
        observe(message.kind, 'failed');
        log.error({ attempt: message.attempt, attempts: message.maxAttempts, reason }, `${message.kind === 'mail' ? 'mail' : 'back-channel logout'} failed, giving up`);
        await tellSettled(sender, message.payload, { sent: false, error }, log);
        return;
      }
      const delayMs = (sender as OutboxSender).retryDelayMs(message.attempt);
      await store.retryAt(message, new Date(Date.now() + delayMs), reason);
      observe(message.kind, 'retry');
      log.warn({ attempt: message.attempt, attempts: message.maxAttempts, reason, retryInMs: delayMs }, `${message.kind === 'mail' ? 'mail' : 'back-channel logout'} attempt failed`);
      wakeAfter(delayMs);
      return;
    }
    await tellSettled(sender, message.payload, { sent: true }, log);
  }

  /** Claims and sends until nothing is due, `concurrency` at a time. */
  async function work(): Promise<void> {
    const lanes = Array.from({ length: concurrency }, async () => {
      while (!stopped) {
        const message = await store.claimNext(new Date(), leaseSeconds);
        if (!message) return;
        await deliver(message);
      }
    });
    await Promise.all(lanes);
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await work();
      } while (again && !stopped);
    })()
      .catch((error: unknown) => logger.error({ err: error }, 'the outbox worker failed; it tries again at its next poll'))
      .finally(() => (running = undefined));
  }

  function wakeAfter(ms: number): void {
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      wake();
    }, ms + 5);
    timer.unref();
    retryTimers.add(timer);
  }

  const poll = setInterval(wake, pollIntervalSeconds * 1000);
  poll.unref();
  wake();

  return {
    wake,
    async drain(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      // Pauses do not hold the process open on their own; someone waiting here does.
      const keepAlive = setInterval(() => {}, 60_000);
      try {
        while (Date.now() < deadline) {
          await running;
          const next = await store.nextDue();
          if (!next) return;
          await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(next.getTime() - Date.now(), 0) + 5, 200, Math.max(deadline - Date.now(), 0))));
          wake();
        }
      } finally {
        clearInterval(keepAlive);
      }
    },
    async stop() {
      stopped = true;
      clearInterval(poll);
      for (const timer of retryTimers) clearTimeout(timer);
      await running;
    },
  };
}
