// The steps of an authorization code flow over plain HTTP, for tests that need to know every
// credential that passed by (to look for it where it must not be: logs, the audit trail), and
// the requests an app makes at the token endpoint and its neighbours.
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { Browser, completeSignIn, signOut, submitPassword } from './browser.js';
import { WEB_APP, type ConfidentialClient, type Person } from './fixtures.js';

/** A Browser that sends its own user agent and remembers every cookie value it was given. */
export class RecordingBrowser extends Browser {
  readonly cookieValues = new Set<string>();

  constructor(
    origin: string,
    readonly userAgent: string,
  ) {
    super(origin, { 'user-agent': userAgent });
  }

  override async request(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    const response = await super.request(url, init);
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value) this.cookieValues.add(value);
    }
    return response;
  }
}

/** What the code flow needs of a confidential client. */
type AppClient = Pick<ConfidentialClient, 'id' | 'secret' | 'redirectUri'>;

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
  error?: string;
  error_description?: string;
}

/** Basic client authentication, the id and secret form-encoded first (RFC 6749 2.3.1). */
export const basicAuth = (client: { id: string; secret: string }) => `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;

/** A form POST, as apps send to the token endpoint and its neighbours. */
export const postForm = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });

/** An authorization request's path for `client` (code flow, scope openid email, state xyz); `params` add or replace. */
export const authorizePath = (params: Record<string, string> = {}, client: Pick<ConfidentialClient, 'id' | 'redirectUri'> = WEB_APP) =>
  `/authorize?${new URLSearchParams({ client_id: client.id, response_type: 'code', scope: 'openid email', redirect_uri: client.redirectUri, state: 'xyz', ...params })}`;

/** A PKCE verifier and an authorization URL carrying its challenge, a state and a nonce; `params` add or replace (undefined: leave out). */
export function authorizationUrl(issuer: string, client: Pick<ConfidentialClient, 'id' | 'redirectUri'>, params: Record<string, string | undefined> = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const query: Record<string, string | undefined> = {
    client_id: client.id,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope: 'openid email offline_access',
    prompt: 'consent',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...params,
  };
  const url = new URL(`${issuer}/authorize`);
  url.search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined)).toString();
  return { url, verifier };
}

/** Opens an authorization request in `browser`: the page it lands on, and the verifier to redeem its code with. */
export async function startAuthorization(browser: Browser, issuer: string, client: Pick<ConfidentialClient, 'id' | 'redirectUri'>, scope = 'openid email offline_access') {
  const { url, verifier } = authorizationUrl(issuer, client, { scope });
  return { page: await browser.visit(url.href), verifier };
}

export async function tokenRequest(issuer: string, client: { id: string; secret: string }, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await postForm(`${issuer}/token`, form, { authorization: basicAuth(client), ...headers });
  return { status: response.status, body: (await response.json()) as TokenResponse };
}

/** Redeems an authorization code as the app that asked for it. */
export const redeemCode = (issuer: string, client: AppClient, code: string, verifier: string, headers: Record<string, string> = {}) =>
  tokenRequest(issuer, client, { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }, headers);

/** A refresh as the app makes it. */
export const refreshTokens = (issuer: string, client: { id: string; secret: string }, refreshToken: string, headers: Record<string, string> = {}) =>
  tokenRequest(issuer, client, { grant_type: 'refresh_token', refresh_token: refreshToken }, headers);

/** Signs `person` in through every page in `browser` and returns the code the app was sent, with its verifier. */
export async function signInForCode(browser: Browser, issuer: string, client: AppClient, person: Person, scope?: string) {
  const { page, verifier } = await startAuthorization(browser, issuer, client, scope);
  const callback = await completeSignIn(browser, page, person);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code in ${callback.href}`);
  return { code, verifier, callback };
}

/** A whole code flow: sign-in and consent pages in `browser`, then the code redeemed; the token response. */
export async function signInForTokens(browser: Browser, issuer: string, client: AppClient, person: Person, scope?: string) {
  const { code, verifier } = await signInForCode(browser, issuer, client, person, scope);
  return redeemCode(issuer, client, code, verifier);
}

/**
 * The flow the tests that look for credentials drive: an authorization in `browser`, first a
 * wrong password when one is given (refused with 401), then the right one and consent; the code
 * redeemed and the refresh token used once, both answered 200, sent with `clientAgent` (the
 * browser's user agent unless given). Returns every credential that passed by.
 */
export async function signInAndRefresh(browser: RecordingBrowser, issuer: string, client: ConfidentialClient, person: Person, options: { wrongPassword?: string; clientAgent?: string } = {}) {
  const { page, verifier } = await startAuthorization(browser, issuer, client);
  let signInPage = page;
  if (options.wrongPassword !== undefined) {
    signInPage = await submitPassword(browser, page, { email: person.email, password: options.wrongPassword });
    expect(signInPage.status).toBe(401);
  }
  const code = (await completeSignIn(browser, signInPage, person)).searchParams.get('code') as string;
  expect(code).toBeTruthy();
  const agent = { 'user-agent': options.clientAgent ?? browser.userAgent };
  const issued = await redeemCode(issuer, client, code, verifier, agent);
  expect(issued.status).toBe(200);
  const refreshed = await refreshTokens(issuer, client, issued.body.refresh_token as string, agent);
  expect(refreshed.status).toBe(200);
  return { code, verifier, issued: issued.body, refreshed: refreshed.body };
}

export async function revokeToken(issuer: string, client: { id: string; secret: string }, token: string, headers: Record<string, string> = {}) {
  return (await postForm(`${issuer}/token/revocation`, { token }, { authorization: basicAuth(client), ...headers })).status;
}

/** RP-initiated logout: the confirmation page, then "sign out". Returns where the browser was sent. */
export async function logout(browser: Browser, issuer: string, client: ConfidentialClient, idToken: string) {
  const url = new URL(`${issuer}/logout`);
  url.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: client.postLogoutRedirectUri, client_id: client.id }).toString();
  return (await signOut(browser, url.href)).redirectedTo;
}
