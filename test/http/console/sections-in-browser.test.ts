// The console's clients, signing keys, identity providers and audit trail in a real browser
// (Chromium): an administrator signs in with the second factor, registers a client (a refused
// form first) and sees its secret once, rotates the signing keys, adds an identity provider and
// filters the audit trail; another rotates the keys with the keyboard alone; then the same pages
// in Korean. axe-core checks every page (a serious or critical violation fails), and each is
// photographed into tmp/screenshots/ (git-ignored); SCREENSHOTS_FOR_README=1 also copies the
// README's into test/screenshots/.
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsRun, launchChromium, refreshReadmeScreenshots, SCREENSHOTS, seriousViolations } from '../../helpers/chromium.js';
import { addAdmin, signInInChromium, type ConsoleAdmin } from '../../helpers/console.js';
import { CONSOLE_TEST_ENV } from '../../helpers/console-forms.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';

const FOR_README = ['console-client-secret', 'console-keys'];

describe.skipIf(!browserTestsRun)('the console’s clients, keys, identity providers and audit trail in Chromium', () => {
  let server: TestGatehouse;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startTestGatehouse('sqlite', { env: { ...CONSOLE_TEST_ENV, KEY_ROTATION_INTERVAL: '90d' } });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    refreshReadmeScreenshots(FOR_README.map((name) => `${name}.png`));
  });

  /** A fresh browser profile in `locale`, signed in to the console at `path`; script errors and failed assets fail the test. */
  async function signedIn(admin: ConsoleAdmin, path: string, locale = 'en-US') {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
    page.on('response', (response) => {
      const request = response.request();
      if (response.status() >= 400 && request.resourceType() !== 'document' && !request.url().endsWith('/favicon.ico')) problems.push(`${request.url()}: ${response.status()}`);
    });
    await signInInChromium(page, server.issuer, admin, path);
    return { page, problems, close: () => context.close() };
  }

  /** axe-core's serious and critical findings fail the test; the page is photographed. */
  async function check(page: Page, name: string) {
    expect(await seriousViolations(page, name)).toEqual([]);
    await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
  }

  it('registers a client and shows its secret once, rotates the keys, adds an identity provider, filters the audit trail', async () => {
    const { page, problems, close } = await signedIn(await addAdmin(server), '/console/clients');
    expect(await page.textContent('h1')).toBe('Clients');
    await check(page, 'console-clients');

    await page.click('a[href="/console/clients/new"]');
    await check(page, 'console-client-new');
    await page.fill('#f-client_id', 'wiki');
    await page.fill('#f-client_name', 'Team wiki');
    await page.fill('#f-redirect_uris', 'not a url');
    await page.check('input[name="grant_types"][value="authorization_code"]');
    await page.click('form[action="/console/clients/new"] button.primary');
    await page.waitForSelector('#form-errors');
    expect(await page.getAttribute('#f-redirect_uris', 'aria-invalid')).toBe('true');
    expect(await page.inputValue('#f-client_name')).toBe('Team wiki');
    await check(page, 'console-client-refused');

    await page.fill('#f-redirect_uris', 'https://wiki.example.com/callback');
    await page.check('input[name="grant_types"][value="refresh_token"]');
    await page.click('form[action="/console/clients/new"] button.primary');
    await page.waitForSelector('#client-secret');
    const secret = (await page.textContent('#client-secret')) as string;
    expect(secret).toMatch(/^[\w-]{43}$/);
    await check(page, 'console-client-secret');

    await page.click('a[href="/console/clients/wiki/edit"]');
    expect(await page.textContent('h1')).toBe('Client “Team wiki”');
    expect(await page.content()).not.toContain(secret);
    await check(page, 'console-client-edit');
    await page.click('a[href="/console/clients/wiki/delete"]');
    await check(page, 'console-client-delete');

    await page.goto(`${server.issuer}/console/keys`);
    await check(page, 'console-keys');
    const keys = await page.locator('tbody tr').count();
    await page.check('input[name="alg"][value="ES256"]');
    await page.click('form[action="/console/keys/rotate"] button.primary');
    await page.waitForURL(/done=keys_rotated/);
    expect(await page.textContent('.notice')).toContain('New signing keys were made');
    // One more key in the list of keys; the schedule still has one row per algorithm.
    expect(await page.locator('tbody tr').count()).toBe(keys + 1);
    await check(page, 'console-keys-rotated');

    await page.goto(`${server.issuer}/console/identity-providers`);
    await check(page, 'console-idps-empty');
    await page.click('a[href="/console/identity-providers/new"]');
    await check(page, 'console-idp-new');
    await page.fill('#f-id', 'sso');
    await page.fill('#f-display_name', 'Company SSO');
    await page.fill('#f-issuer', 'https://sso.example.com');
    await page.fill('#f-client_id', 'gatehouse');
    await page.fill('#f-client_secret', 'upstream-secret');
    await page.click('form[action="/console/identity-providers/new"] button.primary');
    await page.waitForURL(/done=idp_created/);
    expect(await page.textContent('#redirect-uri')).toBe(`${server.issuer}/federation/sso/callback`);
    expect(await page.inputValue('#f-client_secret')).toBe('');
    await check(page, 'console-idp-edit');
    await page.goto(`${server.issuer}/console/identity-providers`);
    await check(page, 'console-idps');
    await page.goto(`${server.issuer}/console/identity-providers/sso/delete`);
    await check(page, 'console-idp-delete');

    await page.goto(`${server.issuer}/console/audit`);
    await page.selectOption('#f-type', 'client.created');
    await page.click('form[action="/console/audit"] button.primary');
    await page.waitForURL(/type=client.created/);
    expect(await page.locator('tbody tr').count()).toBe(1);
    await check(page, 'console-audit');
    await page.goto(`${server.issuer}/console/audit?since=yesterday`);
    await check(page, 'console-audit-refused');

    expect(problems).toEqual([]);
    await close();
  }, 120_000);

  it('rotates the signing keys with the keyboard alone', async () => {
    const { page, problems, close } = await signedIn(await addAdmin(server), '/console/keys');
    /** Presses Tab until the focus is on `selector` (failing after `limit` presses). */
    async function tabTo(selector: string, limit = 60) {
      for (let i = 0; i < limit; i++) {
        await page.keyboard.press('Tab');
        if ((await page.locator(`${selector}:focus`).count()) > 0) return;
      }
      throw new Error(`Tab never reached ${selector}`);
    }
    const keys = await page.locator('tbody tr').count();
    await tabTo('input[name="alg"]');
    // Arrow keys move between the radio buttons: from "every algorithm" to RS256.
    await page.keyboard.press('ArrowDown');
    expect(await page.isChecked('input[name="alg"][value="RS256"]')).toBe(true);
    await tabTo('input[name="immediate"]');
    await page.keyboard.press('Space');
    await tabTo('form[action="/console/keys/rotate"] button');
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=keys_rotated_immediately/);
    expect(await page.textContent('.notice')).toContain('sign from now on');
    expect(await page.locator('tbody tr').count()).toBe(keys + 1);
    expect(problems).toEqual([]);
    await close();
  }, 120_000);

  it('shows the same pages in Korean, each passing axe', async () => {
    const { page, problems, close } = await signedIn(await addAdmin(server), '/console/clients/new', 'ko-KR');
    expect(await page.getAttribute('html', 'lang')).toBe('ko');
    expect(await page.textContent('h1')).toBe('클라이언트 등록');
    await check(page, 'console-ko-client-new');
    await page.fill('#f-client_id', 'ko-app');
    await page.fill('#f-redirect_uris', 'https://ko.example.com/cb');
    await page.click('form[action="/console/clients/new"] button.primary');
    await page.waitForSelector('#client-secret');
    expect(await page.textContent('h1')).toBe('클라이언트 시크릿');
    await check(page, 'console-ko-client-secret');
    for (const [path, name] of [
      ['/console/clients', 'clients'],
      ['/console/clients/ko-app/edit', 'client-edit'],
      ['/console/clients/ko-app/delete', 'client-delete'],
      ['/console/keys', 'keys'],
      ['/console/identity-providers', 'idps'],
      ['/console/identity-providers/new', 'idp-new'],
      ['/console/audit', 'audit'],
    ] as const) {
      await page.goto(`${server.issuer}${path}`);
      expect(await page.getAttribute('html', 'lang')).toBe('ko');
      await check(page, `console-ko-${name}`);
    }
    expect(problems).toEqual([]);
    await close();
  }, 120_000);
});
