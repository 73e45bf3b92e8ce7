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
import { Browser, findForm, submitForm } from '../helpers/browser.js';
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
