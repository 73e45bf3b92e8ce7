// The one place the oidc-provider engine is configured. Every departure from an engine
// default says why in one line; larger pieces live in small neighbours (resources/engine.ts,
// subjects.ts, device-flow.ts). What is changed in the running engine beyond its configuration
// (replaced methods, middleware, listeners, adapter policies) is installed by hooks.ts.
import { hkdfSync } from 'node:crypto';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/index.js';
import { createArtifactStore } from '../artifacts/store.js';
import type { Db } from '../db/client.js';
import { builtInClients, builtInGrant, isBuiltInClient } from '../clients/built-in-clients.js';
import { ADMIN_SCOPE, refuseAdminScope } from './admin-access.js';
import { CLAIMS_BY_SCOPE, createFindAccount } from '../people/accounts.js';
import { createGroupsClaim, GROUPS_CLAIM, GROUPS_SCOPE } from '../groups/claims.js';
import { GROUPS_CLIENT_METADATA, validateGroupsMetadata } from '../groups/client-metadata.js';
import { createAdapterFactory, type Clock } from './adapter.js';
import { createRequestReads, engineRequest, grantKey, latestGrantKey, personKey } from './request-reads.js';
import { deviceFlowFeature } from './device-flow.js';
import { adapterWithHooks } from './hooks.js';
import type { AdapterObserver } from './instrumentation.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import { enginePageOf, type RenderPage } from './page-renderer.js';
import { resourceIndicators, tokenPolicies } from '../resources/engine.js';
import { cookieSigner } from '../core/secrets.js';
import { pairwiseIdentifier } from './subjects.js';

export interface ProviderDeps {
  config: Config;
  db: Db;
  keys: SigningKeys;
  /** The deployment's pairwise subject salt (subjects.ts). */
  pairwiseSalt: string;
  renderPage: RenderPage;
  now?: Clock;
  /** Told how long each storage call took (metrics); absent, calls are not timed. */
  observeAdapter?: AdapterObserver;
  /** Replaces Gatehouse's storage; only the benchmark's baseline (test/bench) passes the engine's in-memory adapter. */
  adapter?: Configuration['adapter'];
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

/** The authentication context Gatehouse asserts for a password sign-in. */
export const ACR_PASSWORD = 'urn:gatehouse:acr:password';
/** The authentication context for a password and a second factor (TOTP or a recovery code). */
export const ACR_MFA = 'urn:gatehouse:acr:mfa';

/** Client metadata of our own: a client with `gatehouse_require_mfa: true` gets only MFA sign-ins. */
export const REQUIRE_MFA_METADATA = 'gatehouse_require_mfa';

/**
 * Whether this authorization request must end with an MFA sign-in: the client requires it, or
 * the request asks for ACR_MFA (acr_values, the claims parameter, or the client's
 * default_acr_values) without also accepting a password-only sign-in.
 */
function mfaRequired(ctx: KoaContextWithOIDC): boolean {
  const client = ctx.oidc.client as unknown as Record<string, unknown> | undefined;
  if (client?.[REQUIRE_MFA_METADATA] === true) return true;
  const acrValues = (ctx.oidc.params?.acr_values as string | undefined)?.split(' ') ?? [];
  const acrClaim = (ctx.oidc.claims as { id_token?: { acr?: { value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  const requested = new Set<unknown>([...acrValues, acrClaim?.value, ...(Array.isArray(acrClaim?.values) ? acrClaim.values : [])]);
  return requested.has(ACR_MFA) && !requested.has(ACR_PASSWORD);
}

/**
 * The engine's default prompts, and one more reason for the login prompt: MFA is required and
 * this session's sign-in was password-only (the engine itself only enforces essential acr
 * claims, not acr_values or our client setting). The interaction pages read the reason.
 */
export const MFA_REQUIRED_REASON = 'mfa_required';

/**
 * `admin` opens the admin API, which acts for a machine (client_credentials), never on a
 * person's consent. The engine lets a client with no registered `scope` ask for any of the
 * provider's scopes, so every authorization request (front channel, PAR, request object, device
 * flow) naming `admin` is refused here with invalid_scope before anyone signs in or consents
 * (the adapter also refuses to store a pushed request or device code naming it).
 */
const ADMIN_SCOPE_REFUSED = 'admin_scope_refused';
function checkNoAdminScope(ctx: KoaContextWithOIDC): boolean {
  refuseAdminScope(ctx.oidc.params?.scope);
  return false;
}

function interactionPolicyOfGatehouse() {
  const policy = interactionPolicy.base();
  // The login prompt is evaluated first on every authorization request, whether or not a session exists.
  policy.get('login')?.checks.add(new interactionPolicy.Check(ADMIN_SCOPE_REFUSED, 'the admin scope is not available here', 'invalid_scope', checkNoAdminScope), 0);
  policy.get('login')?.checks.add(
    new interactionPolicy.Check(MFA_REQUIRED_REASON, 'multi-factor authentication is required', 'login_required', (ctx) => mfaRequired(ctx) && ctx.oidc.session?.acr !== ACR_MFA),
  );
  return policy;
}

const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;

export function createProvider({ config, db, keys, pairwiseSalt, renderPage, now = () => new Date(), observeAdapter, adapter }: ProviderDeps): Provider {
  const artifacts = createArtifactStore(db);
  const policies = tokenPolicies(db, config.clientCache);
  const groupsClaim = createGroupsClaim(db);
  const { features } = config;
  const epochNow = () => Math.floor(now().getTime() / 1000);
  // A token's session, grant and person, read with it, for the engine's next lookups in the request.
  const reads = createRequestReads(engineRequest);

  const configuration: Configuration = {
    adapter: adapter ?? adapterWithHooks(createAdapterFactory(db, config.secrets, now, config.clientCache, reads), { now, observe: observeAdapter }),
    findAccount: createFindAccount(db, (accountId) => reads.take(personKey(accountId))),
    // The account page's and the console's own first-party clients (clients/built-in-clients.ts); static, so nobody edits them.
    clients: builtInClients(config.issuer, { consoleRequiresMfa: config.console.requireMfa }),
    jwks: keys.jwks,
    routes: ROUTES,
    // `admin` is listed so the engine grants it at /token only to clients whose registered scope has
    // it (admin-access.ts); authorization requests never get it (refuseAdminScope).
    scopes: ['openid', 'offline_access', 'profile', 'email', GROUPS_SCOPE, ADMIN_SCOPE],
    // Every ID token says how the person signed in (acr, amr), so an app can check for MFA.
    // `groups` is under openid too: an ID token from a code flow releases only openid's claims, and
    // findAccount offers groups to it only for scope groups and a client with id_token_groups (groups/claims.ts).
    claims: { ...Object.fromEntries(Object.entries(CLAIMS_BY_SCOPE).map(([scope, claims]) => [scope, [...claims]])), openid: [...CLAIMS_BY_SCOPE.openid, 'acr', 'amr', GROUPS_CLAIM] },
    // A person's groups in access tokens for registered resources, for scope groups (groups/claims.ts).
    extraTokenClaims: groupsClaim.extraTokenClaims,
    acrValues: [ACR_PASSWORD, ACR_MFA],
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: pairwiseIdentifier(pairwiseSalt),
    // Cookies are signed with keys derived from SECRETS (newest first, so rotation is prepending).
    // POSTed authorization requests arrive cross-site, so the session cookie must then be
    // SameSite=None to be sent with them; otherwise Lax keeps it out of cross-site requests.
    cookies: { keys: cookieSigner(config.secrets), long: { httpOnly: true, sameSite: config.server.authorizationPost ? 'none' : 'lax' } },
    enableHttpPostMethods: config.server.authorizationPost,
    ttl: {
      // A registered resource sets its own token lifetime; everything else uses ACCESS_TOKEN_TTL.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      // Rotation issues a new refresh token each time; none outlives the absolute lifetime
      // counted from the first one of its grant (`iiat`).
      RefreshToken(_ctx, token) {
        const started = (token as { iiat?: number }).iiat ?? token.iat ?? epochNow();
        return Math.max(1, Math.min(config.ttl.refreshToken, started + config.ttl.refreshTokenAbsolute - epochNow()));
      },
      Session: config.ttl.session,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
      DeviceCode: config.ttl.deviceCode,
      BackchannelAuthenticationRequest: config.ttl.deviceCode,
    },
    // Our own EJS pages replace the engine's development-only login screens.
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: interactionPolicyOfGatehouse() },
    extraClientMetadata: {
      properties: [REQUIRE_MFA_METADATA, ...GROUPS_CLIENT_METADATA],
      validator(_ctx, key, value) {
        if (key === REQUIRE_MFA_METADATA && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata(`${REQUIRE_MFA_METADATA} must be true or false`);
        }
        validateGroupsMetadata(key, value);
      },
    },
    features: {
      devInteractions: { enabled: false },
      // Lets a relying party's request ask for individual claims (OpenID Connect Core 5.5).
      claimsParameter: { enabled: true },
      clientCredentials: { enabled: features.clientCredentials },
      resourceIndicators: resourceIndicators(db, config.clientCache),
      introspection: {
        enabled: features.introspection,
        allowedPolicy: async (_ctx, client, token) =>
          policies.introspectionAllowed(client.clientId, { clientId: token.clientId, aud: (token as { aud?: string | string[] }).aud }),
      },
      revocation: {
        enabled: features.revocation,
        allowedPolicy: async (_ctx, client, token) => policies.revocationAllowed(client.clientId, { clientId: token.clientId }),
      },
      deviceFlow: features.deviceFlow ? deviceFlowFeature(renderPage) : { enabled: false },
      backchannelLogout: { enabled: features.backchannelLogout },
      pushedAuthorizationRequests: { enabled: features.pushedAuthorizationRequests, requirePushedAuthorizationRequests: false },
      requestObjects: { enabled: features.requestObjects, requireSignedRequestObject: false },
      dPoP: {
        enabled: features.dpop,
        // Lets Gatehouse hand out DPoP nonces (RFC 9449 8); every instance derives the same one.
        nonceSecret: Buffer.from(hkdfSync('sha256', config.secrets[0] as string, 'gatehouse', 'gatehouse/dpop-nonce/v1', 32)),
        requireNonce: () => false,
      },
      registration: { enabled: features.registration, initialAccessToken: true },
      registrationManagement: { enabled: features.registration, rotateRegistrationAccessToken: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = await renderPage('logout', { ...enginePageOf(ctx), form, clientName: clientName(ctx) });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = await renderPage('signed-out', { ...enginePageOf(ctx), clientName: clientName(ctx) });
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
      let grantId = (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId || session.grantIdFor(client.clientId);
      if (!grantId) {
        // The newest grant is read with its row (or was, with the interaction this request
        // resumes), kept for the Grant.find below (request-reads.ts).
        const readAhead = reads.take(latestGrantKey(session.accountId, client.clientId));
        const latest = readAhead !== undefined ? readAhead : await artifacts.latestGrant(session.accountId, client.clientId, now());
        const request = reads.current();
        if (latest && request) reads.keep(request, [[grantKey(latest.id), latest.row]]);
        grantId = latest?.id;
      }
      const grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      // The account page and the console are Gatehouse itself: they never ask for consent (clients/built-in-clients.ts).
      if (!grant && isBuiltInClient(client.clientId)) return builtInGrant(ctx.oidc.provider, client.clientId, session.accountId);
      return grant;
    },
    // Browsers may call the token and userinfo endpoints only from a client's own origins.
    clientBasedCORS(_ctx, origin, client) {
      return client.redirectUris?.some((uri) => URL.canParse(uri) && new URL(uri).origin === origin) ?? false;
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = await renderPage('error', { ...enginePageOf(ctx), error: out.error, description: out.error_description });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  // The engine reads the client address, host and scheme from X-Forwarded-*, which http/app.ts
  // always sets itself from Express's view (TRUST_PROXY) and the ISSUER: never the caller's.
  provider.proxy = true;
  return provider;
}
