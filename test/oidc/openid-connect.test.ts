// OpenID Connect Core, Discovery and RP-Initiated Logout behaviour a certification-style
// checker looks for, driven over real HTTP with openid-client as the relying party.
import { createHash } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, completeSignIn, findForm, submitForm } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, APP, credentialsOf, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { discover } from '../helpers/relying-party.js';

/** Where both apps ask to be sent after logout: a URI with a query of its own, which must be kept. */
const SIGNED_OUT = `${APP}/bye?from=gatehouse`;
/** The web app's twin that authenticates with client_secret_post. */
const POST_CLIENT = credentialsOf('rp-post');

describe.each(await flavours())('OpenID Connect behaviour on %s', (flavour) => {
  let server: TestGatehouse;
  let config: oidc.Configuration;
  let aliceId: string;

  beforeAll(async () => {
    // OpenID Connect Core requires POST at the authorization endpoint; on an http issuer it is
    // off by default (see AUTHORIZATION_POST), so this suite turns it on.
    const clients = [
      webApp({ post_logout_redirect_uris: [SIGNED_OUT] }),
      webApp({ client_id: POST_CLIENT.id, client_secret: POST_CLIENT.secret, token_endpoint_auth_method: 'client_secret_post', post_logout_redirect_uris: [SIGNED_OUT] }),
    ];
    server = await startTestGatehouse(flavour, { env: { AUTHORIZATION_POST: 'true' }, clients, people: [ALICE] });
    aliceId = server.idOf(ALICE);
    config = await discover(server.issuer, WEB_APP);
  });
  afterAll(async () => server?.close());

  function authorizeUrl(params: Record<string, string>, cfg = config) {
    return oidc.buildAuthorizationUrl(cfg, { redirect_uri: WEB_APP.redirectUri, scope: 'openid', state: 'st', ...params });
  }

  const complete = (browser: Browser, page: Awaited<ReturnType<Browser['visit']>>) => completeSignIn(browser, page, ALICE);

  const exchange = (callback: URL, cfg = config, checks: { expectedNonce?: string; maxAge?: number } = {}) =>
    oidc.authorizationCodeGrant(cfg, callback, { expectedState: 'st', ...checks });

  it('publishes complete, truthful discovery metadata', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(server.issuer);
    const path = (url?: string) => (url ? new URL(url).pathname : undefined);
    expect(path(metadata.authorization_endpoint)).toBe('/authorize');
    expect(path(metadata.token_endpoint)).toBe('/token');
    expect(path(metadata.userinfo_endpoint)).toBe('/userinfo');
    expect(path(metadata.jwks_uri)).toBe('/jwks');
    expect(path(metadata.end_session_endpoint)).toBe('/logout');
    expect(metadata.response_types_supported).toContain('code');
    expect(metadata.subject_types_supported).toEqual(['public', 'pairwise']);
    expect(metadata.id_token_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS256', 'ES256']));
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));
    expect(metadata.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'email_verified', 'name', 'updated_at']));
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
  });

  it('publishes only public keys, each with a unique kid', async () => {
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;
    const kids = jwks.keys.map((k) => k.kid);
    expect(new Set(kids).size).toBe(kids.length);
    for (const key of jwks.keys) {
      expect(key.use).toBe('sig');
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(secret);
    }
  });

  it('signs in with the authorization request sent as a POST form', async () => {
    const browser = new Browser(server.issuer);
    const params = Object.fromEntries(authorizeUrl({ nonce: 'n-post' }).searchParams);
    const page = await browser.visit('/authorize', { form: params });
    expect(page.html).toContain('/login"');
    const tokens = await exchange(await complete(browser, page), config, { expectedNonce: 'n-post' });
    expect(tokens.claims()?.sub).toBe(aliceId);
  });

  it('makes the session cookie SameSite=None so it travels with cross-site POSTs', async () => {
    const browser = new Browser(server.issuer);
    const login = findForm((await browser.visit(authorizeUrl({}).href)).html, '/login');
    const signedIn = await browser.request(login.action, { form: { ...login.fields, email: ALICE.email, password: ALICE.password } });
    const resumed = await browser.request(signedIn.headers.get('location') as string);
    const session = resumed.headers.getSetCookie().find((c) => c.startsWith('_session='));
    expect(session).toMatch(/samesite=none/i);
  });

  it('echoes the nonce, works without one in the code flow, and ignores unknown parameters', async () => {
    const browser = new Browser(server.issuer);
    const first = await exchange(await complete(browser, await browser.visit(authorizeUrl({ nonce: 'abc' }).href)), config, { expectedNonce: 'abc' });
    expect(first.claims()?.nonce).toBe('abc');
    const second = await exchange(await complete(browser, await browser.visit(authorizeUrl({ extra_thing: 'whatever' }).href)));
    expect(second.claims()?.nonce).toBeUndefined();
  });

  it('serves userinfo for a bearer token in the header or the POST body, and refuses a bad token', async () => {
    const browser = new Browser(server.issuer);
    const tokens = await exchange(await complete(browser, await browser.visit(authorizeUrl({ scope: 'openid email profile' }).href)));
    const viaHeader = await fetch(`${server.url}/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(await viaHeader.json()).toMatchObject({ sub: aliceId, email: ALICE.email, name: ALICE.name });
    const viaBody = await fetch(`${server.url}/userinfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: tokens.access_token }),
    });
    expect(await viaBody.json()).toMatchObject({ sub: aliceId });
    const bad = await fetch(`${server.url}/userinfo`, { headers: { authorization: 'Bearer not-a-token' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
  });

  it('releases only the claims of the granted scopes, and honours the claims parameter', async () => {
    const browser = new Browser(server.issuer);
    const tokens = await exchange(await complete(browser, await browser.visit(authorizeUrl({}).href)));
    const bare = await oidc.fetchUserInfo(config, tokens.access_token, aliceId);
    expect(Object.keys(bare)).toEqual(['sub']);

    const claims = JSON.stringify({ userinfo: { email: { essential: true } }, id_token: { name: null } });
    const withClaims = await exchange(await complete(browser, await browser.visit(authorizeUrl({ claims }).href)));
    expect(withClaims.claims()?.name).toBe(ALICE.name);
    const info = await oidc.fetchUserInfo(config, withClaims.access_token, aliceId);
    expect(info.email).toBe(ALICE.email);
    expect(info.name).toBeUndefined();
  });

  it('asks for the password again with prompt=login, and sends a silent request straight back with prompt=none', async () => {
    const browser = new Browser(server.issuer);
    await complete(browser, await browser.visit(authorizeUrl({}).href));
    const forced = await browser.visit(authorizeUrl({ prompt: 'login' }).href);
    expect(forced.html).toContain('/login"');
    await complete(browser, forced);
    const silent = await browser.visit(authorizeUrl({ prompt: 'none' }).href);
    expect(silent.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  it('reports consent_required for prompt=none when consent is missing', async () => {
    const fresh = await discover(server.issuer, POST_CLIENT, oidc.ClientSecretPost(POST_CLIENT.secret));
    const browser = new Browser(server.issuer);
    await complete(browser, await browser.visit(authorizeUrl({}).href));
    const silent = await browser.visit(authorizeUrl({ prompt: 'none', scope: 'openid email' }, fresh).href);
    expect(silent.redirectedTo?.searchParams.get('error')).toBe('consent_required');
  });

  it('forces a new sign-in when max_age has passed and reports auth_time', async () => {
    const browser = new Browser(server.issuer);
    const first = await exchange(await complete(browser, await browser.visit(authorizeUrl({ max_age: '1' }).href)), config, { maxAge: 1 });
    expect(typeof first.claims()?.auth_time).toBe('number');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const again = await browser.visit(authorizeUrl({ max_age: '1' }).href);
    expect(again.html).toContain('/login"');
  });

  it('accepts ui_locales and renders the sign-in page in the first language it has', async () => {
    const page = await new Browser(server.issuer).visit(authorizeUrl({ ui_locales: 'tlh fr-CA en-GB' }).href);
    expect(page.status).toBe(200);
    expect(page.html).toContain('<html lang="en">');
  });

  it('answers response_mode=form_post with a self-submitting form the page CSP allows', async () => {
    const browser = new Browser(server.issuer);
    await complete(browser, await browser.visit(authorizeUrl({}).href));
    const response = await browser.request(authorizeUrl({ response_mode: 'form_post' }).href);
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(html).toContain(`action="${WEB_APP.redirectUri}"`);
    expect(html).toMatch(/name="code" value="[\w-]+"/);
    const csp = response.headers.get('content-security-policy') ?? '';
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const hash = createHash('sha256').update(script).digest('base64');
    expect(csp).toContain(`'sha256-${hash}'`);
  });

  it('prefills the email from login_hint', async () => {
    const page = await new Browser(server.issuer).visit(authorizeUrl({ login_hint: 'hint@example.com' }).href);
    expect(page.html).toContain('value="hint@example.com"');
  });

  it('accepts an id_token_hint for the signed-in person with prompt=none', async () => {
    const browser = new Browser(server.issuer);
    const tokens = await exchange(await complete(browser, await browser.visit(authorizeUrl({}).href)));
    const silent = await browser.visit(authorizeUrl({ prompt: 'none', id_token_hint: tokens.id_token as string }).href);
    expect(silent.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  it('refuses an unsigned request object (only signed ones are accepted, RFC 9101)', async () => {
    const page = await new Browser(server.issuer).visit(authorizeUrl({ request: 'eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InN0In0.' }).href);
    expect(page.redirectedTo?.searchParams.get('error')).toBe('invalid_request_object');
  });

  it('authenticates a client_secret_post client', async () => {
    const postConfig = await discover(server.issuer, POST_CLIENT, oidc.ClientSecretPost(POST_CLIENT.secret));
    const browser = new Browser(server.issuer);
    const tokens = await exchange(await complete(browser, await browser.visit(authorizeUrl({}, postConfig).href)), postConfig);
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(tokens.id_token as string, createLocalJWKSet(jwks), { issuer: server.issuer, audience: POST_CLIENT.id });
    expect(payload.sub).toBe(aliceId);
  });

  describe('RP-initiated logout', () => {
    async function signedIn() {
      const browser = new Browser(server.issuer);
      const tokens = await exchange(await complete(browser, await browser.visit(authorizeUrl({}).href)));
      return { browser, idToken: tokens.id_token as string };
    }

    async function confirmLogout(browser: Browser, url: string) {
      const page = await browser.visit(url);
      expect(page.status).toBe(200);
      return submitForm(browser, page, '/logout', { logout: 'yes' });
    }

    it('returns to a registered post_logout_redirect_uri, keeping its query and adding state', async () => {
      const { browser, idToken } = await signedIn();
      const url = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state: 's1' });
      const done = await confirmLogout(browser, url.href);
      expect(done.redirectedTo?.href).toBe(`${SIGNED_OUT}&state=s1`);
    });

    it('accepts client_id instead of id_token_hint', async () => {
      const { browser } = await signedIn();
      const url = new URL(`${server.url}/logout`);
      url.search = new URLSearchParams({ client_id: WEB_APP.id, post_logout_redirect_uri: SIGNED_OUT }).toString();
      const done = await confirmLogout(browser, url.href);
      expect(done.redirectedTo?.origin).toBe(APP);
    });

    it('shows the signed-out page when no post_logout_redirect_uri is given, and the session is over', async () => {
      const { browser } = await signedIn();
      const done = await confirmLogout(browser, `${server.url}/logout`);
      expect(done.redirectedTo).toBeUndefined();
      expect(done.html).toContain('You are signed out');
      const silent = await browser.visit(authorizeUrl({ prompt: 'none' }).href);
      expect(silent.redirectedTo?.searchParams.get('error')).toBe('login_required');
    });

    it('never redirects to an unregistered post_logout_redirect_uri', async () => {
      const { browser, idToken } = await signedIn();
      const url = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.test/' });
      const page = await browser.visit(url.href);
      expect(page.redirectedTo).toBeUndefined();
      expect(page.status).toBe(400);
      expect(page.html).toContain('post_logout_redirect_uri');
    });

    it('rejects a forged id_token_hint', async () => {
      const { browser } = await signedIn();
      const page = await browser.visit(`${server.url}/logout?id_token_hint=not.a.jwt`);
      expect(page.status).toBe(400);
      expect(page.redirectedTo).toBeUndefined();
    });

    it('keeps the session when the person chooses to stay signed in', async () => {
      const { browser } = await signedIn();
      await submitForm(browser, await browser.visit(`${server.url}/logout`), '/logout');
      const silent = await browser.visit(authorizeUrl({ prompt: 'none' }).href);
      expect(silent.redirectedTo?.searchParams.get('code')).toBeTruthy();
    });
  });
});
