// An independent relying party (openid-client v6) signs people in through a running
// Gatehouse, on SQLite and on PostgreSQL, exactly as a real app would.
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowAccess, Browser, completeSignIn, findForm, submitPassword } from '../helpers/browser.js';
import { authorizePath } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, APP, publicApp, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { authorizationRequest, discover, redeemCallback } from '../helpers/relying-party.js';

const SPA = { id: 'spa-app', redirectUri: `${APP}/spa-app/callback` };

describe.each(await flavours())('sign-in flows on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { clients: [webApp(), publicApp(SPA.id, { client_name: 'Single Page App' })], people: [ALICE] });
    aliceId = server.idOf(ALICE);
  });
  afterAll(async () => server?.close());

  it('signs a person in to a confidential client: PKCE, consent, tokens, userinfo, refresh, logout', async () => {
    const config = await discover(server.issuer, WEB_APP);
    expect(config.serverMetadata().issuer).toBe(server.issuer);
    const browser = new Browser(server.issuer);
    const auth = await authorizationRequest(config, {
      redirect_uri: WEB_APP.redirectUri,
      scope: 'openid profile email offline_access',
      prompt: 'consent',
    });

    const loginPage = await browser.visit(auth.url.href);
    expect(loginPage.status).toBe(200);
    expect(loginPage.url).toMatch(/\/interaction\/[\w-]+$/);
    expect(loginPage.html).toContain('Web App');
    expect(loginPage.html).toMatch(/<label for="email">/);
    expect(loginPage.html).toMatch(/type="password"/);

    const wrong = await submitPassword(browser, loginPage, { ...ALICE, password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('Incorrect email or password.');

    const consentPage = await submitPassword(browser, wrong, ALICE);
    expect(consentPage.status).toBe(200);
    expect(consentPage.html).toContain('See your email address');
    expect(consentPage.html).toContain('Stay connected');

    const back = await allowAccess(browser, consentPage);
    expect(back.redirectedTo?.origin).toBe(APP);
    const callback = back.redirectedTo as URL;
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
    expect(callback.searchParams.get('state')).toBe(auth.state);

    const tokens = await redeemCallback(config, callback, auth);
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
      post_logout_redirect_uri: WEB_APP.postLogoutRedirectUri,
      state: 'bye',
    });
    const logoutPage = await browser.visit(endSession.href);
    expect(logoutPage.status).toBe(200);
    expect(logoutPage.html).toContain('Sign out');
    const logout = findForm(logoutPage.html, '/logout');
    const signedOut = await browser.visit(logout.action, { form: { ...logout.fields, logout: 'yes' } });
    expect(signedOut.redirectedTo?.href).toBe(`${WEB_APP.postLogoutRedirectUri}?state=bye`);

    // The session is over: a silent authorization now needs a sign-in.
    const silent = await authorizationRequest(config, { redirect_uri: WEB_APP.redirectUri, scope: 'openid', prompt: 'none' });
    const refused = await browser.visit(silent.url.href);
    expect(refused.redirectedTo?.searchParams.get('error')).toBe('login_required');
  });

  it('signs a person in to a public client, requiring PKCE, and remembers consent', async () => {
    const config = await discover(server.issuer, SPA);
    const browser = new Browser(server.issuer);

    const refused = await browser.visit(authorizePath({ scope: 'openid', state: 's' }, SPA));
    expect(refused.redirectedTo?.searchParams.get('error')).toBe('invalid_request');
    expect(refused.redirectedTo?.searchParams.get('error_description')).toMatch(/PKCE/);

    const auth = await authorizationRequest(config, { redirect_uri: SPA.redirectUri, scope: 'openid email' });
    const consentPage = await submitPassword(browser, await browser.visit(auth.url.href), ALICE);
    const back = await allowAccess(browser, consentPage);
    const tokens = await redeemCallback(config, back.redirectedTo as URL, auth);
    expect(tokens.claims()?.sub).toBe(aliceId);
    expect(tokens.refresh_token).toBeUndefined();

    // Same session, same scopes: straight back to the app, no pages.
    const again = await authorizationRequest(config, { redirect_uri: SPA.redirectUri, scope: 'openid email' });
    const direct = await browser.visit(again.url.href);
    expect(direct.redirectedTo?.searchParams.get('code')).toBeTruthy();

    // A new session (another browser): sign in again, but consent is remembered in the grant.
    const other = new Browser(server.issuer);
    const third = await authorizationRequest(config, { redirect_uri: SPA.redirectUri, scope: 'openid email' });
    const afterLogin = await submitPassword(other, await other.visit(third.url.href), ALICE);
    expect(afterLogin.redirectedTo?.searchParams.get('code')).toBeTruthy();
  });

  async function issueCode(browser = new Browser(server.issuer)) {
    const config = await discover(server.issuer, WEB_APP);
    const auth = await authorizationRequest(config, { redirect_uri: WEB_APP.redirectUri, scope: 'openid email offline_access', prompt: 'consent' });
    const callback = await completeSignIn(browser, await browser.visit(auth.url.href), ALICE);
    return { config, auth, callback };
  }

  const redeem = ({ config, auth, callback }: Awaited<ReturnType<typeof issueCode>>) => redeemCallback(config, callback, auth);

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
    const config = await discover(server.issuer, WEB_APP);
    const browser = new Browser(server.issuer);
    const auth = await authorizationRequest(config, { redirect_uri: WEB_APP.redirectUri, scope: 'openid' });
    const loginPage = await browser.visit(auth.url.href);
    const abort = findForm(loginPage.html, '/abort');
    const back = await browser.visit(abort.action, { form: abort.fields });
    expect(back.redirectedTo?.searchParams.get('error')).toBe('access_denied');
    expect(back.redirectedTo?.searchParams.get('state')).toBe(auth.state);
  });
});
