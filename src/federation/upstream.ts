// The upstream side of a federated sign-in, with openid-client: the authorization code flow with
// PKCE, state and (oidc) nonce; the ID token validated by openid-client (signature against the
// issuer's keys, issuer, audience, nonce, expiry); userinfo read when the ID token lacks the
// claims the mapping needs. The `oauth2` kind has no ID token: its user endpoint (and, for the
// GitHub preset, its emails endpoint with their verified flags) says who signed in.
//
// Plain http reaches an upstream only outside production, or on this machine (127.0.0.1,
// localhost): openid-client refuses it otherwise, and so do we before asking it.
import type * as OpenId from 'openid-client';
import { isHttpUrl } from '../core/fields.js';
import type { ProfileClaim } from '../people/store.js';
import type { ResolvedIdp } from './schema.js';

/** Why an upstream sign-in failed: each has its page (http/messages) and its audit `reason`. */
export const UPSTREAM_FAILURES = ['upstream_unreachable', 'refused_upstream', 'upstream_error', 'state_mismatch', 'bad_signature', 'wrong_issuer', 'wrong_audience', 'invalid_id_token', 'invalid_response', 'insecure_upstream'] as const;
export type UpstreamFailureReason = (typeof UPSTREAM_FAILURES)[number];

export class UpstreamFailure extends Error {
  override name = 'UpstreamFailure';
  constructor(
    readonly reason: UpstreamFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Who signed in upstream, mapped to Gatehouse's profile fields. */
export interface UpstreamIdentity {
  subject: string;
  /** Lower-cased. */
  email: string | null;
  /** Only what the upstream asserts: an email is never taken as verified otherwise. */
  emailVerified: boolean;
  profile: Partial<Record<ProfileClaim, string>>;
  amr: string[];
  acr: string | null;
}

/** What the callback is checked against; kept server-side-sealed in the flow cookie (flow-cookie.ts). */
export interface FlowChecks {
  state: string;
  nonce?: string;
  codeVerifier: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const REQUEST_TIMEOUT_SECONDS = 10;
/** Discovery documents and keys are read again after this long (or when the declaration changes). */
const DISCOVERY_TTL_MS = 10 * 60 * 1000;

const PROFILE_CLAIMS: readonly ProfileClaim[] = ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'];

/** The network error underneath, if any: refused, unknown host, reset, timed out. */
function isUnreachable(error: unknown): boolean {
  for (let cause = error, depth = 0; cause && depth < 6; cause = (cause as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = cause as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN|UND_ERR_\w+)$/.test(code)) return true;
    if (name === 'TimeoutError' || name === 'AbortError' || message === 'fetch failed') return true;
  }
  return false;
}

// openid-client (and oauth4webapi below it) is loaded with the first federated sign-in, not at start-up.
let openIdClient: typeof OpenId | undefined;
let loadingOpenIdClient: Promise<typeof OpenId> | undefined;
const loadOpenIdClient = () => (loadingOpenIdClient ??= import('openid-client').then((loaded) => (openIdClient = loaded)));

/** openid-client's errors as the reasons pages and the audit trail name. */
export function classifyUpstreamError(error: unknown): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  // openid-client rewords oauth4webapi's errors and keeps the original as the cause: read that.
  const inner = (error as { cause?: unknown } | undefined)?.cause;
  const specific = inner instanceof Error && typeof (inner as { code?: unknown }).code === 'string' ? inner : error;
  const { code, message = '', cause } = (specific ?? {}) as { code?: string; message?: string; cause?: { claim?: string; attribute?: string } };
  const failure = (reason: UpstreamFailureReason) => new UpstreamFailure(reason, message || String(error), { cause: error });
  // An error from openid-client means it is loaded.
  if (openIdClient && error instanceof openIdClient.ResponseBodyError) return failure('upstream_error');
  if (message.includes('signature verification failed') || code === 'OAUTH_KEY_SELECTION_FAILED') return failure('bad_signature');
  if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED') {
    if (cause?.claim === 'iss') return failure('wrong_issuer');
    if (cause?.claim === 'aud' || cause?.claim === 'azp') return failure('wrong_audience');
    return failure('invalid_id_token');
  }
  // Discovery answered for another issuer than the one declared.
  if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && cause?.attribute === 'issuer') return failure('wrong_issuer');
  if (code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') return failure('invalid_id_token');
  if (isUnreachable(error)) return failure('upstream_unreachable');
  return failure('invalid_response');
}

const text = (value: unknown) => (typeof value === 'string' && value.trim() ? value.trim() : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined);
const isTrue = (value: unknown) => value === true || value === 'true';

/** The upstream's claims mapped to an identity; the subject is required. */
function mapClaims(idp: ResolvedIdp, claims: Record<string, unknown>, email?: { email: string | null; verified: boolean }): UpstreamIdentity {
  const subject = text(claims[idp.claims.subject]);
  if (!subject || subject.length > 255) throw new UpstreamFailure('invalid_response', `the upstream gave no usable subject (${idp.claims.subject})`);
  const mappedEmail = email ? email.email : (text(claims[idp.claims.email])?.toLowerCase() ?? null);
  const profile: UpstreamIdentity['profile'] = {};
  for (const claim of PROFILE_CLAIMS) {
    const value = text(claims[idp.claims[claim]]);
    // A picture is kept only as an http(s) URL, as the admin API and the seed file require.
    if (value && value.length <= 255 && (claim !== 'picture' || isHttpUrl(value, { fragment: true }))) profile[claim] = value;
  }
  const amr = Array.isArray(claims.amr) ? claims.amr.filter((v): v is string => typeof v === 'string') : [];
  return {
    subject,
    email: mappedEmail && mappedEmail.length <= 254 && mappedEmail.includes('@') ? mappedEmail : null,
    emailVerified: email ? email.verified : isTrue(claims[idp.claims.email_verified]),
    profile,
    amr,
    acr: typeof claims.acr === 'string' ? claims.acr : null,
  };
}

/** GitHub's /user/emails: the primary verified address, else any verified one, else the primary (unverified). */
function githubEmail(answer: unknown): { email: string | null; verified: boolean } {
  const emails = Array.isArray(answer) ? answer.filter((e): e is { email: string; primary?: boolean; verified?: boolean } => !!e && typeof e.email === 'string') : [];
  const chosen = emails.find((e) => e.primary && e.verified === true) ?? emails.find((e) => e.verified === true) ?? emails.find((e) => e.primary);
  return chosen ? { email: chosen.email.toLowerCase(), verified: chosen.verified === true } : { email: null, verified: false };
}

/** Whether a trusted upstream's amr/acr shows multi-factor authentication. */
export function upstreamShowsMfa(idp: ResolvedIdp, identity: UpstreamIdentity): boolean {
  if (!idp.trusted) return false;
  const methods = new Set(identity.amr.filter((method) => method !== 'fed'));
  return methods.has('mfa') || methods.size >= 2 || (identity.acr !== null && idp.mfaAcrValues.includes(identity.acr));
}

export interface UpstreamOptions {
  /** NODE_ENV=production: plain http only to this machine. */
  production: boolean;
}

export function createUpstreams({ production }: UpstreamOptions) {
  const discovered = new Map<string, { key: string; at: number; config: Promise<OpenId.Configuration> }>();

  function checkTransport(idp: ResolvedIdp, url: string | undefined): boolean {
    if (!url) return false;
    const parsed = new URL(url);
    if (parsed.protocol === 'https:') return false;
    if (production && !LOOPBACK.has(parsed.hostname)) throw new UpstreamFailure('insecure_upstream', `${idp.id}: ${url} is plain http, refused in production`);
    return true;
  }

  function authenticationOf(client: typeof OpenId, idp: ResolvedIdp, secret: string): OpenId.ClientAuth {
    return idp.authMethod === 'client_secret_post' ? client.ClientSecretPost(secret) : client.ClientSecretBasic(secret);
  }

  async function discover(idp: ResolvedIdp, secret: string): Promise<OpenId.Configuration> {
    const insecure = checkTransport(idp, idp.issuer);
    const client = await loadOpenIdClient();
    const config = await client.discovery(new URL(idp.issuer as string), idp.clientId, undefined, authenticationOf(client, idp, secret), {
      timeout: REQUEST_TIMEOUT_SECONDS,
      ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
    });
    config.timeout = REQUEST_TIMEOUT_SECONDS;
    // openid-client trusts an ID token from the token endpoint on the strength of TLS alone (OIDC
    // Core 3.1.3.7) unless told otherwise: its signature is checked against the issuer's keys too.
    client.enableNonRepudiationChecks(config);
    return config;
  }

  function oauth2Configuration(client: typeof OpenId, idp: ResolvedIdp, secret: string): OpenId.Configuration {
    const endpoints = [idp.authorizationEndpoint, idp.tokenEndpoint, idp.userinfoEndpoint, idp.emailsEndpoint];
    const insecure = endpoints.map((url) => checkTransport(idp, url)).some(Boolean);
    const metadata: OpenId.ServerMetadata = {
      // Not an OpenID provider: the issuer only names it (no ID token is expected or checked).
      issuer: new URL(idp.authorizationEndpoint as string).origin,
      authorization_endpoint: idp.authorizationEndpoint,
      token_endpoint: idp.tokenEndpoint,
      userinfo_endpoint: idp.userinfoEndpoint,
    };
    const config = new client.Configuration(metadata, idp.clientId, undefined, authenticationOf(client, idp, secret));
    config.timeout = REQUEST_TIMEOUT_SECONDS;
    if (insecure) client.allowInsecureRequests(config);
    return config;
  }

  /** The client configuration, discovery read once per TTL and per version of the declaration. */
  function configuration(idp: ResolvedIdp, secret: string): Promise<OpenId.Configuration> {
    if (idp.kind === 'oauth2') return loadOpenIdClient().then((client) => oauth2Configuration(client, idp, secret));
    const key = `${idp.updatedAt.getTime()}`;
    const cached = discovered.get(idp.id);
    if (cached && cached.key === key && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const config = discover(idp, secret);
    discovered.set(idp.id, { key, at: Date.now(), config });
    config.catch(() => discovered.delete(idp.id));
    return config;
  }

  async function readJson(config: OpenId.Configuration, accessToken: string, url: string): Promise<unknown> {
    const client = await loadOpenIdClient();
    const response = await client.fetchProtectedResource(config, accessToken, new URL(url), 'GET', undefined, new Headers({ accept: 'application/json' }));
    if (!response.ok) throw new UpstreamFailure('invalid_response', `${url} answered ${response.status}`);
    try {
      return await response.json();
    } catch (error) {
      throw new UpstreamFailure('invalid_response', `${url} did not answer JSON`, { cause: error });
    }
  }

  return {
    /** Where to send the browser, and what its return is checked against. */
    async authorizationUrl(idp: ResolvedIdp, secret: string, redirectUri: string): Promise<{ url: URL; checks: FlowChecks }> {
      try {
        const config = await configuration(idp, secret);
        const client = await loadOpenIdClient();
        const checks: FlowChecks = { state: client.randomState(), codeVerifier: client.randomPKCECodeVerifier(), ...(idp.kind === 'oidc' ? { nonce: client.randomNonce() } : {}) };
        const params: Record<string, string> = {
          redirect_uri: redirectUri,
          response_type: 'code',
          state: checks.state,
          code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
          code_challenge_method: 'S256',
          ...(idp.scope ? { scope: idp.scope } : {}),
          ...(checks.nonce ? { nonce: checks.nonce } : {}),
        };
        return { url: client.buildAuthorizationUrl(config, params), checks };
      } catch (error) {
        throw classifyUpstreamError(error);
      }
    },

    /**
     * The upstream's answer at our callback (`query`), checked and redeemed: who signed in. The
     * state is compared first, so an answer that was not for this browser's request is refused
     * before anything else is read from it.
     */
    async complete(idp: ResolvedIdp, secret: string, redirectUri: string, query: URLSearchParams, checks: FlowChecks): Promise<UpstreamIdentity> {
      if (query.get('state') !== checks.state) throw new UpstreamFailure('state_mismatch', 'the state does not match the sign-in this browser started');
      const error = query.get('error');
      if (error) throw new UpstreamFailure(error === 'access_denied' ? 'refused_upstream' : 'upstream_error', `the upstream answered ${error.slice(0, 64)}`);
      try {
        const config = await configuration(idp, secret);
        const client = await loadOpenIdClient();
        const currentUrl = new URL(redirectUri);
        currentUrl.search = query.toString();
        const tokens = await client.authorizationCodeGrant(config, currentUrl, {
          expectedState: checks.state,
          pkceCodeVerifier: checks.codeVerifier,
          ...(checks.nonce ? { expectedNonce: checks.nonce, idTokenExpected: true } : {}),
        });
        if (idp.kind === 'oidc') {
          const idClaims = tokens.claims() as Record<string, unknown> | undefined;
          if (!idClaims) throw new UpstreamFailure('invalid_id_token', 'the upstream returned no ID token');
          const needsUserinfo = [idp.claims.email, idp.claims.name].some((claim) => idClaims[claim] === undefined) && !!config.serverMetadata().userinfo_endpoint;
          const userinfo = needsUserinfo ? ((await client.fetchUserInfo(config, tokens.access_token, idClaims.sub as string)) as Record<string, unknown>) : {};
          return mapClaims(idp, { ...userinfo, ...idClaims });
        }
        const user = await readJson(config, tokens.access_token, idp.userinfoEndpoint as string);
        if (!user || typeof user !== 'object' || Array.isArray(user)) throw new UpstreamFailure('invalid_response', 'the user endpoint did not answer an object');
        const email = idp.preset === 'github' && idp.emailsEndpoint ? githubEmail(await readJson(config, tokens.access_token, idp.emailsEndpoint)) : undefined;
        return mapClaims(idp, user as Record<string, unknown>, email);
      } catch (error) {
        throw classifyUpstreamError(error);
      }
    },
  };
}

export type Upstreams = ReturnType<typeof createUpstreams>;
