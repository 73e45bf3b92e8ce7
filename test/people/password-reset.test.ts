// Forgotten passwords end to end, on SQLite and PostgreSQL, against a real SMTP server on
// 127.0.0.1: the link on the sign-in page, the request answered alike for every address, the
// mail read from the server, its link followed, the new password chosen, every other session,
// grant and refresh token ended, and the app reached again; every bad link and bad input gets
// its clear page and changes nothing.
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createMfa } from '../../src/people/mfa.js';
import { createUserStore } from '../../src/people/store.js';
import { Browser, completeSignIn, findForm, submitForm, submitPassword } from '../helpers/browser.js';
import { authorizationUrl, redeemCode, refreshTokens, signInForCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { newPerson, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, startTwoInstances, type TestGatehouse } from '../helpers/gatehouse.js';
import { captureLogger } from '../helpers/logs.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { codeAt, currentStep, enrolTotp } from '../helpers/totp.js';

const NEW_PASSWORD = 'a brand new passphrase 42';

describe.each(await flavours())('forgotten password on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;
  const logs = captureLogger('trace');

  const env = () => ({ SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', MAIL_LINKS_PER_ADDRESS: '3', MAIL_LINKS_PER_IP: '1000', MAIL_RETRY_DELAY_MS: '100' });

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, { env: env(), logger: logs.logger, clients: [webApp()] });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  /** Asks for a link for `email` in `browser`, from the sign-in page of an authorization request when `fromSignIn`. */
  async function askForLink(browser: Browser, email: string, { fromSignIn = false } = {}) {
    let forgot;
    if (fromSignIn) {
      const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
      const href = /href="(\/password\/forgot\?interaction=[^"]+)"/.exec(login.html)?.[1];
      expect(href, 'the sign-in page links to the forgotten-password page').toBeTruthy();
      forgot = await browser.visit(href as string);
    } else {
      forgot = await browser.visit('/password/forgot');
    }
    expect(forgot.status).toBe(200);
    const started = performance.now();
    const answer = await submitForm(browser, forgot, '/password/forgot', { email });
    return { answer, elapsedMs: performance.now() - started };
  }

  /** The mail that arrives next, and the link in it. */
  async function nextMail(count: number) {
    const mail = await smtp.waitFor(count);
    await server.gatehouse.outbox.drain();
    return { mail, link: linkIn(mail.text, `${server.issuer}/password/reset?token=`) };
  }

  const verifies = async (email: string, password: string) => {
    const user = await createUserStore(server.gatehouse.db).findByEmail(email);
    return bcrypt.compare(password, user?.passwordHash ?? '');
  };

  it('mails a link that sets a new password once, ends every other session and token, and goes on to the app', async () => {
    const person = await server.addPerson();
    // Signed in elsewhere, with a refresh token.
    const elsewhere = new Browser(server.issuer);
    const { code, verifier } = await signInForCode(elsewhere, server.issuer, WEB_APP, person);
    const { body: tokens } = await redeemCode(server.issuer, WEB_APP, code, verifier);
    expect(tokens.refresh_token).toEqual(expect.any(String));

    const browser = new Browser(server.issuer);
    const before = smtp.received.length;
    const { answer } = await askForLink(browser, person.email.toUpperCase(), { fromSignIn: true });
    expect(answer.status).toBe(200);
    expect(answer.html).toContain('Check your mail');

    const { mail, link } = await nextMail(before + 1);
    expect(mail.to).toEqual([person.email]);
    expect(mail.subject).toBe('Reset your Gatehouse password');
    expect(mail.html).toContain(link.replace(/&/g, '&amp;'));
    expect(mail.html).toContain(person.name);
    // No remote resources: no image without a logo, no other origin.
    expect(mail.html).not.toMatch(/<img|<script|src=/);
    for (const href of mail.html.match(/href="[^"]+"/g) ?? []) expect(href).toMatch(new RegExp(`^href="${server.issuer}/`));

    const form = await browser.visit(link);
    expect(form.status).toBe(200);
    expect(form.headers.get('referrer-policy')).toBe('no-referrer');
    expect(form.headers.get('cache-control')).toBe('no-store');
    const done = await submitForm(browser, form, '/password/reset', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(await verifies(person.email, NEW_PASSWORD)).toBe(true);

    // Everything the old password opened is closed.
    expect((await refreshTokens(server.issuer, WEB_APP, tokens.refresh_token as string)).body.error).toBe('invalid_grant');
    const silent = await elsewhere.visit(authorizationUrl(server.issuer, WEB_APP, { prompt: 'none' }).url.href);
    expect(silent.redirectedTo?.searchParams.get('error')).toBe('login_required');

    // On to the app: the sign-in page of the authorization request it began in.
    const continueTo = /href="(\/interaction\/[^"]+)"/.exec(done.html)?.[1] as string;
    const login = await browser.visit(continueTo);
    const wrong = await submitPassword(browser, login, person);
    expect(wrong.status).toBe(401);
    const callback = await completeSignIn(browser, wrong, { email: person.email, password: NEW_PASSWORD });
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));

    // The link works once.
    const again = await browser.visit(link);
    expect(again.status).toBe(400);
    expect(again.html).toContain('This link does not work');

    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: server.idOf(person), type: { startsWith: 'password.' } }, orderBy: { at: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['password.reset_requested', 'password.reset']);
    expect(events[1]?.details).toMatchObject({ via: 'mail', sessions_ended: 1, grants_ended: 1 });
    // The link's secret is in no log line.
    expect(logs.text()).not.toContain(new URL(link).searchParams.get('token'));
  });

  it('answers an unknown address and a disabled person exactly as a known one, and mails neither', async () => {
    const known = await server.addPerson();
    const disabled = await server.addPerson();
    await createUserStore(server.gatehouse.db).update(server.idOf(disabled), { disabled: true });
    const answers = [];
    for (const email of [known.email, 'nobody-here@example.com', disabled.email]) {
      const { answer } = await askForLink(new Browser(server.issuer), email);
      answers.push({ status: answer.status, html: answer.html.replaceAll(email, 'EMAIL') });
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    await server.gatehouse.outbox.drain();
    const toThem = smtp.received.filter((mail) => mail.to.includes('nobody-here@example.com') || mail.to.includes(disabled.email));
    expect(toThem).toEqual([]);
    expect(smtp.received.filter((mail) => mail.to.includes(known.email))).toHaveLength(1);
  });

  it('a newer link supersedes the older; an expired, forged or malformed link gets the clear page and changes nothing', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    await askForLink(browser, person.email);
    const first = await nextMail(smtp.received.length);
    await askForLink(browser, person.email);
    const second = await nextMail(smtp.received.length);
    expect(second.link).not.toBe(first.link);

    const forged = `${server.issuer}/password/reset?token=${'A'.repeat(43)}`;
    for (const bad of [first.link, forged, `${server.issuer}/password/reset?token=x`, `${server.issuer}/password/reset`]) {
      const page = await browser.visit(bad);
      expect(page.status, bad).toBe(400);
      expect(page.html).toContain('This link does not work');
    }
    // Posting with a superseded token changes nothing either.
    const form = findForm((await browser.visit(second.link)).html, '/password/reset');
    const refused = await browser.visit('/password/reset', { form: { ...form.fields, token: new URL(first.link).searchParams.get('token') as string, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD } });
    expect(refused.status).toBe(400);
    expect(await verifies(person.email, person.password)).toBe(true);

    // Expired: the same clear page.
    await server.gatehouse.db.prisma.accountLink.updateMany({ where: { userId: server.idOf(person) }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await browser.visit(second.link)).status).toBe(400);
    expect(await verifies(person.email, person.password)).toBe(true);
  });

  it('keeps the link usable after a refused password (policy, mismatch, missing form token), and changes nothing', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    await askForLink(browser, person.email);
    const { link } = await nextMail(smtp.received.length);
    const form = await browser.visit(link);
    for (const [fields, message] of [
      [{ password: 'short', password_confirm: 'short' }, 'at least'],
      [{ password: NEW_PASSWORD, password_confirm: `${NEW_PASSWORD}!` }, 'not the same'],
      [{ password: '', password_confirm: '' }, 'Enter a new password'],
      [{ password: person.email, password_confirm: person.email }, ''],
    ] as const) {
      const page = await submitForm(browser, form, '/password/reset', fields);
      expect(page.status).toBe(400);
      expect(page.html).toContain(message);
    }
    const forged = await browser.visit('/password/reset', { form: { ...findForm(form.html, '/password/reset').fields, csrf_token: 'forged', password: NEW_PASSWORD, password_confirm: NEW_PASSWORD } });
    expect(forged.status).toBe(403);
    expect(await verifies(person.email, person.password)).toBe(true);
    expect((await submitForm(browser, form, '/password/reset', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD })).status).toBe(200);
  });

  it('refuses a request without its form token or with a bad address, and sends nothing', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    const sent = smtp.received.length;
    const forgot = await browser.visit('/password/forgot');
    expect((await browser.visit('/password/forgot', { form: { email: person.email } })).status).toBe(403);
    expect((await browser.visit('/password/forgot', { form: { ...findForm(forgot.html, '/password/forgot').fields, csrf_token: 'x'.repeat(43), email: person.email } })).status).toBe(403);
    for (const email of ['', 'not-an-address', `${'a'.repeat(320)}@example.com`]) {
      const page = await submitForm(browser, forgot, '/password/forgot', { email });
      expect(page.status).toBe(400);
      expect(page.html).toContain('Enter the email address of your account');
    }
    await server.gatehouse.outbox.drain();
    expect(smtp.received.length).toBe(sent);
  });

  it('sends an address at most MAIL_LINKS_PER_ADDRESS links per window, answering the same', async () => {
    const person = await server.addPerson();
    const before = smtp.received.length;
    for (let n = 0; n < 4; n++) expect((await askForLink(new Browser(server.issuer), person.email)).answer.status).toBe(200);
    await server.gatehouse.outbox.drain();
    expect(smtp.received.slice(before).filter((mail) => mail.to.includes(person.email))).toHaveLength(3);
  });

  it('still asks for the second factor after a reset', async () => {
    const person = await server.addPerson();
    const mfa = createMfa(server.gatehouse.db, { secrets: server.config.secrets, audit: createAuditLog(server.gatehouse.db, createLogger(server.config)) });
    const { secret, step } = await enrolTotp(mfa, server.idOf(person));
    const browser = new Browser(server.issuer);
    await askForLink(browser, person.email, { fromSignIn: true });
    const { link } = await nextMail(smtp.received.length);
    const done = await submitForm(browser, await browser.visit(link), '/password/reset', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    const login = await browser.visit(/href="(\/interaction\/[^"]+)"/.exec(done.html)?.[1] as string);
    const codePage = await submitPassword(browser, login, { email: person.email, password: NEW_PASSWORD });
    expect(codePage.html).toContain('/mfa"');
    const code = await codeAt(secret, Math.max(step + 1, currentStep()));
    const after = await submitForm(browser, codePage, '/mfa', { code });
    expect(after.redirectedTo ?? after.html.includes('/confirm')).toBeTruthy();
  });

  it('writes the mail in the person’s language', async () => {
    const person = newPerson();
    const id = await server.addUser(person);
    await createUserStore(server.gatehouse.db).update(id, { locale: 'ko-KR' });
    await askForLink(new Browser(server.issuer), person.email);
    const { mail } = await nextMail(smtp.received.length);
    expect(mail.subject).toBe('Gatehouse 비밀번호 재설정');
    expect(mail.text).toContain('새 비밀번호');
  });
});

describe.each(await flavours())('forgotten password with limits and two instances on %s', (flavour) => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterAll(async () => smtp?.close());
  beforeEach(() => void smtp.received.splice(0));

  it('two instances on one database send each mail exactly once', async () => {
    const env = { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', MAIL_LINKS_PER_IP: '1000' };
    const [one, two] = await startTwoInstances(flavour, { env });
    try {
      const people = await Promise.all(Array.from({ length: 6 }, () => one.addPerson()));
      await Promise.all(people.map(async (person, i) => {
        const instance = i % 2 ? two : one;
        const browser = new Browser(instance.issuer);
        const forgot = await browser.visit('/password/forgot');
        await submitForm(browser, forgot, '/password/forgot', { email: person.email });
      }));
      await smtp.waitFor(6);
      await Promise.all([one.gatehouse.outbox.drain(), two.gatehouse.outbox.drain()]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(smtp.received.map((mail) => mail.to[0]).sort()).toEqual(people.map((p) => p.email).sort());
      const metrics = await (await fetch(`${one.url}/metrics`)).text();
      expect(metrics).toMatch(/gatehouse_outbox_messages\{state="sent"\} 6/);
      expect(metrics).toMatch(/gatehouse_outbox_messages\{state="failed"\} 0/);
    } finally {
      await one.close();
    }
  });

  it('answers 429 once an IP is over MAIL_LINKS_PER_IP', async () => {
    const server = await startTestGatehouse(flavour, { env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', MAIL_LINKS_PER_IP: '2' } });
    try {
      const browser = new Browser(server.issuer);
      const statuses = [];
      for (let n = 0; n < 3; n++) statuses.push((await submitForm(browser, await browser.visit('/password/forgot'), '/password/forgot', { email: `x${n}@example.com` })).status);
      expect(statuses).toEqual([200, 200, 429]);
    } finally {
      await server.close();
    }
  });
});
