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
// A request sees its own writes: anything else it asks of rows it may have written (a read, a
// consume, a delete through Prisma) first runs what it kept and waits for it. Each kept write says
// which model's rows it changes, and each of those steps which models it touches, so a step that
// touches none of them (the grant looked up after an interaction was deleted) does not commit
// them early, in a round trip of their own. Kept writes start in the order they were made and
// commit in one group, in that order; an executor that cannot promise that (PostgreSQL without
// prepared statements, where each write takes a pool connection of its own) keeps nothing.
import type { Executor } from './executor.js';

/** A write to run later: starts it, resolving once it is committed. */
export type KeptWrite = () => Promise<unknown>;

export interface DeferredWrites {
  /** Which request is being served whose writes may wait for its answer (once, by the engine's hooks). */
  keepFor(scope: () => object | undefined): void;
  /**
   * Runs `write` now and waits for it; or, while a request's writes wait for its answer, keeps it
   * for that answer and resolves at once. `model`: the one model whose rows it changes (without
   * it, the write may change anything).
   */
  write(write: KeptWrite, model?: string): Promise<void>;
  /**
   * Runs what the current request kept and waits for it, if it kept a write that may change rows
   * of `models` (without them: any write); undefined when there is nothing to wait for.
   */
  flush(models?: readonly string[]): Promise<void> | undefined;
  /**
   * Runs what `request` kept, together, and waits until all of it is committed; rejects with the
   * first failure. Undefined when it kept nothing (most reads), so that nothing is awaited.
   */
  settle(request: object): Promise<void> | undefined;
}

const ANY_MODEL = Symbol('any model');

export function deferredWrites(executor: Pick<Executor, 'groupsWrites'>): DeferredWrites {
  let scope: () => object | undefined = () => undefined;
  /** Per request: its kept writes, and the models they change (ANY_MODEL: a write that named none). */
  const kept = new WeakMap<object, { writes: KeptWrite[]; models: Set<string | typeof ANY_MODEL> }>();

  const run = async (request: object): Promise<void> => {
    const writes = kept.get(request)?.writes;
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
    async write(write, model) {
      const request = executor.groupsWrites ? scope() : undefined;
      if (!request) {
        await write();
        return;
      }
      let pending = kept.get(request);
      if (!pending) kept.set(request, (pending = { writes: [], models: new Set() }));
      pending.writes.push(write);
      pending.models.add(model ?? ANY_MODEL);
    },
    flush(models) {
      const request = scope();
      const pending = request && kept.get(request);
      if (!pending) return undefined;
      const touched = !models || pending.models.has(ANY_MODEL) || models.some((model) => pending.models.has(model));
      return touched ? run(request) : undefined;
    },
    settle: (request) => (kept.has(request) ? run(request) : undefined),
  };
}
