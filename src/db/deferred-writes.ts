// Writes kept until the answer they belong to. A rotating refresh saves two rows one after the
// other (the new refresh token, the access token), an authorization request its interaction, or
// its code, session and grant; each save waited for its own group commit (executor.ts,
// pg-executor.ts) before the engine went on to the next. While the engine serves a request whose
// answer waits for its writes (oidc/answer-after-writes.ts), a store's save or delete of a row is
// kept instead and answered at once; the request's kept writes are started together when its
// answer is about to leave, so they join one group commit, and the answer waits until they are
// committed. So no client ever holds a token, code or cookie whose row is not committed, and every
// instance sees a revocation before its 200 is sent, as before.
//
// A request sees its own writes: anything else it asks of the same rows (a read, a consume, a
// delete through Prisma) first runs what it kept and waits for it. Kept writes start in the order
// they were made and commit in one group, in that order; an executor that cannot promise that
// (PostgreSQL without prepared statements, where each write takes a pool connection of its own)
// keeps nothing.
import type { Executor } from './executor.js';

/** A write to run later: starts it, resolving once it is committed. */
export type KeptWrite = () => Promise<unknown>;

export interface DeferredWrites {
  /** Which request is being served whose writes may wait for its answer (once, by the engine's hooks). */
  keepFor(scope: () => object | undefined): void;
  /** Runs `write` now and waits for it; or, while a request's writes wait for its answer, keeps it for that answer and resolves at once. */
  write(write: KeptWrite): Promise<void>;
  /** Runs what the current request kept and waits for it; undefined when it kept nothing (nothing to wait for). */
  flush(): Promise<void> | undefined;
  /** Runs what `request` kept, together, and waits until all of it is committed; rejects with the first failure. */
  settle(request: object): Promise<void>;
}

export function deferredWrites(executor: Pick<Executor, 'groupsWrites'>): DeferredWrites {
  let scope: () => object | undefined = () => undefined;
  const kept = new WeakMap<object, KeptWrite[]>();

  const run = async (request: object): Promise<void> => {
    const writes = kept.get(request);
    if (!writes) return;
    kept.delete(request);
    // Started in one turn: they join the same group commit, in this order.
    const results = await Promise.allSettled(writes.map((write) => write()));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  };

  return {
    keepFor(current) {
      scope = current;
    },
    async write(write) {
      const request = executor.groupsWrites ? scope() : undefined;
      if (!request) {
        await write();
        return;
      }
      const writes = kept.get(request);
      if (writes) writes.push(write);
      else kept.set(request, [write]);
    },
    flush() {
      const request = scope();
      return request && kept.has(request) ? run(request) : undefined;
    },
    settle: run,
  };
}
