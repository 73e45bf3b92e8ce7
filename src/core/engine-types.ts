// The shapes of what the nouns hand the engine, so that each can write its hooks (around its
// requests, listeners) beside its logic while oidc/hooks.ts alone installs them, in order.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** A function for provider.use: code before `await next()` runs before the engine, code after it on the engine's answer. */
export type EngineMiddleware = Parameters<Provider['use']>[0];

/**
 * What one noun does around every engine request. oidc/hooks.ts lists the hooks outermost first
 * and oidc/hook-runner.ts runs them all from one middleware, exactly as if each were a middleware
 * of its own wrapped around the next: `before` on the way in, then on the way out, innermost
 * first, `after` (or `recover` while the request is failing) and `settle`.
 */
export interface EngineHook {
  /** Before the engine's route runs; must not throw. */
  before?(ctx: KoaContextWithOIDC): void;
  /** After the route answered: reads or rewrites the status, body and headers. Skipped while the request is failing. */
  after?(ctx: KoaContextWithOIDC): void | Promise<void>;
  /** The route (or an inner hook) threw: answers instead and returns true, or returns false to let the error through. */
  recover?(ctx: KoaContextWithOIDC, error: unknown): Promise<boolean>;
  /** Always, once the inner part is done, failed or not (a `finally`); returns nothing when it has nothing to wait for. */
  settle?(ctx: KoaContextWithOIDC): void | Promise<void>;
}

/** A listener for one of the engine's events (provider.on); the arguments depend on the event. */
export type EngineListener = (ctx: KoaContextWithOIDC, ...args: never[]) => void;
