// Token-endpoint answers where the engine is looser than RFC 6749 5.2, corrected after the
// engine has answered (it offers no hook for these): a client using a grant type it is not
// registered for gets `unauthorized_client`, and a request without any client authentication,
// or with Basic authentication and an empty secret, gets 401 `invalid_client`. Tests pin the
// engine descriptions we match.
import type { EngineHook } from '../core/engine-types.js';
import type Provider from 'oidc-provider';

const CLIENT_AUTHENTICATED_ROUTES = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization']);

const GRANT_NOT_ALLOWED = 'requested grant type is not allowed for this client';
const NO_CLIENT_AUTHENTICATION = 'no client authentication mechanism provided';
const EMPTY_BASIC_SECRET = 'client_secret must be provided in the Authorization header';

interface OAuthErrorBody {
  error?: string;
  error_description?: string;
}

/** Post-processing of the engine's own answer (installed by oidc/hooks.ts). */
export function correctTokenEndpointErrors(provider: Provider): EngineHook {
  return {
    after(ctx) {
      const route = (ctx as { oidc?: { route?: string } }).oidc?.route;
      if (!route || !CLIENT_AUTHENTICATED_ROUTES.has(route) || ctx.status !== 400) return;
      const body = ctx.body as OAuthErrorBody | undefined;
      if (body?.error !== 'invalid_request') return;
      if (route === 'token' && body.error_description === GRANT_NOT_ALLOWED) {
        ctx.body = { ...body, error: 'unauthorized_client' };
      } else if (body.error_description === NO_CLIENT_AUTHENTICATION) {
        ctx.status = 401;
        ctx.body = { ...body, error: 'invalid_client' };
      } else if (body.error_description === EMPTY_BASIC_SECRET) {
        // An empty secret is a wrong secret: answer as the engine does for one (RFC 6749 5.2).
        ctx.status = 401;
        ctx.body = { ...body, error: 'invalid_client' };
        ctx.set('WWW-Authenticate', `Basic realm="${provider.issuer}", error="invalid_client"`);
      }
    },
  };
}
