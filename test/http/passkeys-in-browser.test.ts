// Passkeys in a real browser: Chromium (playwright-core) with a virtual authenticator (Chrome
// DevTools Protocol: WebAuthn.enable, WebAuthn.addVirtualAuthenticator, internal transport,
// resident keys, user verification) goes through the pages as a person would: adds a passkey
// on the account page, signs in with it from the button and from the email field's autofill,
// uses it as the second step for an app that requires MFA, removes its password and signs in
// with the passkey alone, sets a password again, and removes the passkey; accepts an invitation
// with a passkey instead of a password and lands signed in. axe-core checks the
// new pages. Gatehouse runs with ISSUER=http://localhost:PORT (WebAuthn refuses IP origins); the
// app's callback is a real server on 127.0.0.1 that records what it was sent.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { accountMailOf } from '../../src/http/mail-renderer.js';
import { ACR_MFA } from '../../src/oidc/provider.js';
import { inviteUser } from '../../src/people/invitations.js';
import { browserTestsRun, launchChromium, seriousViolations } from '../helpers/chromium.js';
import { authorizationUrl, redeemCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { secretFor, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { newestMailLink } from '../helpers/smtp.js';

/** The app's callback: records each URL it is sent to and says so. */
async function startCallbackServer() {
  const received: URL[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== '/favicon.ico') received.push(url);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title></head><body><main><h1 id="app">Back at the app</h1></main></body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.skipIf(!browserTestsRun).each(await flavours())('passkeys in a real browser (Chromium) on %s', (flavour) => {
  let server: TestGatehouse;
  let app: Awaited<ReturnType<typeof startCallbackServer>>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  let person: { id: string; email: string; password: string };
  const problems: string[] = [];
  const client = { id: 'passkey-app', secret: secretFor('passkey-app'), redirectUri: '' };
  const mfaClient = { id: 'passkey-mfa-app', secret: secretFor('passkey-mfa-app'), redirectUri: '' };

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { localhostIssuer: true, env: { SIGN_IN_DELAY_STEP_MS: '0' } });
    app = await startCallbackServer();
    client.redirectUri = `${app.origin}/callback`;
    mfaClient.redirectUri = `${app.origin}/mfa-callback`;
    await server.addClient(webApp({ client_id: client.id, client_secret: client.secret, client_name: 'Notebook', redirect_uris: [client.redirectUri] }));
    await server.addClient(webApp({ client_id: mfaClient.id, client_secret: mfaClient.secret, client_name: 'Vault', redirect_uris: [mfaClient.redirectUri], gatehouse_require_mfa: true }));
    person = await server.addPerson();
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    // A CSP violation, a script error or a failed asset fails the test; a page's own 4xx does not.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400 && response.request().resourceType() !== 'document' && response.request().resourceType() !== 'fetch') problems.push(`${response.url()}: ${response.status()}`);
    });
    // A browser without conditional mediation, while the test_no_autofill cookie is set (openSignIn).
    await context.addInitScript(`if (document.cookie.includes('test_no_autofill=1')) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);`);
    // The authenticator belongs to this page's target and survives its navigations.
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await server?.close();
  });

  const db = () => server.gatehouse.db.prisma;

  /**
   * Signs out (forgets every cookie) and opens the app's sign-in. The virtual authenticator answers
   * the page's conditional (autofill) request at once, so apart from the autofill test the page
   * is opened as in a browser without autofill for passkeys, where the button is the way.
   */
  async function openSignIn(target = client, { uiLocales, autofill = false }: { uiLocales?: string; autofill?: boolean } = {}) {
    await context.clearCookies();
    if (!autofill) await context.addCookies([{ name: 'test_no_autofill', value: '1', url: server.issuer }]);
    const { url, verifier } = authorizationUrl(server.issuer, target, { prompt: undefined, ...(uiLocales ? { ui_locales: uiLocales } : {}) });
    await page.goto(url.href);
    if (!autofill) await page.waitForSelector('#email');
    return verifier;
  }

  /** Allows access when asked, waits for the app's callback and returns the ID token's claims. */
  async function claimsAtApp(verifier: string, target = client) {
    await page.waitForURL((url) => url.pathname.endsWith('/confirm') || url.href.startsWith(app.origin) || url.pathname.startsWith('/interaction/'));
    if (!page.url().startsWith(app.origin)) {
      await page.waitForSelector('form[action$="/confirm"] button, #app');
      if (await page.$('form[action$="/confirm"] button')) await page.click('form[action$="/confirm"] button');
    }
    await page.waitForSelector('#app');
    const code = app.received.at(-1)?.searchParams.get('code');
    expect(code, app.received.at(-1)?.href).toBeTruthy();
    const tokens = await redeemCode(server.issuer, target, code as string, verifier);
    expect(tokens.status).toBe(200);
    return decodeJwt(tokens.body.id_token as string);
  }

  async function signInToAccount(password = person.password) {
    await context.clearCookies();
    await context.addCookies([{ name: 'test_no_autofill', value: '1', url: server.issuer }]);
    await page.goto(`${server.issuer}/account`);
    await page.fill('#email', person.email);
    await page.fill('#password', password);
    await page.click('form[action$="/login"] button.primary');
    await page.waitForSelector('#passkeys-heading');
  }

  const storedCredentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;

  it('adds a passkey on the account page (named), lists it, and the authenticator holds a discoverable credential', async () => {
    await signInToAccount();
    expect(await seriousViolations(page, 'account-without-passkeys')).toEqual([]);
    await page.fill('#passkey_name', 'This laptop');
    await page.click('form[action$="/account/passkeys/add"] button[data-passkey-start]');
    await page.waitForURL(/done=passkey_added/);
    expect(await page.locator('.passkeys h3').allTextContents()).toEqual(['This laptop']);
    expect(await page.textContent('.passkeys .hint')).toContain('Not used yet');
    expect(await seriousViolations(page, 'account-with-passkey')).toEqual([]);
    const [stored] = await db().passkey.findMany({ where: { userId: person.id } });
    expect(stored).toMatchObject({ name: 'This laptop', transports: expect.stringContaining('internal') });
    const [held] = await storedCredentials();
    expect(held).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
    expect(Buffer.from(held?.credentialId ?? '', 'base64').toString('base64url')).toBe(stored?.credentialId);
    expect(problems).toEqual([]);
  }, 60_000);

  it('signs in with the "Sign in with a passkey" button: no email typed, amr hwk, the MFA acr', async () => {
    const verifier = await openSignIn();
    expect(await page.getAttribute('#email', 'autocomplete')).toBe('username webauthn');
    await page.waitForSelector('button[data-passkey-start]:not([hidden])');
    expect(await seriousViolations(page, 'sign-in-with-passkey-button')).toEqual([]);
    await page.click('button[data-passkey-start]');
    const claims = await claimsAtApp(verifier);
    expect(claims).toMatchObject({ sub: person.id, amr: ['hwk', 'user'], acr: ACR_MFA });
    expect((await db().passkey.findFirstOrThrow({ where: { userId: person.id } })).lastUsedAt).not.toBeNull();
    expect(problems).toEqual([]);
  }, 60_000);

  it('offers the passkey in the email field (conditional mediation) and signs in from there', async () => {
    const before = await db().auditEvent.count({ where: { accountId: person.id, type: 'passkey.used' } });
    // The page asks for a conditional request as soon as it loads (the email field says
    // autocomplete="username webauthn"); the virtual authenticator, standing in for the person
    // picking the passkey in the autofill, answers it: nobody clicks anything.
    const verifier = await openSignIn(client, { autofill: true });
    const claims = await claimsAtApp(verifier);
    expect(claims).toMatchObject({ sub: person.id, amr: ['hwk', 'user'] });
    expect(await db().auditEvent.count({ where: { accountId: person.id, type: 'passkey.used' } })).toBe(before + 1);
  }, 60_000);

  it('uses the passkey as the second step after the password for an app that requires MFA', async () => {
    const verifier = await openSignIn(mfaClient);
    await page.fill('#email', person.email);
    await page.fill('#password', person.password);
    await page.click('form[action$="/login"] button.primary');
    await page.waitForSelector('button[data-passkey-start]:not([hidden])');
    expect(await page.textContent('.lead')).toContain('Use your passkey');
    expect(await seriousViolations(page, 'second-step-passkey')).toEqual([]);
    await page.click('button[data-passkey-start]');
    const claims = await claimsAtApp(verifier, mfaClient);
    expect(claims).toMatchObject({ sub: person.id, amr: ['pwd', 'hwk'], acr: ACR_MFA });
    expect(problems).toEqual([]);
  }, 60_000);

  it('shows the passkey pages in Korean', async () => {
    await openSignIn(client, { uiLocales: 'ko' });
    await page.waitForSelector('button[data-passkey-start]:not([hidden])');
    expect(await page.textContent('button[data-passkey-start]')).toBe('패스키로 로그인');
    expect(await seriousViolations(page, 'sign-in-ko')).toEqual([]);
  }, 60_000);

  it('removes the password (a passkey-only account), signs in with the passkey alone, and sets a password again', async () => {
    await signInToAccount();
    await page.fill('#remove_password_current', person.password);
    await page.click('form[action$="/account/password/remove"] button');
    await page.waitForURL(/done=password_removed/);
    expect(await page.textContent('#password-heading + p')).toContain('you sign in with a passkey or a linked account');
    expect(await seriousViolations(page, 'account-passkey-only')).toEqual([]);

    // The password is refused now; the passkey alone signs in.
    await openSignIn();
    await page.fill('#email', person.email);
    await page.fill('#password', person.password);
    await page.click('form[action$="/login"] button.primary');
    await page.waitForSelector('#form-error');
    await page.click('button[data-passkey-start]');
    await page.waitForSelector('#app');

    // Back on the account page (signed in just now with the passkey): a new password, no old one asked.
    await page.goto(`${server.issuer}/account`);
    await page.fill('#new_password', 'a passphrase to come back with');
    await page.fill('#new_password_confirm', 'a passphrase to come back with');
    await page.click('form[action$="/account/password/set"] button');
    await page.waitForURL(/done=password_set/);
    person.password = 'a passphrase to come back with';
    await signInToAccount();
    expect(problems).toEqual([]);
  }, 90_000);

  it('removes the passkey: it is gone from the list and no longer signs in', async () => {
    await signInToAccount();
    await page.click('form[action$="/account/passkeys/remove"] button');
    await page.waitForURL(/done=passkey_removed/);
    expect(await page.locator('.passkeys h3').count()).toBe(0);
    expect(await db().passkey.count({ where: { userId: person.id } })).toBe(0);

    // The authenticator still offers it; Gatehouse refuses it with a clear message.
    await openSignIn();
    await page.click('button[data-passkey-start]');
    await page.waitForSelector('#form-error');
    expect(await page.textContent('#form-error')).toContain('That passkey could not be used');
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    expect(await seriousViolations(page, 'sign-in-passkey-refused')).toEqual([]);
    expect(problems).toEqual([]);
  }, 60_000);

  it('accepts an invitation with a passkey instead of a password and lands signed in on the account page', async () => {
    await context.clearCookies();
    const db = server.gatehouse.db;
    const email = `invited-${flavour}@example.com`;
    const invitation = await inviteUser({ db, audit: createAuditLog(db, createLogger({ logLevel: 'silent' })), mail: accountMailOf(server.config, server.gatehouse.outbox) }, { email }, { via: 'cli' });
    await page.goto(await newestMailLink(server, '/invitation?token='));
    const start = 'form[action="/invitation/passkey"] button[data-passkey-start]';
    await page.waitForSelector(`${start}:not([hidden])`);
    expect(await seriousViolations(page, 'invitation-with-passkey')).toEqual([]);
    await page.fill('#passkey_name', 'Invited laptop');
    await page.click(start);
    await page.waitForSelector('#passkeys-heading');
    expect(new URL(page.url()).pathname).toBe('/account');
    expect(await page.locator('.passkeys h3').allTextContents()).toEqual(['Invited laptop']);
    expect(await page.textContent('#password-heading + p')).toContain('you sign in with a passkey or a linked account');
    expect(await db.prisma.user.findUnique({ where: { id: invitation.id } })).toMatchObject({ email, emailVerified: true, passwordHash: null });
    expect((await storedCredentials()).some((held) => Buffer.from(held.userHandle ?? '', 'base64').toString('utf8') === invitation.id)).toBe(true);
    expect(problems).toEqual([]);
  }, 60_000);
});
