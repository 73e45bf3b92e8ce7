// The nouns' hooks around every engine request (core/engine-types.ts, EngineHook), run from one
// provider.use middleware. Each Koa middleware layer costs a few promises (and, with the
// engine's AsyncLocalStorage, an async-hook call for each) on every request the engine serves;
// one layer for all of Gatehouse's hooks keeps that cost off the token and userinfo paths, and it
// awaits a hook's `after` or `settle` only when the hook returned a promise (an answer with no
// audit event and no kept write, such as /userinfo, has nothing to wait for). The
// order and the error handling are those of one middleware per hook, outermost first: an error
// skips the `after` of every hook it passes, a `recover` can answer instead, and a `settle` runs
// either way.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EngineHook, EngineMiddleware } from '../core/engine-types.js';

export function runEngineHooks(hooks: readonly EngineHook[]): EngineMiddleware {
  const before = hooks.filter((hook) => hook.before);
  const outward = [...hooks].reverse();
  return async function engineHooks(koa, next) {
    const ctx = koa as KoaContextWithOIDC;
    for (const hook of before) hook.before?.(ctx);
    let failed = false;
    let error: unknown;
    try {
      await next();
    } catch (thrown) {
      failed = true;
      error = thrown;
    }
    for (const hook of outward) {
      try {
        if (!failed) {
          const pending = hook.after?.(ctx);
          if (pending) await pending;
        } else if (hook.recover && (await hook.recover(ctx, error))) {
          failed = false;
        }
      } catch (thrown) {
        failed = true;
        error = thrown;
      }
      if (hook.settle) {
        try {
          const pending = hook.settle(ctx);
          if (pending) await pending;
        } catch (thrown) {
          failed = true;
          error = thrown;
        }
      }
    }
    if (failed) throw error;
  };
}
