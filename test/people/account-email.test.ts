// Changing the email address on the account page, end to end against a real SMTP server, on
// SQLite and PostgreSQL: it needs the password (a wrong one is refused even within a recent
// sign-in) or a recent sign-in; the new address is unverified, gets a link, the old one a
// notice, the change is audited, and the link verifies the new address. Bad inputs change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore } from '../../src/people/store.js';
import { Browser, submitForm, submitPassword } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

describe.each(await flavours())('changing the email on the account page on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, { env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', SIGN_IN_DELAY_STEP_MS: '0' } });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  async function signedInAccountPage(person: { email: string; password: string }) {
    const browser = new Browser(server.issuer);
    const page = await submitPassword(browser, await browser.visit('/account'), person);
    expect(new URL(page.url).pathname).toBe('/account');
    return { browser, page };
  }
  const userOf = (id: string) => createUserStore(server.gatehouse.db).findById(id);

  it('changes the address with the password, mails a link to the new one and a notice to the old, and the link verifies it', async () => {
    const person = await server.addPerson();
    const id = server.idOf(person);
    const { browser, page } = await signedInAccountPage(person);
    expect(page.html).toContain('Change your email address');
    const newEmail = `moved-${person.email}`;
    const before = smtp.received.length;
    const done = await submitForm(browser, page, '/account/email', { email: newEmail.toUpperCase(), password: person.password });
    expect(done.status).toBe(200);
    expect(new URL(done.url).search).toBe('?done=email_changed');
    expect(done.html).toContain('Email address changed.');
    expect(done.html).toContain(newEmail);
    expect(await userOf(id)).toMatchObject({ email: newEmail, emailVerified: false });
    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: id, type: 'email.changed' } });
    expect(events).toHaveLength(1);

    await smtp.waitFor(before + 2);
    await server.gatehouse.outbox.drain();
    const mails = smtp.received.slice(before);
    expect(mails).toHaveLength(2);
    const verification = mails.find((mail) => mail.to.includes(newEmail));
    const notice = mails.find((mail) => mail.to.includes(person.email));
    expect(notice?.subject).toBe('The email address of your Gatehouse account changed');
    expect(notice?.text).toContain(newEmail);
    const link = linkIn(verification?.text ?? '', `${server.issuer}/email/verify?token=`);
    const other = new Browser(server.issuer);
    expect((await submitForm(other, await other.visit(link), '/email/verify')).status).toBe(200);
    expect((await userOf(id))?.emailVerified).toBe(true);

    // The person now signs in with the new address.
    await signedInAccountPage({ email: newEmail, password: person.password });
  });

  it('within a recent sign-in needs no password, but refuses a wrong one', async () => {
    const person = await server.addPerson();
    const id = server.idOf(person);
    const { browser, page } = await signedInAccountPage(person);
    const wrong = await submitForm(browser, page, '/account/email', { email: `wrong-${person.email}`, password: 'not the password at all' });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('Your current password is not right.');
    expect((await userOf(id))?.email).toBe(person.email);
    const done = await submitForm(browser, page, '/account/email', { email: `recent-${person.email}` });
    expect(done.status).toBe(200);
    expect((await userOf(id))?.email).toBe(`recent-${person.email}`);
  });

  it('refuses a bad, unchanged or taken address and a forged form token, changing nothing and sending nothing', async () => {
    const person = await server.addPerson();
    const someoneElse = await server.addPerson();
    const id = server.idOf(person);
    const { browser, page } = await signedInAccountPage(person);
    await server.gatehouse.outbox.drain();
    const before = smtp.received.length;
    const cases: [Record<string, string>, number, string][] = [
      [{ email: 'not-an-address', password: person.password }, 400, 'Enter a valid email address.'],
      [{ email: `${'x'.repeat(320)}@example.com`, password: person.password }, 400, 'Enter a valid email address.'],
      [{ email: person.email.toUpperCase(), password: person.password }, 400, 'That is already your email address.'],
      [{ email: someoneElse.email, password: person.password }, 409, 'Another account uses that email address.'],
    ];
    for (const [fields, status, message] of cases) {
      const answer = await submitForm(browser, page, '/account/email', fields);
      expect(answer.status, JSON.stringify(fields)).toBe(status);
      expect(answer.html).toContain(message);
      expect(answer.html).toContain('id="email-error"');
    }
    expect((await submitForm(browser, page, '/account/email', { email: `forged-${person.email}`, csrf_token: 'forged' })).status).toBe(403);
    expect(await userOf(id)).toMatchObject({ email: person.email, emailVerified: true });
    expect(await server.gatehouse.db.prisma.auditEvent.count({ where: { accountId: id, type: 'email.changed' } })).toBe(0);
    await server.gatehouse.outbox.drain();
    expect(smtp.received.length).toBe(before);
  });
});
