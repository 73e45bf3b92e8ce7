// Resource indicators (RFC 8707): an API registered in the Resource table receives access
// tokens with its own audience, scopes, lifetime and format (JWT per RFC 9068, or opaque).
// A request without a resource gets an opaque token for the userinfo endpoint, as before.
// JWT access tokens are signed RS256, the algorithm RFC 9068 asks every resource server to accept.
import type { Configuration } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Db } from '../db/client.js';
import { registrationCache } from '../db/registration-cache.js';
import { createResourceStore, type Resource } from './store.js';

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

/** Distinct resources kept by the cache; beyond this the oldest entry is dropped. */
const RESOURCE_CACHE_ENTRIES = 1000;

/**
 * `cacheSeconds`: how long a resource read from the database is reused (CLIENT_CACHE_TTL, as
 * clients are: the engine looks the resource up on every token request that names one). An
 * entry is dropped at once when anything in this process writes a resource (Db.resourceWrites);
 * writes by another instance or the CLI are seen when the entry expires. A resource is
 * registration, like a client: no token, session or grant is cached.
 */
export function resourceIndicators(db: Db, cacheSeconds = 0): ResourceIndicators {
  const resources = createResourceStore(db);
  // Only resources that exist are kept: unknown indicators (anyone can send one) must not fill the cache.
  const find = registrationCache<string, Resource | null>({
    seconds: cacheSeconds,
    writes: db.resourceWrites,
    maxEntries: RESOURCE_CACHE_ENTRIES,
    read: async (indicator) => {
      const resource = await resources.find(indicator);
      return { value: resource, keep: resource !== null };
    },
  });
  return {
    enabled: true,
    // With one resource requested at authorization, the token request may leave it out.
    defaultResource: async (_ctx, _client, oneOf) => oneOf,
    // A refresh or code exchange without `resource` keeps the audience that was granted.
    useGrantedResource: async () => true,
    async getResourceServerInfo(_ctx, indicator) {
      const resource = await find(indicator);
      if (!resource) throw new errors.InvalidTarget(`${indicator} is not a registered resource`);
      return {
        audience: resource.id,
        scope: resource.scope,
        accessTokenTTL: resource.accessTokenTtl,
        accessTokenFormat: resource.accessTokenFormat === 'opaque' ? 'opaque' : 'jwt',
        ...(resource.accessTokenFormat === 'opaque' ? {} : { jwt: { sign: { alg: 'RS256' } } }),
      };
    },
  };
}

/**
 * Which tokens a client may introspect or revoke. A resource server asks on every introspection;
 * which resources name it is registration, read and reused for `cacheSeconds` (CLIENT_CACHE_TTL)
 * as the resources themselves are (resourceIndicators), and dropped at once when this process
 * writes a resource. The token itself is read afresh every time.
 */
export function tokenPolicies(db: Db, cacheSeconds = 0) {
  const resources = createResourceStore(db);
  // Keyed by authenticated clients only (introspection requires client authentication).
  const introspectableBy = registrationCache<string, string[]>({
    seconds: cacheSeconds,
    writes: db.resourceWrites,
    maxEntries: RESOURCE_CACHE_ENTRIES,
    read: async (clientId) => ({ value: await resources.introspectableBy(clientId), keep: true }),
  });
  return {
    /** Its own tokens, or, for a resource server registered to introspect, tokens for that resource. */
    async introspectionAllowed(clientId: string, token: { clientId?: string; aud?: string | string[] }): Promise<boolean> {
      if (token.clientId === clientId) return true;
      const audiences = token.aud === undefined ? [] : Array.isArray(token.aud) ? token.aud : [token.aud];
      if (!audiences.length) return false;
      const allowed = await introspectableBy(clientId);
      return audiences.some((aud) => allowed.includes(aud));
    },
    /** Only its own tokens. */
    revocationAllowed(clientId: string, token: { clientId?: string }): boolean {
      return token.clientId === clientId;
    },
  };
}
