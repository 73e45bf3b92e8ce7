// Email verification end to end against a real SMTP server, on SQLite and PostgreSQL: changing a
// person's address (the admin API's and CLI's updateUser) makes it unverified, mails a link to the
// new address and a notice to the old; only following that link verifies it; an administrator
// can still mark an address verified; every bad link gets the clear page and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { accountMailOf } from '../../src/http/mail-renderer.js';
import { updateUser, type UserManagementDeps } from '../../src/people/service.js';
import { createUserStore } from '../../src/people/store.js';
import { Browser, completeSignIn, findForm, submitForm, submitPassword } from '../helpers/browser.js';
import { authorizationUrl } from '../helpers/code-flow.js';
import { newPerson, WEB_APP, webApp } from '../helpers/fixtures.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

describe.each(await flavours())('email verification on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;
  let deps: UserManagementDeps;
  const ADMIN = { via: 'admin' as const, clientId: 'admin-cli' };

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, { env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true' } });
    const { db } = server.gatehouse;
    deps = { db, audit: createAuditLog(db, createLogger(server.config)), bcryptCost: 4, passwordMinLength: 10, mail: accountMailOf(server.config, server.gatehouse.outbox) };
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  const verified = async (id: string) => (await createUserStore(server.gatehouse.db).findById(id))?.emailVerified;

  /** Changes the person's address and returns the verification link and the notice that arrived. */
  async function changeEmail(id: string, email: string) {
    const before = smtp.received.length;
    const view = await updateUser(deps, id, { email }, ADMIN);
    await smtp.waitFor(before + 2);
    await server.gatehouse.outbox.drain();
    const mails = smtp.received.slice(before);
    const verification = mails.find((mail) => mail.to.includes(email));
    const notice = mails.find((mail) => !mail.to.includes(email));
    return { view, link: linkIn(verification?.text ?? '', `${server.issuer}/email/verify?token=`), verification, notice };
  }

  it('makes a changed address unverified, mails it a link and the old address a notice; the link verifies it once', async () => {
    const person = await server.addPerson();
    const id = server.idOf(person);
    expect(await verified(id)).toBe(true);
    const { view, link, verification, notice } = await changeEmail(id, `new-${person.email}`);
    expect(view.email_verified).toBe(false);
    expect(await verified(id)).toBe(false);
    expect(verification?.subject).toBe('Confirm your email address for Gatehouse');
    expect(notice?.to).toEqual([person.email]);
    expect(notice?.text).toContain(`new-${person.email}`);

    const browser = new Browser(server.issuer);
    const page = await browser.visit(link);
    expect(page.status).toBe(200);
    // Opening the link (a mail scanner does) verifies nothing: only the button does.
    expect(await verified(id)).toBe(false);
    const done = await submitForm(browser, page, '/email/verify');
    expect(done.status).toBe(200);
    expect(await verified(id)).toBe(true);
    const again = await browser.visit(link);
    expect(again.status).toBe(400);
    expect(await server.gatehouse.db.prisma.auditEvent.count({ where: { accountId: id, type: 'email.verified' } })).toBe(1);
  });

  it('refuses a forged, superseded or stale link and a missing form token, verifying nothing', async () => {
    const person = await server.addPerson();
    const id = server.idOf(person);
    const first = await changeEmail(id, `first-${person.email}`);
    const second = await changeEmail(id, `second-${person.email}`);
    const browser = new Browser(server.issuer);
    for (const bad of [first.link, `${server.issuer}/email/verify?token=${'B'.repeat(43)}`, `${server.issuer}/email/verify`, `${server.issuer}/email/verify?token=%00`]) {
      const page = await browser.visit(bad);
      expect(page.status, bad).toBe(400);
      expect(page.html).toContain('This link does not work');
    }
    const page = await browser.visit(second.link);
    const form = findForm(page.html, '/email/verify');
    expect((await browser.visit('/email/verify', { form: { ...form.fields, csrf_token: 'forged' } })).status).toBe(403);
    expect((await browser.visit('/email/verify', { form: { ...form.fields, token: new URL(first.link).searchParams.get('token') as string } })).status).toBe(400);
    expect(await verified(id)).toBe(false);
    // Changed again after the link was sent: it proves an address the person no longer has.
    await changeEmail(id, `third-${person.email}`);
    expect((await browser.visit(second.link)).status).toBe(400);
    expect(await verified(id)).toBe(false);
  });

  it('lets an administrator mark an address verified, sending nothing', async () => {
    const person = await server.addPerson();
    const id = server.idOf(person);
    const before = smtp.received.length;
    const view = await updateUser(deps, id, { email: `admin-${person.email}`, email_verified: true }, ADMIN);
    expect(view.email_verified).toBe(true);
    await server.gatehouse.outbox.drain();
    expect(smtp.received.length).toBe(before);
  });
});

describe.each(await flavours())('REQUIRE_VERIFIED_EMAIL on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, { env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', REQUIRE_VERIFIED_EMAIL: 'true', MAIL_LINKS_PER_ADDRESS: '2' }, clients: [webApp()] });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  it('stops the sign-in to an app until the address is verified, with a limited "send the link again"', async () => {
    const person = newPerson();
    await server.addUser({ ...person, emailVerified: false });
    const browser = new Browser(server.issuer);
    const login = await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href);
    const gate = await submitPassword(browser, login, person);
    expect(gate.status).toBe(200);
    expect(gate.html).toContain('Confirm your email address first');

    const notYet = await submitForm(browser, gate, '/verify-email/continue');
    expect(notYet.status).toBe(400);
    expect(notYet.html).toContain('not confirmed yet');

    const before = smtp.received.length;
    const resent = await submitForm(browser, gate, '/verify-email/resend');
    expect(resent.status).toBe(200);
    expect(resent.html).toContain('A new link is on its way');
    const mail = await smtp.waitFor(before + 1);
    expect(mail.to).toEqual([person.email]);
    const link = linkIn(mail.text, `${server.issuer}/email/verify?token=`);
    // Limited: the second resend is still answered, the third is refused.
    expect((await submitForm(browser, gate, '/verify-email/resend')).status).toBe(200);
    expect((await submitForm(browser, gate, '/verify-email/resend')).status).toBe(429);

    // Verified in another tab; the stale second link no longer matters.
    const other = new Browser(server.issuer);
    await server.gatehouse.outbox.drain();
    const latest = linkIn(smtp.received.at(-1)?.text ?? '', `${server.issuer}/email/verify?token=`);
    expect((await submitForm(other, await other.visit(latest), '/email/verify')).status).toBe(200);
    expect((await other.visit(link)).status).toBe(400);

    const onward = await submitForm(browser, gate, '/verify-email/continue');
    const callback = await completeSignIn(browser, onward, person);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('lets a person with a verified address through as before', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    const callback = await completeSignIn(browser, await browser.visit(authorizationUrl(server.issuer, WEB_APP).url.href), person);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });
});
