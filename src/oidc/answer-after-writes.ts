// The engine's answers wait for the writes they carry (db/deferred-writes.ts): while the engine
// serves a request, the artifacts it saves or deletes are kept instead of written one commit at a
// time; when the request is done, this hook starts them together (one group commit) and the answer
// leaves once they are committed. If they are not (a full disk, a lost connection), the answer is
// refused with server_error, without the tokens, code, cookies or redirect it would have carried.
//
// What the request did before a kept write (a token consumed, a read) was committed first, as
// before; only the saves and deletes after the last such step wait for the answer. A request
// handed back to Express (no engine route matched) keeps nothing: Express answers it.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EngineHook } from '../core/engine-types.js';
import { requestIdOf, type Logger } from '../core/logger.js';
import type { DeferredWrites } from '../db/deferred-writes.js';
import { enginePageOf, type RenderPage } from './page-renderer.js';
import { engineRequest } from './request-reads.js';

/** What a refused answer must not carry on: where it sent the browser, what it set, what it issued. */
const DROPPED_HEADERS = ['location', 'set-cookie', 'www-authenticate', 'dpop-nonce', 'link', 'content-disposition'];

const REFUSAL = { error: 'server_error', error_description: 'the request could not be completed; try again' } as const;

/** Refuses the answer `ctx` was about to send: the error page where it sent the browser a page or a redirect, else JSON. */
async function refuse(ctx: KoaContextWithOIDC, renderPage: RenderPage): Promise<void> {
  const browser = ctx.status === 303 || ctx.status === 302 || !!ctx.response.is('html');
  for (const name of DROPPED_HEADERS) ctx.remove(name);
  ctx.status = 500;
  if (browser) {
    ctx.type = 'html';
    ctx.body = await renderPage('error', { ...enginePageOf(ctx), error: REFUSAL.error, description: REFUSAL.error_description });
  } else {
    ctx.body = { ...REFUSAL };
  }
}

export function answerAfterWrites(deferred: DeferredWrites, logger: Logger, renderPage: RenderPage): EngineHook {
  /** Requests whose writes wait for their answer: from the hook's start until it settles. */
  const waiting = new WeakSet<object>();
  deferred.keepFor(() => {
    const ctx = engineRequest() as KoaContextWithOIDC | undefined;
    return ctx && waiting.has(ctx) && ctx.respond !== false ? ctx : undefined;
  });
  return {
    before(ctx) {
      waiting.add(ctx);
    },
    settle(ctx) {
      waiting.delete(ctx);
      return deferred.settle(ctx)?.catch(async (error: unknown) => {
        logger.error({ err: error, request_id: requestIdOf(ctx.res) }, "the request's writes were not committed; its answer is refused");
        await refuse(ctx, renderPage);
      });
    },
  };
}
