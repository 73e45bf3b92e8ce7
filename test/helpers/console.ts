// Signing in to the admin console (/console) over real HTTP, as an administrator does: an
// account in ADMIN_GROUP with TOTP, the sign-in page, the second factor, back at /console.
// Returns a cookie-keeping agent (Browser) with the page it landed on, the current form token,
// and a way to post a console form (the token added).
import { expect } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createGroupStore } from '../../src/groups/store.js';
import { createMfa } from '../../src/people/mfa.js';
import type { Page as ChromiumPage } from 'playwright-core';
import { Browser, findForm, submitForm, submitPassword, type Page } from './browser.js';
import type { TestGatehouse } from './gatehouse.js';
import { codeAt, currentStep, enrolTotp } from './totp.js';

export interface ConsoleAdmin {
  id: string;
  email: string;
  password: string;
  name: string;
  /** The TOTP secret, when they have one. */
  secret?: string;
}

/** Adds `userId` to `group` (made when missing), straight through the groups' store. */
export async function addToGroup(server: TestGatehouse, userId: string, group = 'admins'): Promise<void> {
  const groups = createGroupStore(server.gatehouse.db);
  const existing = (await groups.findByName(group)) ?? (await groups.create({ name: group, description: null }));
  await groups.addMembers(existing.id, [userId]);
}

/** Takes `userId` out of `group`. */
export async function removeFromGroup(server: TestGatehouse, userId: string, group = 'admins'): Promise<void> {
  const groups = createGroupStore(server.gatehouse.db);
  const existing = await groups.findByName(group);
  if (existing) await groups.removeMembers(existing.id, [userId]);
}

/** A new person in the admin group (ADMIN_GROUP, `admins` unless `group`), with TOTP unless `totp: false`. */
export async function addAdmin(server: TestGatehouse, { group = 'admins', totp = true, member = true }: { group?: string; totp?: boolean; member?: boolean } = {}): Promise<ConsoleAdmin> {
  const person = await server.addPerson();
  if (member) await addToGroup(server, person.id, group);
  if (!totp) return person;
  const mfa = createMfa(server.gatehouse.db, { secrets: server.config.secrets, audit: createAuditLog(server.gatehouse.db, createLogger(server.config)) });
  const { secret, step } = await enrolTotp(mfa, person.id);
  lastSteps.set(secret, step);
  return { ...person, secret };
}

/** The last TOTP step used per secret: each step is accepted once, and only one step either side of now. */
const lastSteps = new Map<string, number>();

/** A code the server will accept now (waiting for the next step when both usable ones are spent). */
export async function nextCode(secret: string): Promise<string> {
  for (;;) {
    const step = Math.max((lastSteps.get(secret) ?? 0) + 1, currentStep() - 1);
    if (step <= currentStep() + 1) {
      lastSteps.set(secret, step);
      return codeAt(secret, step);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export interface ConsoleAgent {
  browser: Browser;
  /** The page the sign-in ended on (the console page asked for). */
  page: Page;
  /** The form token of the console's pages now (read from a fresh page). */
  csrfToken(path?: string): Promise<string>;
  /** Posts a console form with the current token (and `fields`); returns the raw response (303 on success). */
  post(path: string, fields?: Record<string, string>): Promise<Response>;
}

/** Opens `path` (default /console) in a new browser and signs in there as `admin`, giving the second factor when asked. */
export async function signInToConsole(server: TestGatehouse, admin: ConsoleAdmin, { path = '/console', headers = {} }: { path?: string; headers?: Record<string, string> } = {}): Promise<ConsoleAgent> {
  const browser = new Browser(server.issuer, headers);
  const page = await signInAgain(browser, admin, path);
  expect(new URL(page.url).pathname).toBe(path.split('?')[0]);
  expect(page.status).toBe(200);
  return agentFor(browser, page);
}

/** Drives the sign-in pages the console sends `browser` to, until it lands on a page that is not a sign-in step. */
export async function signInAgain(browser: Browser, admin: ConsoleAdmin, path = '/console'): Promise<Page> {
  let page: Page = await browser.visit(path);
  page = await submitPassword(browser, page, admin);
  if (page.html.includes('/mfa"')) {
    if (!admin.secret) throw new Error(`${admin.email} was asked for a code but has no TOTP`);
    page = await submitForm(browser, page, '/mfa', { code: await nextCode(admin.secret) });
  }
  return page;
}

export function agentFor(browser: Browser, page: Page): ConsoleAgent {
  async function csrfToken(path = '/console') {
    const fresh = await browser.visit(path);
    expect(fresh.status).toBe(200);
    return findForm(fresh.html, '/console/sign-out').fields.csrf_token as string;
  }
  return {
    browser,
    page,
    csrfToken,
    async post(path, fields = {}) {
      return browser.request(path, { form: { csrf_token: await csrfToken(), ...fields } });
    },
  };
}

/** In Chromium: opens `path` in `page` and signs in there as `admin` with the password and a TOTP code, by clicking, until back on `path`. */
export async function signInInChromium(page: ChromiumPage, issuer: string, admin: ConsoleAdmin, path = '/console'): Promise<void> {
  await page.goto(`${issuer}${path}`);
  await page.fill('#email', admin.email);
  await page.fill('#password', admin.password);
  await page.click('button.primary');
  await page.waitForSelector('#code');
  await page.fill('#code', await nextCode(admin.secret as string));
  await page.click('button.primary');
  await page.waitForURL(`${issuer}${path}`);
}
