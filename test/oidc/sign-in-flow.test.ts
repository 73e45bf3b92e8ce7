// An independent relying party (openid-client v6) signs people in through a running
// Gatehouse, on SQLite and on PostgreSQL, exactly as a real app would.
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const APP = 'http://app.test';
const CONFIDENTIAL = { id: 'web-app', secret: 'web-app-secret-0123456789-0123456789-abcdef' };
const PUBLIC = { id: 'spa-app' };
const ALICE = { email: 'alice@example.com', password: 'correct horse battery staple' };

describe.each(await flavours())('sign-in flows on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    await server.addClient({
      client_id: CONFIDENTIAL.id,
      client_secret: CONFIDENTIAL.secret,
      client_name: 'Web App',
      redirect_uris: [`${APP}/callback`],
      post_logout_redirect_uris: [`${APP}/signed-out`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email offline_access',
    });
    await server.addClient({
      client_id: PUBLIC.id,
      client_name: 'Single Page App',
      redirect_uris: [`${APP}/spa/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    aliceId = await server.addUser({ ...ALICE, name: 'Alice Liddell' });
  });
  afterAll(async () => server?.close());

  const discover = (clientId: string, secret?: string) =>
    oidc.discovery(new URL(server.issuer), clientId, secret, secret ? oidc.ClientSecretBasic(secret) : oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });

  async function startAuthorization(config: oidc.Configuration, params: Record<string, string>) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...params,
    });
    return { url, verifier, state, nonce };
  }

  async function signIn(browser: Browser, loginPage: { html: string }, credentials = ALICE) {
    const login = findForm(loginPage.html, '/login');
    return browser.visit(login.action, { form: { ...login.fields, email: credentials.email, password: credentials.password } });
  }

  it('signs a person in to a confidential client: PKCE, consent, tokens, userinfo, refresh, logout', async () => {
    const config = await discover(CONFIDENTIAL.id, CONFIDENTIAL.secret);
    expect(config.serverMetadata().issuer).toBe(server.issuer);
    const browser = new Browser(server.issuer);
    const auth = await startAuthorization(config, {
      redirect_uri: `${APP}/callback`,
      scope: 'openid profile email offline_access',
      prompt: 'consent',
    });

    const loginPage = await browser.visit(auth.url.href);
    expect(loginPage.status).toBe(200);
    expect(loginPage.url).toMatch(/\/interaction\/[\w-]+$/);
    expect(loginPage.html).toContain('Web App');
    expect(loginPage.html).toMatch(/<label for="email">/);
    expect(loginPage.html).toMatch(/type="password"/);

    const wrong = await signIn(browser, loginPage, { ...ALICE, password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('Incorrect email or password.');

    const consentPage = await signIn(browser, wrong);
    expect(consentPage.status).toBe(200);
    expect(consentPage.html).toContain('See your email address');
    expect(consentPage.html).toContain('Stay connected');

    const confirm = findForm(consentPage.html, '/confirm');
    const back = await browser.visit(confirm.action, { form: confirm.fields });
    expect(back.redirectedTo?.origin).toBe(APP);
    const callback = back.redirectedTo as URL;
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
    expect(callback.searchParams.get('state')).toBe(auth.state);

    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: auth.verifier,
      expectedState: auth.state,
      expectedNonce: auth.nonce,
    });
    const claims = tokens.claims();
    expect(claims?.sub).toBe(aliceId);
    expect(claims?.sub).not.toContain('@');
    expect(tokens.refresh_token).toBeTruthy();

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, aliceId);
    expect(userinfo).toMatchObject({ sub: aliceId, email: ALICE.email, email_verified: true, name: 'Alice Liddell' });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()?.sub).toBe(aliceId);

    const endSession = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token as string,
      post_logout_redirect_uri: `${APP}/signed-out`,
      state: 'bye',
    });
    const logoutPage = await browser.visit(endSession.href);
    expect(logoutPage.status).toBe(200);
    expect(logoutPage.html).toContain('Sign out');
    const logout = findForm(logoutPage.html, '/logout');
    const signedOut = await browser.visit(logout.action, { form: { ...logout.fields, logout: 'yes' } });
    expect(signedOut.redirectedTo?.href).toBe(`${APP}/signed-out?state=bye`);

    // The session is over: a silent authorization now needs a sign-in.
    const silent = await startAuthorization(config, { redirect_uri: `${APP}/callback`, scope: 'openid', prompt: 'none' });
    const refused = await browser.visit(silent.url.href);
    expect(refused.redirectedTo?.searchParams.get('error')).toBe('login_required');
  });

  it('signs a person in to a public client, requiring PKCE, and remembers consent', async () => {
    const config = await discover(PUBLIC.id);
    const browser = new Browser(server.issuer);

    const withoutPkce = new URL(`${server.issuer}/authorize`);
    withoutPkce.search = new URLSearchParams({ client_id: PUBLIC.id, response_type: 'code', scope: 'openid', redirect_uri: `${APP}/spa/callback`, state: 's' }).toString();
    const refused = await browser.visit(withoutPkce.href);
    expect(refused.redirectedTo?.searchParams.get('error')).toBe('invalid_request');
    expect(refused.redirectedTo?.searchParams.get('error_description')).toMatch(/PKCE/);

    const auth = await startAuthorization(config, { redirect_uri: `${APP}/spa/callback`, scope: 'openid email' });
    const consentPage = await signIn(browser, await browser.visit(auth.url.href));
    const confirm = findForm(consentPage.html, '/confirm');
    const back = await browser.visit(confirm.action, { form: confirm.fields });
    const tokens = await oidc.authorizationCodeGrant(config, back.redirectedTo as URL, {
      pkceCodeVerifier: auth.verifier,
      expectedState: auth.state,
      expectedNonce: auth.nonce,
    });
    expect(tokens.claims()?.sub).toBe(aliceId);
    expect(tokens.refresh_token).toBeUndefined();

    // Same session, same scopes: straight back to the app, no pages.
    const again = await startAuthorization(config, { redirect_uri: `${APP}/spa/callback`, scope: 'openid email' });
    const direct = await browser.visit(again.url.href);
    expect(direct.redirectedTo?.searchParams.get('code')).toBeTruthy();

    // A new session (another browser): sign in again, but consent is remembered in the grant.
    const other = new Browser(server.issuer);
    const third = await startAuthorization(config, { redirect_uri: `${APP}/spa/callback`, scope: 'openid email' });
    const afterLogin = await signIn(other, await other.visit(third.url.href));
    expect(afterLogin.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  async function issueCode(browser = new Browser(server.issuer)) {
    const config = await discover(CONFIDENTIAL.id, CONFIDENTIAL.secret);
    const auth = await startAuthorization(config, { redirect_uri: `${APP}/callback`, scope: 'openid email offline_access', prompt: 'consent' });
    let page = await signIn(browser, await browser.visit(auth.url.href));
    if (!page.redirectedTo) {
      const confirm = findForm(page.html, '/confirm');
      page = await browser.visit(confirm.action, { form: confirm.fields });
    }
    return { config, auth, callback: page.redirectedTo as URL };
  }

  const redeem = ({ config, auth, callback }: Awaited<ReturnType<typeof issueCode>>) =>
    oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce });

  it('refuses a replayed code and revokes what the first redemption issued', async () => {
    const issued = await issueCode();
    const first = await redeem(issued);
    await expect(redeem(issued)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(issued.config, first.access_token, aliceId)).rejects.toMatchObject({ status: 401 });
    await expect(oidc.refreshTokenGrant(issued.config, first.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('lets exactly one of two simultaneous redemptions of a code succeed', async () => {
    const issued = await issueCode();
    const results = await Promise.allSettled([redeem(issued), redeem(issued)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ error: 'invalid_grant' });
  });

  it('rotates refresh tokens and ends the grant when a rotated one is reused', async () => {
    const issued = await issueCode();
    const tokens = await redeem(issued);
    const rotated = await oidc.refreshTokenGrant(issued.config, tokens.refresh_token as string);
    await expect(oidc.refreshTokenGrant(issued.config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(issued.config, rotated.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('sends the app access_denied when the person cancels', async () => {
    const config = await discover(CONFIDENTIAL.id, CONFIDENTIAL.secret);
    const browser = new Browser(server.issuer);
    const auth = await startAuthorization(config, { redirect_uri: `${APP}/callback`, scope: 'openid' });
    const loginPage = await browser.visit(auth.url.href);
    const abort = findForm(loginPage.html, '/abort');
    const back = await browser.visit(abort.action, { form: abort.fields });
    expect(back.redirectedTo?.searchParams.get('error')).toBe('access_denied');
    expect(back.redirectedTo?.searchParams.get('state')).toBe(auth.state);
  });
});
