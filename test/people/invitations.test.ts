// Invitations end to end, on SQLite and PostgreSQL, against a real SMTP server on 127.0.0.1: an
// administrator invites an address (admin API, CLI), the mail is read from the server, its link
// followed, a password chosen; the account exists with its address verified and the person signs
// in with it. Expired, revoked, used, superseded and forged links get the clear page and change
// nothing; an address that has an account is refused (409).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm, submitForm, submitPassword } from '../helpers/browser.js';
import { tokenRequest } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { credentialsOf, machineClient } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { captureLogger } from '../helpers/logs.js';
import { linkIn, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { createUserStore } from '../../src/people/store.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { accountMailOf } from '../../src/http/mail-renderer.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';

const PASSWORD = 'an invited person chooses this';

describe.each(await flavours())('invitations on %s', (flavour) => {
  let smtp: TestSmtpServer;
  let server: TestGatehouse;
  let token: string;
  const logs = captureLogger('trace');

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestGatehouse(flavour, {
      env: { SMTP_URL: smtp.url, SMTP_ALLOW_PLAINTEXT: 'true', MAIL_RETRY_DELAY_MS: '100' },
      logger: logs.logger,
      clients: [machineClient('ops', { scope: 'admin' }), { ...machineClient('wiki'), client_name: 'The Wiki', client_uri: 'https://wiki.example.com/' }],
    });
    const { body } = await tokenRequest(server.url, credentialsOf('ops'), { grant_type: 'client_credentials', scope: 'admin' });
    token = body.access_token as string;
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  async function admin(method: string, path: string, body?: unknown) {
    const response = await fetch(`${server.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  /** How many mails to each address the test has read. */
  const read = new Map<string, number>();
  /** The next unread mail to `email`, and its link. */
  async function mailTo(email: string) {
    const toIt = () => smtp.received.filter((m) => m.to.includes(email));
    const seen = read.get(email) ?? 0;
    const deadline = Date.now() + 15_000;
    while (toIt().length <= seen) {
      if (Date.now() > deadline) throw new Error(`no new mail to ${email}`);
      await server.gatehouse.outbox.drain();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    read.set(email, seen + 1);
    const mail = toIt()[seen]!;
    return { mail, link: linkIn(mail.text, `${server.issuer}/invitation?token=`) };
  }

  const userOf = (email: string) => createUserStore(server.gatehouse.db).findByEmail(email);
  const accept = (browser: Browser, page: { html: string }, password = PASSWORD) => submitForm(browser, page, '/invitation', { password, password_confirm: password });

  it('invite → mail → link → password → account with its address verified → sign in', async () => {
    const email = 'new.person@example.com';
    const created = await admin('POST', '/invitations', { email: 'New.Person@Example.com', name: 'New <Person>', client_id: 'wiki' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ email, name: 'New <Person>', client_id: 'wiki', status: 'pending', accepted_at: null });
    const { mail, link } = await mailTo(email);
    expect(mail.subject).toBe('You are invited to Gatehouse');
    expect(mail.html).toContain('New &lt;Person&gt;');
    expect(mail.html).not.toContain('New <Person>');
    expect(await userOf(email)).toBeNull();

    const browser = new Browser(server.issuer);
    const form = await browser.visit(link);
    expect(form.status).toBe(200);
    expect(form.headers.get('referrer-policy')).toBe('no-referrer');
    expect(form.headers.get('cache-control')).toBe('no-store');
    expect(form.html).toContain(email);
    // The password policy applies, and a refused password keeps the link usable.
    const short = await accept(browser, form, 'short');
    expect(short.status).toBe(400);
    expect(await userOf(email)).toBeNull();
    // On to the app the invitation names (its client_uri), the sign-in handoff in a cookie (invitation-sign-in.test.ts follows it).
    const done = await accept(browser, form);
    expect(done.redirectedTo?.href).toBe('https://wiki.example.com/');
    expect(browser.hasCookie('gatehouse.handoff')).toBe(true);

    const user = await userOf(email);
    expect(user).toMatchObject({ id: created.body.id, email, emailVerified: true, name: 'New <Person>' });
    const listed = await admin('GET', '/invitations?status=accepted');
    expect((listed.body.invitations as { id: string }[]).map((i) => i.id)).toContain(created.body.id);

    // The new password signs in, in another browser, the email filled in from login_hint.
    const elsewhere = new Browser(server.issuer);
    const login = await elsewhere.visit(`/account?${new URLSearchParams({ login_hint: email })}`);
    expect(login.html).toContain(`value="${email}"`);
    const account = await submitPassword(elsewhere, login, { email, password: PASSWORD });
    expect(account.status).toBe(200);
    expect(account.url).toContain('/account');
    expect(account.html).toContain(email);

    // Used: the clear page, nothing changes.
    const again = await browser.visit(link);
    expect(again.status).toBe(400);
    expect(again.html).toContain('This invitation does not work');

    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: created.body.id as string }, orderBy: { at: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['invitation.created', 'invitation.accepted', 'user.created']));
    expect(logs.text()).not.toContain(new URL(link).searchParams.get('token'));
  });

  it('a resend supersedes the old link; revoked, expired and forged links get the clear page and change nothing', async () => {
    const email = 'twice@example.com';
    const { body: invitation } = await admin('POST', '/invitations', { email });
    const first = await mailTo(email);
    const resent = await admin('POST', `/invitations/${invitation.id as string}/resend`, {});
    expect(resent.status).toBe(200);
    const second = await mailTo(email);
    expect(second.link).not.toBe(first.link);

    const browser = new Browser(server.issuer);
    const forged = `${server.issuer}/invitation?token=${'A'.repeat(43)}`;
    for (const bad of [first.link, forged, `${server.issuer}/invitation?token=x`, `${server.issuer}/invitation`]) {
      const page = await browser.visit(bad);
      expect(page.status, bad).toBe(400);
      expect(page.html).toContain('This invitation does not work');
    }
    // Posting the superseded token with a good form changes nothing.
    const form = findForm((await browser.visit(second.link)).html, '/invitation');
    const refused = await browser.visit('/invitation', { form: { ...form.fields, token: new URL(first.link).searchParams.get('token') as string, password: PASSWORD, password_confirm: PASSWORD } });
    expect(refused.status).toBe(400);
    // A forged form token neither.
    expect((await browser.visit('/invitation', { form: { ...form.fields, csrf_token: 'forged', password: PASSWORD, password_confirm: PASSWORD } })).status).toBe(403);
    expect(await userOf(email)).toBeNull();

    // Revoked.
    const revoked = await admin('POST', `/invitations/${invitation.id as string}/revoke`, {});
    expect(revoked.body).toMatchObject({ status: 'revoked' });
    expect((await browser.visit(second.link)).status).toBe(400);
    expect((await admin('POST', `/invitations/${invitation.id as string}/revoke`, {})).status).toBe(409);
    expect((await admin('POST', `/invitations/${invitation.id as string}/resend`, {})).status).toBe(409);

    // Expired: invited again, then its link runs out.
    const { body: third } = await admin('POST', '/invitations', { email });
    const { link } = await mailTo(email);
    await server.gatehouse.db.prisma.accountLink.updateMany({ where: { userId: third.id as string }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await admin('GET', '/invitations?status=expired')).body.invitations).toEqual(expect.arrayContaining([expect.objectContaining({ id: third.id })]));
    const expired = await browser.visit(link);
    expect(expired.status).toBe(400);
    expect(await userOf(email)).toBeNull();
    // An expired one may be sent again, and then works.
    expect((await admin('POST', `/invitations/${third.id as string}/resend`, {})).body).toMatchObject({ status: 'pending' });
    const fresh = await mailTo(email);
    // No app named: on to /account, signed in.
    const landed = await accept(browser, await browser.visit(fresh.link));
    expect(new URL(landed.url).pathname).toBe('/account');
    expect(landed.html).toContain(email);
    expect(await userOf(email)).toMatchObject({ id: third.id, emailVerified: true });
  });

  it('refuses an address that has an account or a pending invitation (409), and bad input (400), sending nothing', async () => {
    const person = await server.addPerson();
    const sent = smtp.received.length;
    const taken = await admin('POST', '/invitations', { email: person.email });
    expect(taken.status).toBe(409);
    expect(JSON.stringify(taken.body)).toContain('already exists');
    expect((await admin('POST', '/invitations', { email: 'not-an-address' })).status).toBe(400);
    expect((await admin('POST', '/invitations', { email: 'x@example.com', client_id: 'no-such-app' })).status).toBe(400);
    expect((await admin('POST', '/invitations', { email: 'x@example.com', extra: true })).status).toBe(400);
    expect((await admin('POST', '/invitations/nope/resend', {})).status).toBe(404);
    expect((await admin('GET', '/invitations?status=nope')).status).toBe(400);
    const pending = await admin('POST', '/invitations', { email: 'pending@example.com' });
    expect(pending.status).toBe(201);
    expect((await admin('POST', '/invitations', { email: 'pending@example.com' })).status).toBe(409);
    await server.gatehouse.outbox.drain();
    expect(smtp.received.slice(sent).map((m) => m.to[0])).toEqual(['pending@example.com']);

    // An account made meanwhile for an invited address: the link no longer works.
    const { link } = await mailTo('pending@example.com');
    await server.addUser({ email: 'pending@example.com', password: PASSWORD });
    expect((await new Browser(server.issuer).visit(link)).status).toBe(400);
  });

  it('the CLI invites, lists, resends and revokes', async () => {
    const env = { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET, BCRYPT_COST: '4', ISSUER: server.issuer, AUTO_MIGRATE: 'false', LOG_LEVEL: 'silent' };
    const invited = await runCli(['users', 'invite', 'cli.person@example.com', '--name', 'Cli Person', '--locale', 'ko', '--json'], env);
    expect(invited.code, invited.stderr).toBe(0);
    const invitation = JSON.parse(invited.stdout) as { id: string; status: string };
    expect(invitation.status).toBe('pending');
    const { mail, link } = await mailTo('cli.person@example.com');
    expect(mail.subject).toBe('Gatehouse에 초대되었습니다');

    const listed = await runCli(['users', 'invitations', '--status', 'pending'], env);
    expect(listed.stdout).toContain('cli.person@example.com');
    const resent = await runCli(['users', 'resend-invitation', invitation.id, '--json'], env);
    expect(resent.code, resent.stderr).toBe(0);
    const second = await mailTo('cli.person@example.com');
    expect(second.link).not.toBe(link);
    const revoked = await runCli(['users', 'revoke-invitation', invitation.id, '--json'], env);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ status: 'revoked' });
    expect((await new Browser(server.issuer).visit(second.link)).status).toBe(400);

    const taken = await runCli(['users', 'invite', (await server.addPerson()).email], env);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('already exists');
  });

  it('the seed file invites, and running it again sends nothing', async () => {
    const person = await server.addPerson();
    const parsed = parseSeedFile({ invitations: [{ email: 'Seeded@example.com', name: 'Seeded', client_id: 'wiki' }, { email: person.email }] });
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const options = { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]), mail: accountMailOf(server.config, server.gatehouse.outbox) };
    const first = await applySeed(server.gatehouse.db, parsed.data, options);
    expect(first.invitations).toEqual({ created: ['seeded@example.com'], updated: [], unchanged: [person.email] });
    const { link } = await mailTo('seeded@example.com');
    const again = await applySeed(server.gatehouse.db, parsed.data, options);
    expect(again.invitations).toEqual({ created: [], updated: [], unchanged: ['seeded@example.com', person.email] });
    await server.gatehouse.outbox.drain();
    expect(smtp.received.filter((m) => m.to.includes('seeded@example.com'))).toHaveLength(1);
    const browser = new Browser(server.issuer);
    expect((await accept(browser, await browser.visit(link))).redirectedTo?.href).toBe('https://wiki.example.com/');
    expect(await userOf('seeded@example.com')).toMatchObject({ emailVerified: true, name: 'Seeded' });

    // A bad entry: named, and nothing written.
    expect(parseSeedFile({ invitations: [{ email: 'x@example.com' }, { email: 'X@example.com', extra: 1 }] })).toMatchObject({ ok: false, problems: ['invitations[1].extra: unknown field', 'invitations[1].email: duplicates invitations[0].email'] });
    const missingClient = parseSeedFile({ invitations: [{ email: 'nowhere@example.com', client_id: 'no-such-app' }] });
    if (!missingClient.ok) throw new Error('parsed');
    await expect(applySeed(server.gatehouse.db, missingClient.data, options)).rejects.toThrow('invitations[0].client_id: there is no client no-such-app');
    expect(await server.gatehouse.db.prisma.accountLink.count({ where: { email: 'nowhere@example.com' } })).toBe(0);
  });
});
