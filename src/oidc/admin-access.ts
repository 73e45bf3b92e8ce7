// Who may call the admin API: a client that holds one of Gatehouse's own access tokens, obtained
// with the client_credentials grant, carrying the `admin` scope. Nothing else gets in.
//
// The token is opaque and looked up in the database on every call (through the engine), so a
// revoked token (/token/revocation), a deleted client or a client whose `admin` scope was removed
// is refused at once, and an expired one the moment it expires. Refused as well:
// - user access tokens (the authorization code flow), even with `admin` in their scope: the
//   admin API acts for a machine, never on a person's consent;
// - tokens issued for a registered resource (RFC 8707 `resource`): they belong to that API;
// - sender-constrained tokens (DPoP, mTLS): this API does not check proofs, and accepting such
//   a token as a plain bearer token would undo its binding.
// The engine refuses `admin` at /token to a client whose registered `scope` lacks it (it is one
// of the provider's scopes, provider.ts), but lets a client registered without any `scope` ask
// for every scope: refuseUnregisteredAdminScope closes that. authorizeAdminRequest repeats the
// check against the stored client on every call.
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';

export const ADMIN_SCOPE = 'admin';

const words = (value: unknown) => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);

/**
 * Authorization requests never get `admin`: throws invalid_scope when `scope` (a request's
 * space-separated scope parameter, anything else ignored) names it. Called by the engine's
 * interaction policy for every authorization request, and by the adapter before it stores a
 * pushed request or a device code, so /par and /device/auth refuse it at once.
 */
export function refuseAdminScope(scope: unknown): void {
  if (typeof scope === 'string' && scope.split(' ').includes(ADMIN_SCOPE)) {
    throw new errors.InvalidScope(`the ${ADMIN_SCOPE} scope is issued only with the client_credentials grant`, ADMIN_SCOPE);
  }
}

/** The scope inside a pushed request as the engine stores it: an unsecured or signed JWT (a JWE is opaque: undefined). */
export function scopeOfRequestObject(request: unknown): unknown {
  if (typeof request !== 'string') return undefined;
  const parts = request.split('.');
  if (parts.length !== 3) return undefined;
  try {
    return (JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as { scope?: unknown }).scope;
  } catch {
    return undefined;
  }
}

/**
 * No client_credentials token carrying `admin` is saved for a client whose registered `scope`
 * lacks it. The engine checks a requested scope against the client's `scope` only when the
 * client has one, and a client registered without any may ask for every scope the provider
 * lists; this refuses `admin` to it at /token with invalid_scope, before anything is stored.
 * The token model's save() is the one step every issued client_credentials token passes.
 */
export function refuseUnregisteredAdminScope(provider: Provider): void {
  const save = provider.ClientCredentials.prototype.save;
  provider.ClientCredentials.prototype.save = async function saveWithRegisteredScopeOnly(this: InstanceType<Provider['ClientCredentials']>) {
    if (words(this.scope).includes(ADMIN_SCOPE) && !words(this.client?.scope).includes(ADMIN_SCOPE)) {
      throw new errors.InvalidScope('requested scope is not allowed', ADMIN_SCOPE);
    }
    return save.call(this);
  };
}

export class AdminTokenError extends Error {
  override name = 'AdminTokenError';
  constructor(
    /** 401: no usable token (RFC 6750 invalid_token); 403: a good token without the right (insufficient_scope). */
    readonly status: 401 | 403,
    readonly code: 'invalid_token' | 'insufficient_scope',
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new AdminTokenError(401, 'invalid_token', message);
const insufficient = (message: string) => new AdminTokenError(403, 'insufficient_scope', message);


/** The client an Authorization header's admin token belongs to; throws AdminTokenError otherwise. */
export async function authorizeAdminRequest(provider: Provider, authorization: string | undefined): Promise<{ clientId: string }> {
  const match = /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization ?? '');
  if (!match) throw invalid('send an access token: Authorization: Bearer <token> (client_credentials grant, scope admin)');
  const value = match[1] as string;

  const token = await provider.ClientCredentials.find(value);
  if (!token || token.isExpired) {
    // A valid token of a person (authorization code flow) is a token without the right to this API.
    const userToken = await provider.AccessToken.find(value);
    if (userToken && !userToken.isExpired) throw insufficient('the admin API accepts only client_credentials tokens');
    throw invalid('the access token is unknown, expired or revoked');
  }
  const { clientId } = token;
  if (!clientId) throw invalid('the access token has no client');
  if (token.resourceServer || token.aud !== undefined) throw invalid('the access token was issued for another resource (leave out the resource parameter)');
  if ((token as { cnf?: unknown }).cnf !== undefined) throw invalid('sender-constrained (DPoP or mTLS) tokens are not accepted by the admin API');
  if (!words(token.scope).includes(ADMIN_SCOPE)) throw insufficient(`the access token lacks the ${ADMIN_SCOPE} scope`);

  const client = await provider.Client.find(clientId);
  if (!client) throw invalid('the client of this access token no longer exists');
  if (!words(client.scope).includes(ADMIN_SCOPE) || !client.grantTypes?.includes('client_credentials')) {
    throw insufficient(`client ${clientId} is not registered for the ${ADMIN_SCOPE} scope with the client_credentials grant`);
  }
  return { clientId };
}
