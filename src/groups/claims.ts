// The `groups` claim: the sorted names of a person's groups, for scope `groups`. Read from the
// database each time a token or a userinfo response is made (nothing is cached across requests),
// so a membership change shows in the next one; and read only when scope `groups` was asked, so
// other requests pay nothing for it.
//
// Where it goes:
// - userinfo: always, for scope groups;
// - the ID token: only when the client registered `id_token_groups: true` (groups lists can be
//   long, and an ID token travels in URLs and cookies);
// - access tokens for a registered resource (resources/): when the token request's scope has
//   groups (in the JWT, or in introspection for an opaque one).
// A client with `allowed_groups` only ever sees those of the person's groups it names.
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { DbHandle } from '../db/client.js';
import { createGroupStore } from './store.js';

export const GROUPS_SCOPE = 'groups';
export const GROUPS_CLAIM = 'groups';
/** Client metadata (Gatehouse's own): the ID token carries the groups claim too. */
export const ID_TOKEN_GROUPS = 'id_token_groups';
/** Client metadata (Gatehouse's own): the only groups this client may see. */
export const ALLOWED_GROUPS = 'allowed_groups';

type ClientLike = { [key: string]: unknown } | undefined;

const hasGroupsScope = (scope: string | undefined) => (scope ?? '').split(' ').includes(GROUPS_SCOPE);

/** The groups a client may see of these: all of them, or those its allowed_groups names. */
export function visibleGroups(names: readonly string[], client: ClientLike): string[] {
  const allowed = client?.[ALLOWED_GROUPS];
  if (!Array.isArray(allowed)) return [...names];
  return names.filter((name) => allowed.includes(name));
}

export function createGroupsClaim(db: DbHandle) {
  const store = createGroupStore(db);
  const groupsOf = async (userId: string, client: ClientLike) => visibleGroups(await store.namesOf(userId), client);

  return {
    /**
     * For findAccount's claims(use, scope): `{ groups }` when the scope has groups (and, for the ID
     * token, the client asked for them there), otherwise nothing and no query.
     */
    async accountClaims(userId: string, client: ClientLike, use: string, scope: string | undefined): Promise<{ groups?: string[] }> {
      if (!hasGroupsScope(scope)) return {};
      if (use === 'id_token' && client?.[ID_TOKEN_GROUPS] !== true) return {};
      return { [GROUPS_CLAIM]: await groupsOf(userId, client) };
    },

    /** The engine's extraTokenClaims: the groups claim in a person's access token for a registered resource, when its request asked for scope groups. */
    async extraTokenClaims(ctx: KoaContextWithOIDC, token: { kind: string; accountId?: string; resourceServer?: unknown }): Promise<{ groups?: string[] } | undefined> {
      if (token.kind !== 'AccessToken' || !token.accountId || !token.resourceServer) return undefined;
      if (!hasGroupsScope(requestedScope(ctx))) return undefined;
      return { [GROUPS_CLAIM]: await groupsOf(token.accountId, ctx.oidc.client as unknown as ClientLike) };
    },
  };
}

/**
 * The OpenID scope this token request stands on: what the request names (a narrowed refresh, an
 * implicit authorization), or else what the code, refresh token or device code carries, which
 * the engine limited to what the person granted.
 */
function requestedScope(ctx: KoaContextWithOIDC): string | undefined {
  const { params, entities } = ctx.oidc;
  if (typeof params?.scope === 'string') return params.scope;
  const source = entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode ?? entities.BackchannelAuthenticationRequest;
  const scope = (source as { scope?: unknown } | undefined)?.scope;
  return typeof scope === 'string' ? scope : undefined;
}
