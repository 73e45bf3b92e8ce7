// The shapes of what the nouns hand the engine, so that each can write its hooks (middleware,
// listeners) beside its logic while oidc/hooks.ts alone installs them, in order.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** A function for provider.use: code before `await next()` runs before the engine, code after it on the engine's answer. */
export type EngineMiddleware = Parameters<Provider['use']>[0];

/** A listener for one of the engine's events (provider.on); the arguments depend on the event. */
export type EngineListener = (ctx: KoaContextWithOIDC, ...args: never[]) => void;
