// The console's people pages over HTTP: search (paged), create and invite, a person's page and
// every action on it, each audited with the administrator as the actor; refused input shows the
// form again with the field's error and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, submitPassword } from '../../helpers/browser.js';
import { addAdmin, signInToConsole, type ConsoleAgent, type ConsoleAdmin } from '../../helpers/console.js';
import { flavours } from '../../helpers/databases.js';
import { WRONG_PASSWORD } from '../../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';
import { enrolTotp } from '../../helpers/totp.js';
import { createMfa } from '../../../src/people/mfa.js';
import { createAuditLog } from '../../../src/audit/log.js';
import { createLogger } from '../../../src/core/logger.js';
import { createGroupStore } from '../../../src/groups/store.js';
import { listInvitations } from '../../../src/people/invitations.js';

const env = { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_DELAY_STEP_MS: '0', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3' };

describe.each(await flavours())('the console’s people pages on %s', (flavour) => {
  let server: TestGatehouse;
  let admin: ConsoleAdmin;
  let agent: ConsoleAgent;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env });
    admin = await addAdmin(server);
    agent = await signInToConsole(server, admin);
  });
  afterAll(async () => server?.close());

  const prisma = () => server.gatehouse.db.prisma;
  const user = (id: string) => prisma().user.findUniqueOrThrow({ where: { id } });
  const lastEvent = (type: string, accountId?: string) => prisma().auditEvent.findFirst({ where: { type, ...(accountId ? { accountId } : {}) }, orderBy: { at: 'desc' } });
  const page = (path: string) => agent.browser.visit(path);
  const post = (path: string, fields: Record<string, string> = {}) => agent.post(path, fields);
  /** The actor every console action is recorded with. */
  const byAdmin = () => ({ via: 'console', by: admin.email, admin_id: admin.id });

  it('searches people by email or name, a page of 25 at a time', async () => {
    for (let i = 0; i < 27; i++) await server.addUser({ email: `pager-${String(i).padStart(2, '0')}@example.com`, password: 'a long enough password 123', name: `Pager ${i}` });
    const first = await page('/console/people?q=pager-');
    expect(first.html).toContain('27 people found');
    expect(first.html).toContain('pager-00@example.com');
    expect(first.html).not.toContain('pager-26@example.com');
    expect(first.html).toContain('href="/console/people?q=pager-&amp;page=2"');
    const second = await page('/console/people?q=pager-&page=2');
    expect(second.html).toContain('pager-26@example.com');
    expect(second.html).toContain('rel="prev"');
    expect((await page('/console/people?q=Pager%2013')).html).toContain('pager-13@example.com');
  });

  it('creates an account, and shows the form again with the field’s error for bad input', async () => {
    const created = await post('/console/people', { email: 'new.person@example.com', name: 'New Person', password: 'a long enough password 123', email_verified: 'yes' });
    expect(created.status).toBe(303);
    const location = created.headers.get('location') as string;
    expect(location).toMatch(/^\/console\/people\/[^/?]+\?done=person_created$/);
    const shown = await page(location);
    expect(shown.html).toContain('The account was created.');
    expect(shown.html).toContain('new.person@example.com');
    const id = decodeURIComponent(location.split('/')[3]?.split('?')[0] as string);
    expect((await user(id)).emailVerified).toBe(true);
    expect((await lastEvent('user.created', id))?.details).toMatchObject(byAdmin());

    const badEmail = await post('/console/people', { email: 'not an email', name: 'X', password: 'a long enough password 123' });
    expect(badEmail.status).toBe(400);
    const html = await badEmail.text();
    expect(html).toMatch(/id="field-email"[^>]*aria-invalid="true"/);
    expect(html).toContain('value="X"');
    const weak = await post('/console/people', { email: 'weak@example.com', password: 'short' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toMatch(/id="field-password"[^>]*aria-invalid="true"/);
    expect(await prisma().user.count({ where: { email: { in: ['weak@example.com'] } } })).toBe(0);
    const taken = await post('/console/people', { email: 'new.person@example.com', password: 'a long enough password 123' });
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain('role="alert"');
  });

  it('invites by mail, and refuses an address that has an account', async () => {
    const form = await page('/console/people/new');
    expect(form.html).toContain('action="/console/people/invite"');
    const sent = await post('/console/people/invite', { email: 'invited@example.com', name: 'Invited', locale: 'ko' });
    expect(sent.status).toBe(303);
    expect(sent.headers.get('location')).toBe('/console/people?done=person_invited');
    expect((await listInvitations({ db: server.gatehouse.db })).map((i) => i.email)).toContain('invited@example.com');
    expect((await lastEvent('invitation.created'))?.details).toMatchObject(byAdmin());
    const refused = await post('/console/people/invite', { email: admin.email });
    expect(refused.status).toBe(409);
  });

  it('edits a profile; a bad field is shown with its error and nothing changes', async () => {
    const person = await server.addPerson();
    const saved = await post(`/console/people/${person.id}/profile`, { email: person.email, name: 'Renamed', given_name: 'Re', family_name: '', preferred_username: 'renamed', picture: '', locale: 'ko' });
    expect(saved.status).toBe(303);
    expect(await user(person.id)).toMatchObject({ name: 'Renamed', givenName: 'Re', preferredUsername: 'renamed', locale: 'ko', emailVerified: false });
    expect((await lastEvent('user.updated', person.id))?.details).toMatchObject(byAdmin());
    const refused = await post(`/console/people/${person.id}/profile`, { email: person.email, name: 'Other', picture: 'not a url' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(/id="field-picture"[^>]*aria-invalid="true"/);
    expect((await user(person.id)).name).toBe('Renamed');
    expect((await page('/console/people/nobody-at-all')).status).toBe(404);
  });

  it('makes a changed address unverified unless the administrator changes the verified box too', async () => {
    const person = await server.addPerson();
    await prisma().user.update({ where: { id: person.id }, data: { emailVerified: true } });
    const form = (email: string, box: Record<string, string>) => ({ email, name: '', given_name: '', family_name: '', preferred_username: '', picture: '', locale: '', ...box });
    // The box is shown ticked and left so: the new address is unproven.
    expect((await post(`/console/people/${person.id}/profile`, form(`moved-${person.email}`, { email_verified_shown: 'yes', email_verified: 'yes' }))).status).toBe(303);
    expect(await user(person.id)).toMatchObject({ email: `moved-${person.email}`, emailVerified: false });
    // Shown unticked, ticked by the administrator: they vouch for the address.
    expect((await post(`/console/people/${person.id}/profile`, form(`again-${person.email}`, { email_verified_shown: 'no', email_verified: 'yes' }))).status).toBe(303);
    expect(await user(person.id)).toMatchObject({ email: `again-${person.email}`, emailVerified: true });
  });

  it('disables and enables an account, ending its sessions', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    await submitPassword(browser, await browser.visit('/account'), person);
    expect(await prisma().oidcArtifact.count({ where: { model: 'Session', accountId: person.id } })).toBe(1);
    expect((await post(`/console/people/${person.id}/disabled`, { disabled: 'true' })).status).toBe(303);
    expect((await user(person.id)).disabled).toBe(true);
    expect(await prisma().oidcArtifact.count({ where: { model: 'Session', accountId: person.id } })).toBe(0);
    expect((await lastEvent('user.disabled', person.id))?.details).toMatchObject(byAdmin());
    expect((await page(`/console/people/${person.id}?done=person_disabled`)).html).toContain('Enable the account');
    expect((await post(`/console/people/${person.id}/disabled`, { disabled: 'false' })).status).toBe(303);
    expect((await user(person.id)).disabled).toBe(false);
    expect((await post(`/console/people/${person.id}/disabled`, { disabled: 'maybe' })).status).toBe(400);
  });

  it('sets a password (the policy applies) or sends a reset link by mail', async () => {
    const person = await server.addPerson();
    const before = (await user(person.id)).passwordHash;
    const weak = await post(`/console/people/${person.id}/password`, { password: 'short' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toMatch(/id="field-password"[^>]*aria-invalid="true"/);
    expect((await user(person.id)).passwordHash).toBe(before);
    expect((await post(`/console/people/${person.id}/password`, { password: 'a brand new password 456' })).status).toBe(303);
    expect((await user(person.id)).passwordHash).not.toBe(before);
    expect((await lastEvent('password.changed', person.id))?.details).toMatchObject(byAdmin());

    const reset = await post(`/console/people/${person.id}/password-reset`);
    expect(reset.headers.get('location')).toContain('done=reset_sent');
    expect(await prisma().outboxMessage.count({ where: { recipient: person.email, topic: 'password_reset' } })).toBe(1);
    expect((await lastEvent('password.reset_requested', person.id))?.details).toMatchObject(byAdmin());
  });

  it('resets two-step verification and removes a passkey', async () => {
    const person = await server.addPerson();
    await enrolTotp(createMfa(server.gatehouse.db, { secrets: server.config.secrets, audit: createAuditLog(server.gatehouse.db, createLogger(server.config)) }), person.id);
    expect((await page(`/console/people/${person.id}`)).html).toContain('Reset two-step verification');
    expect((await post(`/console/people/${person.id}/mfa/reset`)).headers.get('location')).toContain('done=mfa_reset');
    expect((await user(person.id)).totpEnabledAt).toBeNull();
    expect((await lastEvent('mfa.removed', person.id))?.details).toMatchObject(byAdmin());

    await prisma().passkey.create({ data: { id: 'pk-1', userId: person.id, credentialId: `cred-${person.id}`, publicKey: 'x', name: 'Old phone', deviceType: 'singleDevice' } });
    expect((await page(`/console/people/${person.id}`)).html).toContain('Remove the passkey Old phone');
    expect((await post(`/console/people/${person.id}/passkeys/pk-1/remove`)).status).toBe(303);
    expect(await prisma().passkey.count({ where: { userId: person.id } })).toBe(0);
    expect((await post(`/console/people/${person.id}/passkeys/pk-1/remove`)).status).toBe(404);
  });

  it('unlocks a person locked out by failed sign-ins', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    for (let i = 0; i < 3; i++) await submitPassword(browser, await browser.visit('/account'), { email: person.email, password: WRONG_PASSWORD });
    expect((await page('/console')).html).toContain(person.email);
    expect((await page(`/console/people/${person.id}`)).html).toContain('Locked out after too many failed attempts');
    expect((await post(`/console/people/${person.id}/unlock`)).headers.get('location')).toContain('done=unlocked');
    expect((await page(`/console/people/${person.id}`)).html).toContain('Not locked out');
    expect((await lastEvent('user.unlocked', person.id))?.details).toMatchObject(byAdmin());
    // Signing in works again.
    const signedIn = await submitPassword(browser, await browser.visit('/account'), person);
    expect(new URL(signedIn.url).pathname).toBe('/account');
  });

  it('lists a person’s sessions and ends one', async () => {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0' });
    await submitPassword(browser, await browser.visit('/account'), person);
    const shown = await page(`/console/people/${person.id}`);
    expect(shown.html).toContain('Firefox');
    const action = /action="(\/console\/people\/[^"]+\/sessions\/[^"]+\/end)"/.exec(shown.html)?.[1] as string;
    expect((await post(action)).status).toBe(303);
    expect(await prisma().oidcArtifact.count({ where: { model: 'Session', accountId: person.id } })).toBe(0);
    expect((await lastEvent('session.revoked', person.id))?.details).toMatchObject(byAdmin());
    expect((await post(action)).status).toBe(404);
  });

  it('sets a person’s groups exactly; an unknown group changes nothing', async () => {
    const person = await server.addPerson();
    const groups = createGroupStore(server.gatehouse.db);
    for (const name of ['staff', 'ops']) if (!(await groups.findByName(name))) await groups.create({ name, description: null });
    const body = new URLSearchParams([['csrf_token', await agent.csrfToken()], ['groups', 'staff'], ['groups', 'ops']]).toString();
    const saved = await agent.browser.request(`/console/people/${person.id}/groups`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(saved.status).toBe(303);
    expect(await groups.namesOf(person.id)).toEqual(['ops', 'staff']);
    expect((await lastEvent('user.groups_changed', person.id))?.details).toMatchObject(byAdmin());
    const refused = await post(`/console/people/${person.id}/groups`, { groups: 'no-such-group' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('no-such-group');
    expect(await groups.namesOf(person.id)).toEqual(['ops', 'staff']);
    expect((await post(`/console/people/${person.id}/groups`)).status).toBe(303);
    expect(await groups.namesOf(person.id)).toEqual([]);
  });
});
