// The admin console in a real browser (Debian's Chromium, driven by playwright-core): an
// administrator signs in with a password and a TOTP code, finds a person, disables them, adds
// them to a group and ends their lockout; another does everything with the keyboard alone. axe-core
// checks every console page in English and Korean (a serious or critical violation fails the
// test). Pages are photographed into tmp/screenshots/; SCREENSHOTS_FOR_README=1 also refreshes
// the README's pictures of the console in test/screenshots/.
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as HttpBrowser, submitPassword } from '../../helpers/browser.js';
import { browserTestsRun, launchChromium, refreshReadmeScreenshots, SCREENSHOTS, seriousViolations } from '../../helpers/chromium.js';
import { addAdmin, nextCode, signInInChromium, type ConsoleAdmin } from '../../helpers/console.js';
import { WRONG_PASSWORD } from '../../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';
import { createGroupStore } from '../../../src/groups/store.js';

const DESKTOP = { width: 1280, height: 800 };

describe.skipIf(!browserTestsRun)('the admin console in a real browser (Chromium)', () => {
  let server: TestGatehouse;
  let browser: Browser;
  let dana: { id: string; email: string; password: string };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startTestGatehouse('sqlite', { env: { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_DELAY_STEP_MS: '0', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3' } });
    const email = 'dana.scully@example.com';
    dana = { id: await server.addUser({ email, password: 'dana has a long password', name: 'Dana Scully' }), email, password: 'dana has a long password' };
    await createGroupStore(server.gatehouse.db).create({ name: 'support', description: 'Answers the help desk' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    refreshReadmeScreenshots(['console-overview-desktop.png', 'console-person-desktop.png']);
  });

  /** Three wrong passwords lock Dana out (SIGN_IN_MAX_FAILURES_PER_ACCOUNT=3). */
  async function lockOutDana() {
    const http = new HttpBrowser(server.issuer);
    for (let i = 0; i < 3; i++) await submitPassword(http, await http.visit('/account'), { email: dana.email, password: WRONG_PASSWORD });
  }

  /** A fresh browser profile (in `locale`) whose console errors and failed assets fail the test. */
  async function newPage(locale = 'en-US') {
    const context = await browser.newContext({ viewport: DESKTOP, locale });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
    return { page, problems, close: () => context.close() };
  }

  /** Opens the console and signs in with the password and a TOTP code, clicking. */
  const signIn = (page: Page, admin: ConsoleAdmin) => signInInChromium(page, server.issuer, admin);

  async function check(page: Page, name: string, photograph = false) {
    expect(await seriousViolations(page, name)).toEqual([]);
    if (photograph) await page.screenshot({ path: `${SCREENSHOTS}/${name}-desktop.png`, fullPage: true });
  }

  it('signs an admin in with TOTP; finds a person, disables them, adds them to a group and unlocks them', async () => {
    await lockOutDana();
    const admin = await addAdmin(server);
    // A name for the README's pictures.
    await server.gatehouse.db.prisma.user.update({ where: { id: admin.id }, data: { name: 'Ada Lovelace' } });
    const { page, problems, close } = await newPage();
    await signIn(page, admin);
    expect(await page.textContent('h1')).toBe('Overview');
    expect(await page.textContent('#main')).toContain(dana.email);
    await check(page, 'console-overview', true);

    await page.click('nav.console-nav >> text=People');
    await page.fill('#q', 'scully');
    await page.click('form[role="search"] button');
    await page.click(`text=${dana.email}`);
    await page.waitForSelector('#profile-heading');
    expect(await page.textContent('h1')).toBe('Dana Scully');
    await check(page, 'console-person', true);

    await page.click('form[action$="/disabled"] button');
    await page.waitForSelector('p.notice');
    expect(await page.textContent('p.notice')).toContain('The account was disabled');
    expect((await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id: dana.id } })).disabled).toBe(true);

    await page.check('input[name="groups"][value="support"]');
    await page.click('form[action$="/groups"] button');
    await page.waitForSelector('p.notice');
    expect(await createGroupStore(server.gatehouse.db).namesOf(dana.id)).toEqual(['support']);

    expect(await page.textContent('#main')).toContain('Locked out after too many failed attempts');
    await page.click('form[action$="/unlock"] button');
    await page.waitForSelector('p.notice');
    expect(await page.textContent('p.notice')).toContain('The lockout was ended.');
    expect(await page.textContent('#main')).toContain('Not locked out');
    expect(problems).toEqual([]);
    await close();
  });

  /** Presses Tab until the focused element matches `selector` (or fails after many). */
  async function tabTo(page: Page, selector: string) {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) return;
    }
    throw new Error(`Tab never reached ${selector}`);
  }

  it('works with the keyboard alone: signs in, opens Groups, creates a group and adds a member', async () => {
    const admin = await addAdmin(server);
    const { page, problems, close } = await newPage();
    await page.goto(`${server.issuer}/console`);
    await tabTo(page, '#email');
    await page.keyboard.type(admin.email);
    await tabTo(page, '#password');
    await page.keyboard.type(admin.password);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#code');
    await tabTo(page, '#code');
    await page.keyboard.type(await nextCode(admin.secret as string));
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.issuer}/console`);

    // The skip link comes first, then the header and the nav.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to the content');
    await tabTo(page, 'nav.console-nav a[href="/console/groups"]');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${server.issuer}/console/groups`);
    await tabTo(page, '#field-name');
    await page.keyboard.type('keyboard-crew');
    await tabTo(page, '#field-description');
    await page.keyboard.type('Made without a mouse');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/groups\/keyboard-crew\?done=group_created/);
    await tabTo(page, '#member-email');
    await page.keyboard.type(dana.email);
    await page.keyboard.press('Enter');
    await page.waitForURL(/done=member_added/);
    expect(await page.textContent('#main')).toContain(dana.email);
    const group = await createGroupStore(server.gatehouse.db).findByName('keyboard-crew');
    expect(group?.description).toBe('Made without a mouse');
    expect(await createGroupStore(server.gatehouse.db).namesOf(dana.id)).toContain('keyboard-crew');
    expect(problems).toEqual([]);
    await close();
  });

  for (const [lang, locale] of [['en', 'en-US'], ['ko', 'ko-KR']] as const) {
    it(`passes axe on every console page in ${lang}`, async () => {
      const admin = await addAdmin(server);
      const { page, problems, close } = await newPage(locale);
      await signIn(page, admin);
      expect(await page.getAttribute('html', 'lang')).toBe(lang);
      const pages = ['/console', '/console/people', '/console/people/new', `/console/people/${dana.id}`, '/console/groups', '/console/groups/support', '/console/groups/support/delete'];
      for (const path of pages) {
        await page.goto(`${server.issuer}${path}`);
        await check(page, `${lang} ${path}`);
      }
      // Pages showing a form's errors.
      await page.goto(`${server.issuer}/console/people/new`);
      await page.fill('#field-email', 'not an email');
      await page.click('form[action="/console/people"] button');
      await page.waitForSelector('[aria-invalid="true"]');
      await check(page, `${lang} create with errors`);
      await page.goto(`${server.issuer}/console/groups`);
      await page.fill('#field-name', 'bad name');
      await page.click('form[action="/console/groups"] button');
      await page.waitForSelector('[aria-invalid="true"]');
      await check(page, `${lang} group with errors`);
      // Signing out, and the page after it.
      await page.click('form[action="/console/sign-out"] button');
      await page.waitForURL(`${server.issuer}/console/signed-out`);
      await check(page, `${lang} signed out`);
      expect(problems).toEqual([]);
      await close();
    });
  }
});
