// The steps of an authorization code flow over plain HTTP, for tests that need to know every
// credential that passed by (to look for it where it must not be: logs, the audit trail).
import { createHash, randomBytes } from 'node:crypto';
import { Browser, findForm, type Page } from './browser.js';

/** A Browser that sends its own user agent and remembers every cookie value it was given. */
export class RecordingBrowser extends Browser {
  readonly cookieValues = new Set<string>();

  constructor(
    origin: string,
    readonly userAgent: string,
  ) {
    super(origin);
  }

  override async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const response = await super.request(url, { ...init, headers: { 'user-agent': this.userAgent, ...init.headers } });
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value) this.cookieValues.add(value);
    }
    return response;
  }
}

export interface ConfidentialClient {
  id: string;
  secret: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
}

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  error?: string;
}

export async function startAuthorization(browser: Browser, issuer: string, client: ConfidentialClient, scope = 'openid email offline_access') {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${issuer}/authorize`);
  url.search = new URLSearchParams({
    client_id: client.id,
    response_type: 'code',
    redirect_uri: client.redirectUri,
    scope,
    prompt: 'consent',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return { page: await browser.visit(url.href), verifier };
}

/** Submits the sign-in form once (for a wrong password: the page shown again). */
export async function submitPassword(browser: Browser, page: Page, credentials: { email: string; password: string }) {
  const login = findForm(page.html, '/login');
  return browser.visit(login.action, { form: { ...login.fields, ...credentials } });
}

export async function tokenRequest(issuer: string, client: { id: string; secret: string }, form: Record<string, string>, userAgent: string) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': userAgent,
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as TokenResponse };
}

export async function revokeToken(issuer: string, client: { id: string; secret: string }, token: string, userAgent: string) {
  const response = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': userAgent,
    },
    body: new URLSearchParams({ token }).toString(),
  });
  return response.status;
}

/** RP-initiated logout: the confirmation page, then "sign out". Returns where the browser was sent. */
export async function logout(browser: Browser, issuer: string, client: ConfidentialClient, idToken: string) {
  const url = new URL(`${issuer}/logout`);
  url.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: client.postLogoutRedirectUri, client_id: client.id }).toString();
  const page = await browser.visit(url.href);
  const form = findForm(page.html, '/logout');
  const done = await browser.visit(form.action, { form: { ...form.fields, logout: 'yes' } });
  return done.redirectedTo;
}
