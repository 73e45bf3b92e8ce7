// Replaces the engine's signing keys while it runs. oidc-provider takes `jwks` only at
// construction; its constructor hands them to lib/helpers/initialize_keystore.js, which builds a
// new KeyStore (used for signing and verifying) and the public /jwks document, and assigns both
// only once every key passed its checks. Calling it again swaps both in one synchronous step, so
// no request sees half a key set; the engine looks both up per use (instance(provider).keystore
// in models/id_token.js and models/formats/jwt.js, instance(provider).jwks in actions/jwks.js).
// These are engine internals: replaceEngineKeys checks the result and throws if they changed.
import type Provider from 'oidc-provider';
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
import engineInternals from 'oidc-provider/lib/helpers/weak_cache.js';
import type { PrivateJwk } from './signing-keys.js';

export class EngineKeySwapError extends Error {
  override name = 'EngineKeySwapError';
}

/** The kids the engine publishes at /jwks right now, in its order. */
export function publishedKids(provider: Provider): string[] {
  const jwks = engineInternals(provider)?.jwks as { keys?: { kid?: string }[] } | undefined;
  if (!Array.isArray(jwks?.keys)) throw new EngineKeySwapError('cannot read the engine key set: oidc-provider internals changed (lib/helpers/weak_cache.js)');
  return jwks.keys.map((key) => String(key.kid));
}

/** Makes the engine publish `keys` and sign with the first key of each algorithm. */
export function replaceEngineKeys(provider: Provider, keys: readonly PrivateJwk[]): void {
  initializeKeystore.call(provider, { keys: keys.map((key) => ({ ...key })) });
  const published = publishedKids(provider);
  const expected = keys.map((key) => key.kid);
  if (published.join(' ') !== expected.join(' ')) {
    throw new EngineKeySwapError(`the engine did not take the new signing keys (publishes ${published.join(', ')}): oidc-provider internals changed`);
  }
}
