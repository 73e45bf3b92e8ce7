// A real browser (Debian's Chromium, driven by playwright-core) goes through the pages people
// see: a small app served by this test sends it to sign in (a wrong password, then the right
// one), it allows access, the app gets its code and shows the person's name, it signs out,
// removes the app on the account page, and signs in again in Korean. axe-core checks every page
// for accessibility (a serious or critical violation fails the test), and each page is
// photographed at phone and desktop widths into tmp/screenshots/ (git-ignored).
// SCREENSHOTS_FOR_README=1 also refreshes the README's pictures in test/screenshots/.
//
// Without /usr/bin/chromium this file is skipped with a message, except under CI=true, where a
// missing browser fails (.ci/run installs it).
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, browserTestsRun, launchChromium, refreshReadmeScreenshots, SCREENSHOTS, seriousViolations } from '../helpers/chromium.js';
import { ALICE, credentialsOf, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { discover } from '../helpers/relying-party.js';
import { newestMailLink as newestLinkIn } from '../helpers/smtp.js';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { accountMailOf } from '../../src/http/mail-renderer.js';
import { inviteUser } from '../../src/people/invitations.js';

const SIZES = { phone: { width: 375, height: 812 }, desktop: { width: 1280, height: 800 } } as const;

const CLIENT = { ...credentialsOf('bookshelf'), name: 'Bookshelf' };


/**
 * The relying party: a home page with a sign-in link (PKCE, state, nonce), a callback that
 * redeems the code with openid-client and greets the person by name, and a sign-out link.
 */
async function startRelyingParty(issuer: string) {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = await discover(issuer, CLIENT);
  const pending = new Map<string, { verifier: string; nonce: string }>();
  const received: { codes: string[]; idToken?: string } = { codes: [] };
  const html = (body: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${CLIENT.name}</title></head><body><main>${body}</main></body></html>`;

  server.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      if (url.pathname === '/') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        pending.set(state, { verifier, nonce });
        const signIn = oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${origin}/callback`,
          scope: 'openid profile email',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
          ...(url.searchParams.get('lang') ? { ui_locales: url.searchParams.get('lang') as string } : {}),
        });
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(html(`<h1>${CLIENT.name}</h1><a id="sign-in" href="${signIn.href.replace(/&/g, '&amp;')}">Sign in with Gatehouse</a>`));
        return;
      }
      if (url.pathname === '/callback') {
        const state = url.searchParams.get('state') ?? '';
        const expected = pending.get(state);
        if (!expected) throw new Error('unknown state');
        pending.delete(state);
        received.codes.push(url.searchParams.get('code') ?? '');
        const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: expected.verifier, expectedState: state, expectedNonce: expected.nonce });
        received.idToken = tokens.id_token;
        const claims = (await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()?.sub as string)) as { name?: string };
        const signOut = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token as string });
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(html(`<h1>${CLIENT.name}</h1><p id="greeting">Hello, ${claims.name ?? 'stranger'}</p><a id="sign-out" href="${signOut.href.replace(/&/g, '&amp;')}">Sign out</a>`));
        return;
      }
      res.statusCode = 404;
      res.end('not found');
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(`relying party error: ${(error as Error).message}`);
    });
  });
  return { origin, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.skipIf(!browserTestsRun)('the pages in a real browser (Chromium)', () => {
  let server: TestGatehouse;
  let rp: Awaited<ReturnType<typeof startRelyingParty>>;
  let browser: Browser;
  const photographed: string[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startTestGatehouse('sqlite', { people: [ALICE], env: { SIGNUP: 'open' } });
    // The relying party's port is known only once it listens: register the client after.
    rp = await startRelyingParty(server.issuer);
    await server.addClient(webApp({ client_id: CLIENT.id, client_secret: CLIENT.secret, client_name: CLIENT.name, redirect_uris: [`${rp.origin}/callback`] }));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await server?.close();
    refreshReadmeScreenshots(['sign-in', 'consent'].flatMap((name) => Object.keys(SIZES).map((size) => `${name}-${size}.png`)));
  });

  /** A fresh browser profile whose console errors (a CSP violation, a script error) and failed assets fail the test. */
  async function newPage() {
    const context = await browser.newContext({ viewport: SIZES.desktop });
    const page = await context.newPage();
    const problems: string[] = [];
    // A page's own 4xx status is expected (a wrong password is a 401); a failed asset is not.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`${page.url()}: ${message.text()}`);
    });
    page.on('response', (response) => {
      const request = response.request();
      if (response.status() >= 400 && request.resourceType() !== 'document' && !request.url().endsWith('/favicon.ico')) problems.push(`${request.url()}: ${response.status()}`);
    });
    page.on('requestfailed', (request) => problems.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
    return { page, problems, close: () => context.close() };
  }

  const newestMailLink = (path: string) => newestLinkIn(server, path);

  /** axe-core's serious and critical findings fail the test; the page is photographed at both widths. */
  async function check(page: Page, name: string) {
    expect(await seriousViolations(page, name)).toEqual([]);
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: `${SCREENSHOTS}/${name}-${size}.png`, fullPage: true });
    }
    await page.setViewportSize(SIZES.desktop);
    photographed.push(name);
  }

  it('has an accessibility check that can fail: axe-core finds an unlabelled field', async () => {
    const { page, close } = await newPage();
    await page.goto(`${rp.origin}/`);
    await page.evaluate(`document.querySelector('main').insertAdjacentHTML('beforeend', '<input type="text">')`);
    expect((await axeViolations(page)).map((v) => `${v.id} ${v.impact}`)).toContain('label critical');
    await close();
  });

  it('signs in to an app (wrong then right password, consent), signs out, and removes the app on the account page', async () => {
    const { page, problems, close } = await newPage();
    await page.goto(`${rp.origin}/`);
    await page.click('#sign-in');
    await page.waitForURL(/\/interaction\//);
    expect(await page.textContent('h1')).toBe('Sign in');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await check(page, 'sign-in');

    await page.fill('#email', ALICE.email);
    await page.fill('#password', 'not the password');
    await page.click('button.primary');
    await page.waitForSelector('#form-error');
    expect(await page.textContent('#form-error')).toContain('Incorrect email or password.');
    expect(await page.inputValue('#email')).toBe(ALICE.email);
    await check(page, 'sign-in-error');

    await page.fill('#password', ALICE.password);
    await page.click('button.primary');
    await page.waitForSelector('form[action$="/confirm"]');
    expect(await page.textContent('h1')).toContain(`Allow ${CLIENT.name}`);
    await check(page, 'consent');

    await page.click('form[action$="/confirm"] button');
    await page.waitForURL(`${rp.origin}/callback?**`);
    expect(new URL(page.url()).searchParams.get('code')).toBe(rp.received.codes.at(-1));
    expect(await page.textContent('#greeting')).toBe(`Hello, ${ALICE.name}`);

    // RP-initiated logout: the confirmation, then the signed-out page.
    await page.click('#sign-out');
    await page.waitForSelector('button[name="logout"]');
    await check(page, 'logout');
    await page.click('button[name="logout"]');
    await page.waitForFunction(`!document.querySelector('button[name="logout"]')`);
    await check(page, 'signed-out');

    // Signed out: the account page asks to sign in first, then lists the app once it is connected again.
    await page.goto(`${rp.origin}/`);
    await page.click('#sign-in');
    await page.fill('#email', ALICE.email);
    await page.fill('#password', ALICE.password);
    await page.click('button.primary');
    await page.waitForSelector('form[action$="/confirm"]');
    await page.click('form[action$="/confirm"] button');
    await page.waitForURL(`${rp.origin}/callback?**`);
    await page.goto(`${server.issuer}/account`);
    await page.waitForSelector('#apps-heading');
    expect(await page.textContent('h1')).toBe('Your account');
    expect(await page.locator('.account-list h3').allTextContents()).toEqual([CLIENT.name]);
    await check(page, 'account');

    await page.click(`button:has-text("${CLIENT.name}")`);
    await page.waitForURL(/done=app_revoked/);
    expect(await page.locator('.account-list h3').count()).toBe(0);
    await check(page, 'account-app-removed');

    // Two-step verification from the account page: the QR code page, then the recovery codes.
    await page.fill('#mfa_password', ALICE.password);
    await page.click('form[action="/account/mfa/enroll"] button');
    await page.waitForSelector('img.qr-code');
    await check(page, 'account-mfa');
    const secret = ((await page.textContent('#totp-secret')) ?? '').replace(/\s/g, '');
    await page.fill('#code', await generate({ secret }));
    await page.click('form[action="/account/mfa/confirm"] button');
    await page.waitForSelector('.recovery-codes');
    expect(await page.locator('.recovery-codes li').count()).toBe(10);
    await check(page, 'account-recovery-codes');
    await page.click('a[href="/account?done=mfa_enrolled"]');
    await page.waitForSelector('form[action="/account/mfa/remove"]');
    await page.fill('#mfa_password', ALICE.password);
    await page.click('form[action="/account/mfa/remove"] button');
    await page.waitForURL(/done=mfa_removed/);

    // An error page: an unknown client.
    await page.goto(`${server.issuer}/authorize?client_id=nobody&response_type=code&scope=openid`);
    await check(page, 'error');

    // The device flow's code entry page.
    await page.goto(`${server.issuer}/device`);
    await page.waitForSelector('form');
    await check(page, 'device-input');

    expect(problems).toEqual([]);
    await close();
  }, 90_000);

  it('shows the pages in Korean when the app asks with ui_locales=ko', async () => {
    const { page, problems, close } = await newPage();
    await page.goto(`${rp.origin}/?lang=ko`);
    await page.click('#sign-in');
    await page.waitForURL(/\/interaction\//);
    expect(await page.getAttribute('html', 'lang')).toBe('ko');
    expect(await page.textContent('h1')).toMatch(/[\uac00-\ud7a3]/);
    await check(page, 'sign-in-ko');

    await page.fill('#email', ALICE.email);
    await page.fill('#password', 'not the password');
    await page.click('button.primary');
    await page.waitForSelector('#form-error');
    expect(await page.textContent('#form-error')).toMatch(/[\uac00-\ud7a3]/);
    await check(page, 'sign-in-error-ko');

    await page.fill('#password', ALICE.password);
    await page.click('button.primary');
    await page.waitForSelector('form[action$="/confirm"]');
    expect(await page.textContent('h1')).toMatch(/[\uac00-\ud7a3]/);
    await check(page, 'consent-ko');

    await page.goto(`${server.issuer}/account?ui_locales=ko`);
    await page.waitForSelector('#apps-heading');
    expect(await page.getAttribute('html', 'lang')).toBe('ko');
    expect(await page.textContent('h1')).toMatch(/[\uac00-\ud7a3]/);
    await check(page, 'account-ko');

    expect(problems).toEqual([]);
    await close();
    expect(photographed.length).toBeGreaterThan(0);
  }, 60_000);

  it('resets a forgotten password from the sign-in page, through the mail written in development', async () => {
    const { page, problems, close } = await newPage();
    const person = await server.addPerson();
    await page.goto(`${rp.origin}/`);
    await page.click('#sign-in');
    await page.waitForURL(/\/interaction\//);
    await page.click('a[href^="/password/forgot"]');
    await page.waitForSelector('form[action="/password/forgot"]');
    await check(page, 'password-forgot');
    await page.fill('#email', person.email);
    await page.click('button.primary');
    await page.waitForSelector('[role="status"]');
    await check(page, 'password-reset-sent');

    const link = await newestMailLink('/password/reset?token=');
    await page.goto(link);
    await page.waitForSelector('form[action="/password/reset"]');
    await check(page, 'password-reset');
    await page.fill('#password', 'short');
    await page.fill('#password_confirm', 'short');
    await page.click('button.primary');
    await page.waitForSelector('#form-error');
    await check(page, 'password-reset-error');
    await page.fill('#password', 'a brand new passphrase 42');
    await page.fill('#password_confirm', 'a brand new passphrase 42');
    await page.click('button.primary');
    await page.waitForSelector('[role="status"]');
    await check(page, 'password-reset-done');
    await page.click('.links a');
    await page.waitForURL(/\/interaction\//);
    expect(await page.textContent('h1')).toBe('Sign in');

    await page.goto(link);
    expect(await page.textContent('h1')).toBe('This link does not work');
    await check(page, 'password-reset-invalid');
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('signs up from the sign-in page, is stopped until the address is verified, verifies it by the mailed link, and reaches the app', async () => {
    const { page, problems, close } = await newPage();
    const email = `browser-signup-${Date.now()}@example.com`;
    const password = 'a sign-up passphrase 42';
    await page.goto(`${rp.origin}/`);
    await page.click('#sign-in');
    await page.waitForURL(/\/interaction\//);
    const signIn = page.url();
    await page.click('a[href^="/signup"]');
    await page.waitForSelector('form[action="/signup"]');
    await check(page, 'signup');
    await page.fill('#email', email);
    await page.fill('#password', password);
    await page.fill('#password_confirm', 'something else entirely');
    await page.click('button.primary');
    await page.waitForSelector('#form-error');
    await check(page, 'signup-error');
    await page.fill('#password', password);
    await page.fill('#password_confirm', password);
    await page.click('button.primary');
    await page.waitForSelector('[role="status"]');
    await check(page, 'signup-sent');
    const link = await newestMailLink('/email/verify?token=');

    await page.goto(signIn);
    await page.fill('#email', email);
    await page.fill('#password', password);
    await page.click('form[action$="/login"] button.primary');
    await page.waitForSelector('form[action$="/verify-email/continue"]');
    expect(await page.textContent('h1')).toBe('Confirm your email address first');
    await check(page, 'email-verify-required');
    // In another tab of the same browser, the link from the mail.
    const tab = await page.context().newPage();
    await tab.goto(link);
    await tab.waitForSelector('form[action="/email/verify"]');
    await check(tab, 'email-verify');
    await tab.click('form[action="/email/verify"] button');
    await tab.waitForSelector('h1');
    expect(await tab.textContent('h1')).toBe('Your email address is confirmed');
    await check(tab, 'email-verified');
    await tab.goto(link);
    expect(await tab.textContent('h1')).toBe('This link does not work');
    await check(tab, 'email-verify-invalid');
    await tab.close();

    await page.click('form[action$="/verify-email/continue"] button');
    await page.waitForURL((url) => url.href.startsWith(rp.origin) || url.pathname.startsWith('/interaction/'));
    if (!page.url().startsWith(rp.origin)) {
      await page.click('form[action$="/confirm"] button.primary');
      await page.waitForURL((url) => url.href.startsWith(rp.origin));
    }
    expect(page.url().startsWith(rp.origin)).toBe(true);
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('accepts an invitation: the mailed link, a password, then signed in on the account page', async () => {
    const { page, problems, close } = await newPage();
    const db = server.gatehouse.db;
    const mail = accountMailOf(server.config, server.gatehouse.outbox);
    await inviteUser({ db, audit: createAuditLog(db, createLogger({ logLevel: 'silent' })), mail }, { email: 'invited@example.com', name: 'Invited' }, { via: 'cli' });
    const link = await newestMailLink('/invitation?token=');
    await page.goto(link);
    await page.waitForSelector('form[action="/invitation"]');
    await check(page, 'invitation');
    await page.fill('#password', 'an invited passphrase 7');
    await page.fill('#password_confirm', 'an invited passphrase 7');
    await page.click('form[action="/invitation"] button.primary');
    // Signed in without typing the password again (the sign-in handoff).
    await page.waitForURL(/\/account$/);
    expect(await page.content()).toContain('invited@example.com');

    await page.goto(link);
    expect(await page.textContent('h1')).toBe('This invitation does not work');
    await check(page, 'invitation-invalid');
    expect(problems).toEqual([]);
    await close();
  }, 60_000);
});
