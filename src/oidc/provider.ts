// The one place the oidc-provider engine is configured. Every departure from an engine
// default says why in one line.
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.js';
import { createArtifactQueries } from '../db/artifacts.js';
import type { Db } from '../db/client.js';
import { CLAIMS_BY_SCOPE, createFindAccount } from './accounts.js';
import { createAdapterFactory, type Clock } from './adapter.js';
import type { SigningKeys } from './keys.js';
import { cookieKeys } from './secrets.js';

/** Renders one of our pages to HTML (views live with the HTTP layer; this is how they reach us). */
export type RenderPage = (view: string, locals: Record<string, unknown>) => Promise<string>;

export interface ProviderDeps {
  config: Config;
  db: Db;
  keys: SigningKeys;
  renderPage: RenderPage;
  now?: Clock;
}

/** Our protocol paths: the engine's defaults renamed to what Gatehouse documents. */
export const ROUTES = {
  authorization: '/authorize',
  token: '/token',
  userinfo: '/userinfo',
  jwks: '/jwks',
  end_session: '/logout',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  registration: '/register',
  pushed_authorization_request: '/par',
  device_authorization: '/device/auth',
  code_verification: '/device',
  backchannel_authentication: '/backchannel',
  challenge: '/challenge',
  credential: '/credential',
} as const;

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name and profile details',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using it',
};

export function describeScope(scope: string): string {
  return SCOPE_DESCRIPTIONS[scope] ?? scope;
}

const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;

export function createProvider({ config, db, keys, renderPage, now = () => new Date() }: ProviderDeps): Provider {
  const artifacts = createArtifactQueries(db.prisma);

  const configuration: Configuration = {
    adapter: createAdapterFactory(db, now),
    findAccount: createFindAccount(db),
    jwks: keys.jwks,
    routes: ROUTES,
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: Object.fromEntries(Object.entries(CLAIMS_BY_SCOPE).map(([scope, claims]) => [scope, [...claims]])),
    // Cookies are signed with keys derived from SECRETS (newest first, so rotation is prepending).
    // POSTed authorization requests arrive cross-site, so the session cookie must then be
    // SameSite=None to be sent with them; otherwise Lax keeps it out of cross-site requests.
    cookies: { keys: cookieKeys(config.secrets), long: { httpOnly: true, sameSite: config.authorizationPost ? 'none' : 'lax' } },
    enableHttpPostMethods: config.authorizationPost,
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Session: config.ttl.session,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    // Our own EJS pages replace the engine's development-only login screens.
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      // Lets a relying party's request ask for individual claims (OpenID Connect Core 5.5).
      claimsParameter: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = await renderPage('logout', { form, clientName: clientName(ctx) });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = await renderPage('signed-out', { clientName: clientName(ctx) });
        },
      },
    },
    // RFC 9700: PKCE is required of public clients (and accepted from every client).
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    // RFC 9700: every refresh rotates the refresh token, so a replayed one is detectable.
    rotateRefreshToken: true,
    // Consent is remembered in the grant across sign-ins, not only within one session.
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId =
        (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ||
        session.grantIdFor(client.clientId) ||
        (await artifacts.latestGrantId(session.accountId, client.clientId, now()));
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    // Browsers may call the token and userinfo endpoints only from a client's own origins.
    clientBasedCORS(_ctx, origin, client) {
      return client.redirectUris?.some((uri) => URL.canParse(uri) && new URL(uri).origin === origin) ?? false;
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = await renderPage('error', { error: out.error, description: out.error_description });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  // Express's `trust proxy` does not reach the engine (a Koa app): tell it separately.
  provider.proxy = config.trustProxy !== false;
  return provider;
}
