// What people and apps see when they get something wrong: a clear error, the right status or
// OAuth error code, never a stack trace, and never a redirect to an address we do not trust.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm } from '../helpers/browser.js';
import { authorizePath, basicAuth, postForm } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

function expectNoInternals(html: string) {
  expect(html).not.toMatch(/\s+at \S+ \(.*:\d+:\d+\)/);
  expect(html).not.toMatch(/node_modules|\.ts:\d+/);
}

describe.each(await flavours())('bad input on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour, { clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  async function loginPage(browser = new Browser(server.issuer)) {
    const page = await browser.visit(authorizePath());
    expect(page.status).toBe(200);
    return { browser, page, form: findForm(page.html, '/login') };
  }

  describe('the sign-in form', () => {
    it('gives a wrong password and an unknown email the same message and status', async () => {
      const { browser, form } = await loginPage();
      const wrongPassword = await browser.visit(form.action, { form: { ...form.fields, email: ALICE.email, password: 'nope nope nope' } });
      const unknownEmail = await browser.visit(form.action, { form: { ...form.fields, email: 'nobody@example.com', password: 'nope nope nope' } });
      expect(wrongPassword.status).toBe(401);
      expect(unknownEmail.status).toBe(401);
      const message = (html: string) => /<p class="alert"[^>]*>([^<]*)<\/p>/.exec(html)?.[1];
      expect(message(wrongPassword.html)).toBe('Incorrect email or password.');
      expect(message(unknownEmail.html)).toBe(message(wrongPassword.html));
      // The email typed is kept so the person need not type it again; the password is not.
      expect(unknownEmail.html).toContain('value="nobody@example.com"');
      expect(unknownEmail.html).not.toContain('nope nope nope');
    });

    it('accepts the email in any letter case', async () => {
      const { browser, form } = await loginPage();
      const next = await browser.visit(form.action, { form: { ...form.fields, email: ALICE.email.toUpperCase(), password: ALICE.password } });
      expect(next.status).toBe(200);
      expect(next.html).toContain('/confirm');
    });

    it.each([
      [{ password: ALICE.password }, 'Enter your email address.'],
      [{ email: ALICE.email }, 'Enter your password.'],
      [{ email: '   ', password: ALICE.password }, 'Enter your email address.'],
      [{ email: `${'a'.repeat(400)}@example.com`, password: 'x' }, 'That email address is too long.'],
    ])('asks again, with a message, when fields are missing or too long (%#)', async (fields, message) => {
      const { browser, form } = await loginPage();
      const page = await browser.visit(form.action, { form: { csrf_token: form.fields.csrf_token ?? '', ...(fields as Record<string, string>) } });
      expect(page.status).toBe(400);
      expect(page.html).toContain(message);
      expect(page.html).toContain('aria-invalid="true"');
    });

    it('refuses a form posted for another interaction than the browser is in', async () => {
      const first = await loginPage();
      const second = await loginPage();
      // Browser 1 posts to browser 2's interaction: its cookie does not match that uid.
      const page = await first.browser.visit(second.form.action, { form: { ...second.form.fields, email: ALICE.email, password: ALICE.password } });
      expect(page.status).toBe(400);
      expect(page.html).toContain('start signing in again');
      expectNoInternals(page.html);
    });

    it('explains an expired or foreign sign-in page instead of failing', async () => {
      const { form } = await loginPage();
      const stranger = new Browser(server.issuer);
      const page = await stranger.visit(form.action, { form: { ...form.fields, email: ALICE.email, password: ALICE.password } });
      expect(page.status).toBe(400);
      expect(page.html).toContain('has expired or was opened in another browser');
      expectNoInternals(page.html);
      const json = await stranger.request(form.action, { form: { email: ALICE.email }, headers: { accept: 'application/json' } });
      expect(json.status).toBe(400);
      expect(await json.json()).toMatchObject({ error: 'session_not_found' });
    });

    it('refuses the consent step before sign-in', async () => {
      const { browser, page } = await loginPage();
      const uid = /\/interaction\/([\w-]+)$/.exec(page.url)?.[1];
      const response = await browser.visit(`/interaction/${uid}/confirm`, { form: {} });
      expect(response.status).toBe(400);
      expect(response.html).toContain('not expected');
    });

    it('rejects an oversized form body with 413', async () => {
      const { browser, form } = await loginPage();
      const response = await browser.request(form.action, { form: { email: ALICE.email, password: 'p'.repeat(40_000) } });
      expect(response.status).toBe(413);
      expectNoInternals(await response.text());
    });
  });

  describe('the authorization endpoint', () => {
    it('shows an error page for an unknown client', async () => {
      const page = await new Browser(server.issuer).visit(authorizePath({ client_id: 'who-is-this' }));
      expect(page.redirectedTo).toBeUndefined();
      expect(page.status).toBe(400);
      expect(page.html).toContain('invalid_client');
      expectNoInternals(page.html);
    });

    it('never redirects to an unregistered redirect_uri', async () => {
      const page = await new Browser(server.issuer).visit(authorizePath({ redirect_uri: 'https://evil.test/steal' }));
      expect(page.redirectedTo).toBeUndefined();
      expect(page.status).toBe(400);
      expect(page.html).toContain('invalid_redirect_uri');
      expect(page.html).toContain('has not registered');
      expectNoInternals(page.html);
    });

    it('rejects a redirect_uri that only starts like a registered one (exact matching)', async () => {
      const page = await new Browser(server.issuer).visit(authorizePath({ redirect_uri: `${WEB_APP.redirectUri}/../other` }));
      expect(page.redirectedTo).toBeUndefined();
      expect(page.status).toBe(400);
    });

    it('reports an unsupported response_type to the app', async () => {
      const page = await new Browser(server.issuer).visit(authorizePath({ response_type: 'token' }));
      expect(page.redirectedTo?.hash ?? page.html).toMatch(/error=unsupported_response_type/);
    });

    it('refuses implicit and hybrid flows to a client not registered for them', async () => {
      const page = await new Browser(server.issuer).visit(authorizePath({ response_type: 'code id_token', nonce: 'n' }));
      const response = new URLSearchParams(page.redirectedTo?.hash.slice(1));
      expect(response.get('error')).toBe('invalid_request');
      expect(response.get('error_description')).toBe('requested response_type is not allowed for this client');
    });

    it('answers 405 to a POSTed authorization request while AUTHORIZATION_POST is off (http issuer default)', async () => {
      const browser = new Browser(server.issuer);
      const params = Object.fromEntries(new URL(authorizePath(), server.issuer).searchParams);
      const response = await browser.request('/authorize', { form: params, headers: { accept: 'application/json' } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET');
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('keeps the session cookie SameSite=Lax while AUTHORIZATION_POST is off', async () => {
      const browser = new Browser(server.issuer);
      const login = findForm((await browser.visit(authorizePath())).html, '/login');
      const signedIn = await browser.request(login.action, { form: { ...login.fields, email: ALICE.email, password: ALICE.password } });
      const resumed = await browser.request(signedIn.headers.get('location') as string);
      const session = resumed.headers.getSetCookie().find((c) => c.startsWith('_session='));
      expect(session).toMatch(/samesite=lax/i);
      expect(session).toMatch(/httponly/i);
    });
  });

  describe('the token endpoint', () => {
    const post = (body: Record<string, string>, client: { id: string; secret: string }) => postForm(`${server.issuer}/token`, body, { authorization: basicAuth(client) });

    it('rejects a wrong client secret with 401 invalid_client and no-store', async () => {
      const response = await post({ grant_type: 'authorization_code', code: 'x', redirect_uri: WEB_APP.redirectUri }, { ...WEB_APP, secret: 'wrong-secret' });
      expect(response.status).toBe(401);
      expect(response.headers.get('cache-control')).toContain('no-store');
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    });

    it('rejects an unknown client with invalid_client', async () => {
      const response = await post({ grant_type: 'authorization_code', code: 'x' }, { id: 'nobody', secret: 'whatever-secret' });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    });

    it('rejects an unknown code with invalid_grant', async () => {
      const response = await post({ grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: WEB_APP.redirectUri }, WEB_APP);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
    });
  });

  it('answers unknown paths with 404, as JSON or a page', async () => {
    const json = await fetch(`${server.issuer}/nope`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(404);
    expect(await json.json()).toMatchObject({ error: 'not_found' });
    const page = await new Browser(server.issuer).visit('/nope');
    expect(page.status).toBe(404);
    expect(page.html).toContain('<html lang="en">');
  });
});
