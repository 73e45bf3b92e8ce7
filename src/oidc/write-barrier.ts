// The engine's writes answered before their commit, and its answers held until it (SQLite).
//
// A rotating refresh makes three writes one after the other (the old token consumed, the new
// refresh token, the access token), and a sign-in or code exchange several more; each waited for
// its turn's group commit, a turn of the event loop, before the engine went on to the next. With
// early answers (db/executor.ts, EarlyAnswers) a write made while the engine serves a request runs
// at once in the turn's transaction and the engine goes on in the same turn; nothing of the
// request leaves before that transaction is committed, because this hook, the outermost, waits
// for it before the engine's answer is sent. So no client ever holds a token, a code or a cookie
// whose row is not committed, and every other instance sees a revocation before its 200 is sent.
//
// Within the process, a request may read a row another request wrote in the same turn before it
// is committed (one connection). If that commit fails (a full disk, say), both requests' answers
// are refused: the first's here, the second's too when it wrote; a request that only read can
// have answered from a row that is then gone, which no client can tell, since the only way to
// learn such a token or code is the first request's answer, which was refused.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EngineHook } from '../core/engine-types.js';
import { requestIdOf, type Logger } from '../core/logger.js';
import type { Executor } from '../db/executor.js';
import { engineRequest } from './request-reads.js';

/** What an answer refused for a failed commit must not carry on. */
const DROPPED_HEADERS = ['location', 'set-cookie', 'www-authenticate', 'dpop-nonce', 'link'];

/**
 * Turns early answers on for the engine's requests and returns the hook that holds each answer
 * until its writes are committed; undefined when the executor answers only once committed
 * (PostgreSQL, where each write is its own round trip).
 */
export function holdAnswersUntilCommitted(executor: Executor, logger: Logger): EngineHook | undefined {
  const early = executor.early;
  if (!early) return undefined;
  /** Requests whose answer is still held: only their writes are answered early. */
  const held = new WeakSet<object>();
  early.answerWhile(() => {
    const ctx = engineRequest() as KoaContextWithOIDC | undefined;
    // A request handed back to Express (respond false) is answered there, not held here.
    return ctx && held.has(ctx) && ctx.respond !== false ? ctx : undefined;
  });
  return {
    before(ctx) {
      held.add(ctx);
    },
    async settle(ctx) {
      held.delete(ctx);
      try {
        await early.committed(ctx);
      } catch (error) {
        logger.error({ err: error, request_id: requestIdOf(ctx.res) }, "the engine's writes were not committed; its answer is refused");
        for (const name of DROPPED_HEADERS) ctx.remove(name);
        ctx.status = 500;
        ctx.body = { error: 'server_error', error_description: 'the request could not be completed; try again' };
      }
    },
  };
}
