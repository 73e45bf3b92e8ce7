// Sign-up end to end against a real SMTP server, on SQLite and PostgreSQL: "Create an account" on
// the sign-in page, the form, the verification mail, its link, and the first sign-in to an app,
// which is refused until the address is verified; an address that has an account gets the same
// page and its owner a notice; a refused domain, the per-IP limit and bad inputs change nothing;
// SIGNUP=closed and invite offer nothing and answer /signup with 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore } from '../../src/people/store.js';
import { Browser, completeSignIn, submitForm, submitPassword } from '../helpers/browser.js';
import { authorizationUrl } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const PASSWORD = 'a sign-up passphrase 42';
let serial = 0;
const newAddress = (domain = 'example.com') => `signup-${process.pid}-${++serial}@${domain}`;

describe.each(await flavours())('sign-up on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, {
      env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', SIGNUP: 'open', SIGNUP_DOMAINS: 'example.com, Example.ORG', SIGNUPS_PER_IP: '7' },
      clients: [webApp()],
    });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  const users = () => createUserStore(server.gatehouse.db);

  /** The sign-up page reached from the sign-in page of an authorization request. */
  async function openSignUp(browser: Browser) {
    const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
    const href = /href="(\/signup\?interaction=[^"]+)"/.exec(login.html)?.[1];
    expect(href, 'the sign-in page offers "Create an account"').toBeTruthy();
    expect(login.html).toContain('Create an account');
    const page = await browser.visit(href as string);
    expect(page.status).toBe(200);
    return { login, page };
  }

  it('creates an unverified account that must follow its mailed link before signing in to an app', async () => {
    const browser = new Browser(server.issuer);
    const { login, page } = await openSignUp(browser);
    const email = newAddress();
    const before = smtp.received.length;
    const sent = await submitForm(browser, page, '/signup', { email, name: 'New <b>Person</b>', password: PASSWORD, password_confirm: PASSWORD });
    expect(sent.status).toBe(200);
    expect(sent.html).toContain('Check your mail');
    const user = await users().findByEmail(email);
    expect(user).toMatchObject({ email, emailVerified: false, name: 'New <b>Person</b>' });
    const mail = await smtp.waitFor(before + 1);
    await server.gatehouse.outbox.drain();
    expect(mail.to).toEqual([email]);
    expect(mail.subject).toBe('Confirm your email address for Gatehouse');
    expect(mail.html).not.toContain('<b>Person</b>');
    const link = linkIn(mail.text, `${server.issuer}/email/verify?token=`);
    expect(await server.gatehouse.db.prisma.auditEvent.count({ where: { accountId: user?.id as string, type: 'user.created' } })).toBe(1);

    // Not verified yet: the first sign-in to an app stops at the email gate.
    const gate = await submitPassword(browser, login, { email, password: PASSWORD });
    expect(gate.status).toBe(200);
    expect(gate.html).toContain('Confirm your email address first');

    const verifier = new Browser(server.issuer);
    expect((await submitForm(verifier, await verifier.visit(link), '/email/verify')).status).toBe(200);
    expect((await users().findByEmail(email))?.emailVerified).toBe(true);

    const onward = await submitForm(browser, gate, '/verify-email/continue');
    const callback = await completeSignIn(browser, onward, { email, password: PASSWORD });
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('answers an address that has an account with the same page, and mails its owner a notice instead', async () => {
    const person = await server.addPerson();
    const hashBefore = (await users().findByEmail(person.email))?.passwordHash;
    const browser = new Browser(server.issuer);
    const { page } = await openSignUp(browser);
    const before = smtp.received.length;
    const sent = await submitForm(browser, page, '/signup', { email: person.email.toUpperCase(), password: PASSWORD, password_confirm: PASSWORD });
    expect(sent.status).toBe(200);
    expect(sent.html).toContain('Check your mail');
    const notice = await smtp.waitFor(before + 1);
    await server.gatehouse.outbox.drain();
    expect(notice.to).toEqual([person.email]);
    expect(notice.subject).toBe('Someone tried to create a Gatehouse account with your address');
    expect(notice.text).not.toContain('/email/verify');
    expect(smtp.received.length).toBe(before + 1);
    const after = await users().findByEmail(person.email);
    expect(after?.passwordHash).toBe(hashBefore);
    expect(after?.emailVerified).toBe(true);
  });

  it('refuses a domain outside SIGNUP_DOMAINS and bad inputs with a clear error, creating nothing', async () => {
    const browser = new Browser(server.issuer);
    const { page } = await openSignUp(browser);
    const before = smtp.received.length;
    const cases: [Record<string, string>, number, string][] = [
      [{ email: newAddress('elsewhere.test'), password: PASSWORD, password_confirm: PASSWORD }, 400, 'this email domain cannot'],
      [{ email: 'not-an-address', password: PASSWORD, password_confirm: PASSWORD }, 400, 'Enter a valid email address.'],
      [{ email: newAddress(), password: '', password_confirm: '' }, 400, 'Enter a new password.'],
      [{ email: newAddress(), password: PASSWORD, password_confirm: `${PASSWORD}!` }, 400, 'The two passwords are not the same.'],
      [{ email: newAddress(), password: 'short', password_confirm: 'short' }, 400, 'at least'],
      [{ email: newAddress(), name: 'n'.repeat(201), password: PASSWORD, password_confirm: PASSWORD }, 400, 'The name is too long'],
      [{ email: newAddress(), password: PASSWORD, password_confirm: PASSWORD, csrf_token: 'forged' }, 403, 'This form has expired.'],
    ];
    for (const [fields, status, message] of cases) {
      const answer = await submitForm(browser, page, '/signup', fields);
      expect(answer.status, JSON.stringify(fields)).toBe(status);
      expect(answer.html).toContain(message);
      expect(answer.html).toContain('id="form-error"');
      expect(await users().findByEmail(fields.email as string)).toBeNull();
    }
    // The allowlist matches domains in any case.
    const allowed = newAddress('EXAMPLE.org');
    expect((await submitForm(browser, page, '/signup', { email: allowed, password: PASSWORD, password_confirm: PASSWORD })).status).toBe(200);
    expect(await users().findByEmail(allowed)).not.toBeNull();
    await smtp.waitFor(before + 1);
    await server.gatehouse.outbox.drain();
    expect(smtp.received.length).toBe(before + 1);
  });

  it('speaks Korean, in the page and in the mail, when the browser asks for it', async () => {
    const browser = new Browser(server.issuer, { 'accept-language': 'ko' });
    const page = await browser.visit('/signup');
    expect(page.status).toBe(200);
    expect(page.html).toContain('<html lang="ko">');
    expect(page.html).toContain('<h1>계정 만들기</h1>');
    const email = newAddress();
    const before = smtp.received.length;
    const sent = await submitForm(browser, page, '/signup', { email, password: PASSWORD, password_confirm: PASSWORD });
    expect(sent.html).toContain('메일을 확인하십시오');
    const mail = await smtp.waitFor(before + 1);
    await server.gatehouse.outbox.drain();
    expect(mail.to).toEqual([email]);
    expect(mail.subject).toBe('Gatehouse 이메일 주소 확인');
    expect((await users().findByEmail(email))?.locale).toBe('ko');
  });

  it('with SIGNUP=open, also stops an unverified account an administrator created (the gate applies to every unverified address)', async () => {
    const person = { email: newAddress(), password: PASSWORD, name: 'Made by an admin' };
    await server.addUser({ ...person, emailVerified: false });
    const browser = new Browser(server.issuer);
    const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
    const gate = await submitPassword(browser, login, person);
    expect(gate.html).toContain('Confirm your email address first');
  });

  it('limits the accounts one IP address may create (SIGNUPS_PER_IP)', async () => {
    const browser = new Browser(server.issuer);
    const { page } = await openSignUp(browser);
    const statuses: number[] = [];
    const emails: string[] = [];
    // The earlier tests of this file used part of the allowance.
    for (let i = 0; i < 6; i++) {
      const email = newAddress();
      emails.push(email);
      statuses.push((await submitForm(browser, page, '/signup', { email, password: PASSWORD, password_confirm: PASSWORD })).status);
    }
    expect(statuses).toContain(429);
    const refused = emails.filter((_, i) => statuses[i] === 429);
    for (const email of refused) expect(await users().findByEmail(email)).toBeNull();
    const last = await submitForm(browser, page, '/signup', { email: newAddress(), password: PASSWORD, password_confirm: PASSWORD });
    expect(last.status).toBe(429);
    expect(last.html).toContain('Too many requests came from your network');
  });
});

describe.each(await flavours())('sign-up not open on %s', (flavour) => {
  for (const mode of ['closed', 'invite', undefined]) {
    it(`SIGNUP=${mode ?? '(unset)'}: the sign-in page offers no sign-up and /signup is a 404`, async () => {
      const server = await startTestGatehouse(flavour, { env: mode ? { SIGNUP: mode } : {}, clients: [webApp()] });
      try {
        const browser = new Browser(server.issuer);
        const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
        expect(login.status).toBe(200);
        expect(login.html).not.toContain('/signup');
        expect((await browser.visit('/signup')).status).toBe(404);
        expect((await browser.visit('/signup', { form: { email: newAddress(), password: PASSWORD, password_confirm: PASSWORD } })).status).toBe(404);
      } finally {
        await server.close();
      }
    });
  }
});
