// Types for the two oidc-provider internals keys/engine-swap.ts uses (the package has no exports
// map, so these paths resolve; @types/oidc-provider does not describe them).
declare module 'oidc-provider/lib/helpers/initialize_keystore.js' {
  /** Called with the provider as `this`: replaces its keystore and public JWKS. */
  export default function initializeKeystore(this: unknown, jwks: { keys: unknown[] }): void;
}

declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  /** The engine's private per-provider state. */
  export default function instance(provider: unknown): Record<string, unknown> | undefined;
}
