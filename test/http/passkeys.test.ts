// Passkeys over HTTP, without a browser: a software authenticator (helpers/authenticator.ts, a
// real ES256 implementation of the protocol) adds passkeys on the account page, signs in with
// them without a password and as the second step, and spoils one part of an answer at a time.
// Every bad answer gets the page's clear error and changes nothing: no passkey stored, no
// session, the stored counter as it was. Gatehouse runs with ISSUER=http://localhost:PORT.
import { decodeJwt } from 'jose';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventType } from '../../src/audit/store.js';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { ACR_MFA } from '../../src/oidc/provider.js';
import { createMfa } from '../../src/people/mfa.js';
import { SoftwareAuthenticator, type Spoil } from '../helpers/authenticator.js';
import { allowAccess, Browser, findForm, submitForm, submitPassword, type Page } from '../helpers/browser.js';
import { authorizationUrl, redeemCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { secretFor, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { enrolTotp } from '../helpers/totp.js';

const REFUSED = 'That passkey could not be used.';
const MFA_APP = { id: 'mfa-app', secret: secretFor('mfa-app'), redirectUri: 'http://app.test/mfa-callback' };

describe.each(await flavours())('passkeys on %s', (flavour) => {
  let server: TestGatehouse;

  const env = { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '4', SIGN_IN_DELAY_STEP_MS: '0' };
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, {
      env,
      localhostIssuer: true,
      clients: [webApp(), webApp({ client_id: MFA_APP.id, client_secret: MFA_APP.secret, redirect_uris: [MFA_APP.redirectUri], gatehouse_require_mfa: true })],
    });
  });
  afterAll(async () => server?.close());

  const db = () => server.gatehouse.db.prisma;
  const events = (accountId: string, type: AuditEventType) => db().auditEvent.findMany({ where: { accountId, type } });
  const optionsUrlOf = (html: string) => {
    const url = /data-options-url="([^"]+)"/.exec(html)?.[1];
    if (!url) throw new Error(`no passkey options on the page:\n${html.slice(0, 1500)}`);
    return url;
  };

  /** A new person signed in to /account with their password. */
  async function personOnAccountPage() {
    const person = await server.addPerson();
    const browser = new Browser(server.issuer);
    const page = await submitPassword(browser, await browser.visit('/account'), person);
    expect(new URL(page.url).pathname).toBe('/account');
    return { person, browser, page, authenticator: new SoftwareAuthenticator(server.issuer) };
  }

  async function registrationOptions(browser: Browser, page: Page, password = '') {
    const form = findForm(page.html, '/account/passkeys/add');
    const response = await browser.request(optionsUrlOf(page.html), { form: { csrf_token: form.fields.csrf_token ?? '', password } });
    return { status: response.status, options: (await response.json()) as PublicKeyCredentialCreationOptionsJSON & { error?: string } };
  }

  /** Adds a passkey the way the page's script does; the page it ends on. */
  async function addPasskey(browser: Browser, page: Page, authenticator: SoftwareAuthenticator, name = 'Laptop', spoil: Spoil = {}) {
    const { options } = await registrationOptions(browser, page);
    return submitForm(browser, page, '/account/passkeys/add', { name, response: JSON.stringify(authenticator.create(options, spoil)) });
  }

  /** A new authorization request's sign-in page. */
  async function signInPage(client: { id: string; redirectUri: string } = WEB_APP) {
    const browser = new Browser(server.issuer);
    const { url, verifier } = authorizationUrl(server.issuer, client);
    return { browser, page: await browser.visit(url.href), verifier };
  }

  async function assertionOptions(browser: Browser, page: Page) {
    const form = findForm(page.html, '/passkey');
    const response = await browser.request(optionsUrlOf(page.html), { form: { csrf_token: form.fields.csrf_token ?? '' } });
    expect(response.status).toBe(200);
    return (await response.json()) as PublicKeyCredentialRequestOptionsJSON;
  }

  const submitAssertion = (browser: Browser, page: Page, response: unknown) =>
    submitForm(browser, page, '/passkey', { response: typeof response === 'string' ? response : JSON.stringify(response) });

  /** Follows consent (when asked) to the app, redeems the code and returns the ID token's claims. */
  async function finishAtApp(browser: Browser, page: Page & { redirectedTo?: URL }, verifier: string, client = { ...WEB_APP }) {
    const landed = page.redirectedTo ? page : await allowAccess(browser, page);
    const code = landed.redirectedTo?.searchParams.get('code');
    expect(code, landed.html.slice(0, 500)).toBeTruthy();
    const tokens = await redeemCode(server.issuer, client, code as string, verifier);
    expect(tokens.status).toBe(200);
    return decodeJwt(tokens.body.id_token as string);
  }

  it('adds passkeys on the account page (several, each named), lists, renames and removes them, with audit events', async () => {
    const { person, browser, page, authenticator } = await personOnAccountPage();
    const added = await addPasskey(browser, page, authenticator, 'Work laptop');
    expect(added.url).toContain('done=passkey_added');
    expect(added.html).toContain('Work laptop');
    const second = await addPasskey(browser, added, authenticator, 'Phone');
    expect(second.html).toContain('Phone');
    const stored = await db().passkey.findMany({ where: { userId: person.id }, orderBy: { createdAt: 'asc' } });
    expect(stored.map((p) => p.name)).toEqual(['Work laptop', 'Phone']);
    expect(stored[0]?.credentialId).toBe(authenticator.credentials[0]?.id.toString('base64url'));
    expect(second.html).toContain('Not used yet');
    expect(await events(person.id, 'passkey.added')).toHaveLength(2);

    const renamed = await submitForm(browser, second, '/account/passkeys/rename', { id: stored[1]?.id ?? '', name: 'Old phone' });
    expect(renamed.url).toContain('done=passkey_renamed');
    expect(renamed.html).toContain('Old phone');

    // Remove: the form for that passkey (recent sign-in, so no password asked).
    const form = [...renamed.html.matchAll(/<form method="post" action="\/account\/passkeys\/remove"[\s\S]*?<\/form>/g)].map((m) => m[0]).find((f) => f.includes(stored[1]?.id ?? '?'));
    expect(form).toBeDefined();
    const removed = await submitForm(browser, { html: form as string }, '/account/passkeys/remove');
    expect(removed.url).toContain('done=passkey_removed');
    expect(await db().passkey.count({ where: { userId: person.id } })).toBe(1);
    expect(await events(person.id, 'passkey.removed')).toHaveLength(1);

    // Someone else's passkey id is not found, and nothing is removed.
    const other = await personOnAccountPage();
    const token = findForm(other.page.html, '/account/passkeys/add').fields.csrf_token ?? '';
    const refused = await other.browser.visit('/account/passkeys/remove', { form: { csrf_token: token, id: stored[0]?.id ?? '' } });
    expect(refused.status).toBe(404);
    expect(await db().passkey.count({ where: { userId: person.id } })).toBe(1);
  });

  it('refuses a bad registration with a clear error and stores nothing: wrong origin, wrong RP ID, replayed challenge, no user verification, malformed, no name', async () => {
    const { person, browser, page, authenticator } = await personOnAccountPage();
    const port = new URL(server.issuer).port;
    for (const spoil of [{ origin: `http://evil.localhost:${port}` }, { origin: `https://localhost:${port}` }, { rpId: 'evil.test' }, { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, { userVerified: false }, { type: 'webauthn.get' }]) {
      const refused = await addPasskey(browser, page, authenticator, 'Laptop', spoil);
      expect(refused.status, JSON.stringify(spoil)).toBe(400);
      expect(refused.html).toContain('The passkey could not be added.');
    }
    // A good answer sent twice: the challenge works once.
    const { options } = await registrationOptions(browser, page);
    const answer = JSON.stringify(authenticator.create(options));
    expect((await submitForm(browser, page, '/account/passkeys/add', { name: 'Laptop', response: answer })).url).toContain('done=passkey_added');
    const replayed = await submitForm(browser, page, '/account/passkeys/add', { name: 'Laptop again', response: answer });
    expect(replayed.status).toBe(400);
    for (const response of ['not json', '{}', JSON.stringify({ ...JSON.parse(answer), response: { clientDataJSON: '!!' } })]) {
      expect((await submitForm(browser, page, '/account/passkeys/add', { name: 'Laptop', response })).status).toBe(400);
    }
    const nameless = await submitForm(browser, page, '/account/passkeys/add', { name: '  ', response: answer });
    expect(nameless.html).toContain('Give the passkey a name');
    expect(await db().passkey.count({ where: { userId: person.id } })).toBe(1);
    // Another session cannot finish this session's ceremony (the challenge is bound to it).
    const other = await personOnAccountPage();
    const { options: mine } = await registrationOptions(browser, page);
    expect((await submitForm(other.browser, other.page, '/account/passkeys/add', { name: 'Stolen', response: JSON.stringify(other.authenticator.create(mine)) })).status).toBe(400);
    expect(await db().passkey.count({ where: { userId: other.person.id } })).toBe(0);
  });

  it('signs in with a passkey alone (no email typed): the ID token says hwk and the MFA acr, and the passkey shows as used', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);
    const { browser, page: login, verifier } = await signInPage();
    const options = await assertionOptions(browser, login);
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.userVerification).toBe('required');
    expect(options.rpId).toBe('localhost');
    const claims = await finishAtApp(browser, await submitAssertion(browser, login, authenticator.get(options)), verifier);
    expect(claims.sub).toBe(person.id);
    expect(claims.amr).toEqual(['hwk', 'user']);
    expect(claims.acr).toBe(ACR_MFA);
    const passkey = await db().passkey.findFirstOrThrow({ where: { userId: person.id } });
    expect(passkey.counter).toBe(1);
    expect(passkey.lastUsedAt).not.toBeNull();
    expect((await events(person.id, 'passkey.used')).map((e) => (e.details as { purpose: string }).purpose)).toEqual(['sign_in']);

    // A client that requires MFA takes it without asking for anything more.
    const mfa = await signInPage(MFA_APP);
    const mfaClaims = await finishAtApp(mfa.browser, await submitAssertion(mfa.browser, mfa.page, authenticator.get(await assertionOptions(mfa.browser, mfa.page))), mfa.verifier, { ...WEB_APP, ...MFA_APP });
    expect(mfaClaims.acr).toBe(ACR_MFA);
  });

  it('refuses each bad assertion with the sign-in page and its error, signs nobody in and leaves the counter alone', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);
    const counter = async () => (await db().passkey.findFirstOrThrow({ where: { userId: person.id } })).counter;
    const port = new URL(server.issuer).port;
    const spoils: [string, Spoil | string][] = [
      ['wrong origin', { origin: `http://evil.localhost:${port}` }],
      ['wrong RP ID', { rpId: 'example.com' }],
      ['a challenge never handed out', { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
      ['unknown credential', { credentialId: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
      ['another user handle', { userHandle: Buffer.from('someone-else').toString('base64url') }],
      ['user not verified', { userVerified: false }],
      ['forged signature', { badSignature: true }],
      ['wrong ceremony type', { type: 'webauthn.create' }],
      ['not JSON', 'not json'],
      ['an empty object', '{}'],
    ];
    for (const [what, spoil] of spoils) {
      const { browser, page: login } = await signInPage();
      const options = await assertionOptions(browser, login);
      const answer = typeof spoil === 'string' ? spoil : authenticator.get(options, spoil);
      const refused = await submitAssertion(browser, login, answer);
      expect(refused.status, what).toBe(401);
      expect(refused.html, what).toContain(REFUSED);
      expect(refused.redirectedTo, what).toBeUndefined();
      expect(browser.hasCookie('_session'), what).toBe(false);
      // Spoiled answers carried counters the authenticator moved on from; none was stored.
      expect(await counter(), what).toBe(0);
      // Refused for what is wrong with it, not by the lockout the failures add up to (checked below).
      const reasons = (await db().auditEvent.findMany({ where: { type: 'passkey.failure' }, orderBy: { at: 'desc' }, take: 1 })).map((e) => (e.details as { reason: string }).reason);
      expect(reasons, what).not.toContain('locked');
      await db().rateLimiterFlexible.deleteMany({});
    }
    // Failures count against the account's sign-in limit (4): then even a good answer is refused.
    for (let failure = 0; failure < 4; failure++) {
      const { browser, page: login } = await signInPage();
      expect((await submitAssertion(browser, login, authenticator.get(await assertionOptions(browser, login), { badSignature: true }))).status).toBe(401);
    }
    const { browser, page: login } = await signInPage();
    const locked = await submitAssertion(browser, login, authenticator.get(await assertionOptions(browser, login)));
    expect(locked.status).toBe(401);
    expect(await events(person.id, 'sign_in.locked')).toHaveLength(1);
    expect((await events(person.id, 'passkey.failure')).map((e) => (e.details as { reason: string }).reason)).toContain('locked');
    expect(await counter()).toBe(0);
    await db().rateLimiterFlexible.deleteMany({});
  });

  it('uses a challenge once, only in its own interaction and only until it expires', async () => {
    const { browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);

    // Replayed: a good answer, used once, then sent again from another interaction.
    const first = await signInPage();
    const answer = authenticator.get(await assertionOptions(first.browser, first.page));
    const used = await submitAssertion(first.browser, first.page, answer);
    expect(used.status === 200 || used.redirectedTo !== undefined).toBe(true);
    const second = await signInPage();
    await assertionOptions(second.browser, second.page);
    const replayed = await submitAssertion(second.browser, second.page, answer);
    expect(replayed.status).toBe(401);
    expect(replayed.html).toContain(REFUSED);

    // Handed to one interaction, answered in another: refused, and the challenge is gone.
    const a = await signInPage();
    const b = await signInPage();
    const crossed = await submitAssertion(b.browser, b.page, authenticator.get(await assertionOptions(a.browser, a.page)));
    expect(crossed.status).toBe(401);

    // Expired: its time passed before the answer came.
    const late = await signInPage();
    const options = await assertionOptions(late.browser, late.page);
    await db().passkeyChallenge.updateMany({ where: { challenge: options.challenge }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await submitAssertion(late.browser, late.page, authenticator.get(options));
    expect(expired.status).toBe(401);
    expect(await db().passkeyChallenge.count({ where: { challenge: options.challenge } })).toBe(0);
  });

  it('refuses a signed assertion whose counter goes backwards (a cloned authenticator) and records it', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);
    const good = await signInPage();
    await submitAssertion(good.browser, good.page, authenticator.get(await assertionOptions(good.browser, good.page)));
    const clone = await signInPage();
    const refused = await submitAssertion(clone.browser, clone.page, authenticator.get(await assertionOptions(clone.browser, clone.page), { counter: 1 }));
    expect(refused.status).toBe(401);
    expect(refused.html).toContain(REFUSED);
    const [event] = await events(person.id, 'passkey.counter_regressed');
    expect(event?.details).toMatchObject({ stored: 1, received: 1 });
    expect((await db().passkey.findFirstOrThrow({ where: { userId: person.id } })).counter).toBe(1);
  });

  it('refuses a removed passkey', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    const added = await addPasskey(accountBrowser, page, authenticator);
    const { id } = await db().passkey.findFirstOrThrow({ where: { userId: person.id } });
    await submitForm(accountBrowser, added, '/account/passkeys/remove', { id });
    const { browser, page: login } = await signInPage();
    const refused = await submitAssertion(browser, login, authenticator.get(await assertionOptions(browser, login)));
    expect(refused.status).toBe(401);
    expect(refused.html).toContain(REFUSED);
    expect(browser.hasCookie('_session')).toBe(false);
  });

  it('asks for the passkey after the password when the client requires MFA, and signs in with pwd+hwk; another person’s passkey is refused', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);
    const other = await personOnAccountPage();
    await addPasskey(other.browser, other.page, other.authenticator);

    const { browser, page: login, verifier } = await signInPage(MFA_APP);
    const second = await submitPassword(browser, login, person);
    expect(second.html).toContain('Use your passkey to continue');
    expect(second.html).not.toContain('/mfa"');
    const options = await assertionOptions(browser, second);
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([authenticator.credentials[0]?.id.toString('base64url')]);
    // Someone else's passkey, for this person's second step: refused, the step still owed.
    const wrong = await submitAssertion(browser, second, other.authenticator.get({ ...options, allowCredentials: [] }));
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain(REFUSED);
    const claims = await finishAtApp(browser, await submitAssertion(browser, wrong, authenticator.get(await assertionOptions(browser, wrong))), verifier, { ...WEB_APP, ...MFA_APP });
    expect(claims.sub).toBe(person.id);
    expect(claims.amr).toEqual(['pwd', 'hwk']);
    expect(claims.acr).toBe(ACR_MFA);
    expect(await events(person.id, 'mfa.failure')).toHaveLength(1);
  });

  it('offers the passkey instead of the TOTP code to a person who has both, whatever the client', async () => {
    const { person, browser: accountBrowser, page, authenticator } = await personOnAccountPage();
    await addPasskey(accountBrowser, page, authenticator);
    await enrolTotp(createMfa(server.gatehouse.db, { secrets: server.config.secrets, audit: createAuditLog(server.gatehouse.db, createLogger(server.config)) }), person.id);
    const { browser, page: login, verifier } = await signInPage();
    const second = await submitPassword(browser, login, person);
    expect(second.html).toContain('/mfa"');
    expect(second.html).toContain('/recovery"');
    expect(second.html).toContain('Use a passkey');
    const claims = await finishAtApp(browser, await submitAssertion(browser, second, authenticator.get(await assertionOptions(browser, second))), verifier);
    expect(claims).toMatchObject({ sub: person.id, amr: ['pwd', 'hwk'], acr: ACR_MFA });
  });

  it('lets a person with a passkey remove their password, sign in with the passkey only, and set a password again', async () => {
    const { person, browser, page, authenticator } = await personOnAccountPage();
    // No passkey yet: the password stays.
    const early = await submitForm(browser, page, '/account/passkeys/add', { name: 'x', response: '{}' });
    expect(early.html).not.toContain('/account/password/remove');
    const added = await addPasskey(browser, page, authenticator);
    const wrong = await submitForm(browser, added, '/account/password/remove', { password: 'not the password' });
    expect(wrong.status).toBe(401);
    const removed = await submitForm(browser, added, '/account/password/remove', { password: person.password });
    expect(removed.url).toContain('done=password_removed');
    expect((await db().user.findUniqueOrThrow({ where: { id: person.id } })).passwordHash).toBeNull();
    expect(await events(person.id, 'password.removed')).toHaveLength(1);

    // The password no longer signs in; the passkey does.
    const withPassword = await signInPage();
    expect((await submitPassword(withPassword.browser, withPassword.page, person)).status).toBe(401);
    const withPasskey = await signInPage();
    const claims = await finishAtApp(withPasskey.browser, await submitAssertion(withPasskey.browser, withPasskey.page, authenticator.get(await assertionOptions(withPasskey.browser, withPasskey.page))), withPasskey.verifier);
    expect(claims.sub).toBe(person.id);

    // The only passkey of an account without a password stays.
    const { id } = await db().passkey.findFirstOrThrow({ where: { userId: person.id } });
    const last = await submitForm(browser, removed, '/account/passkeys/remove', { id });
    expect(last.status).toBe(409);
    expect(last.html).toContain('This is your only passkey');

    // A password again (a recent sign-in is the proof); the policy applies.
    const weak = await submitForm(browser, removed, '/account/password/set', { new_password: 'password', new_password_confirm: 'password' });
    expect(weak.status).toBe(400);
    const set = await submitForm(browser, removed, '/account/password/set', { new_password: 'a brand new long password', new_password_confirm: 'a brand new long password' });
    expect(set.url).toContain('done=password_set');
    const again = await signInPage();
    const back = await submitPassword(again.browser, again.page, { ...person, password: 'a brand new long password' });
    expect(back.status).toBe(200);
    expect(back.html).not.toContain('Incorrect email or password');
  });

  it('asks for the password to add or remove a passkey once the sign-in is no longer recent', async () => {
    const { person, browser, page, authenticator } = await personOnAccountPage();
    await addPasskey(browser, page, authenticator);
    // The sign-in happened long ago: rewrite the session's loginTs as time would have.
    const sessions = await db().oidcArtifact.findMany({ where: { model: 'Session', accountId: person.id } });
    for (const session of sessions) {
      const payload = session.payload as Record<string, unknown>;
      await db().oidcArtifact.update({ where: { model_id: { model: 'Session', id: session.id } }, data: { payload: { ...payload, loginTs: Math.floor(Date.now() / 1000) - 3600 } } });
    }
    const stale = await browser.visit('/account');
    expect(stale.html).toContain('/account/reauthenticate');
    // "Sign in again" asks for a new sign-in even though the session is still there.
    const again = await browser.request('/account/reauthenticate');
    expect(again.status).toBe(303);
    expect(new URL(again.headers.get('location') ?? '', server.issuer).searchParams.get('prompt')).toBe('login');
    expect(stale.html).toContain('id="passkey_password"');
    expect((await registrationOptions(browser, stale)).options.error).toBe('reauthenticate');
    expect((await registrationOptions(browser, stale, 'not the password')).options.error).toBe('wrong_password');
    const { status, options } = await registrationOptions(browser, stale, person.password);
    expect(status).toBe(200);
    expect(options.authenticatorSelection?.userVerification).toBe('required');
    expect(options.attestation).toBe('none');
    const { id } = await db().passkey.findFirstOrThrow({ where: { userId: person.id } });
    expect((await submitForm(browser, stale, '/account/passkeys/remove', { id })).status).toBe(401);
    expect((await submitForm(browser, stale, '/account/passkeys/remove', { id, password: person.password })).url).toContain('done=passkey_removed');
  });

  it('lists and removes a person’s passkeys through the admin API', async () => {
    const { person, browser, page, authenticator } = await personOnAccountPage();
    await addPasskey(browser, page, authenticator, 'Desk key');
    const token = await adminToken(server);
    const list = await fetch(`${server.url}/admin/users/${person.id}/passkeys`, { headers: { authorization: `Bearer ${token}` } });
    expect(list.status).toBe(200);
    const body = (await list.json()) as { passkeys: { id: string; name: string; created_at: string; last_used_at: string | null }[] };
    expect(body.passkeys.map((p) => p.name)).toEqual(['Desk key']);
    const gone = await fetch(`${server.url}/admin/users/${person.id}/passkeys/${body.passkeys[0]?.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(gone.status).toBe(204);
    expect(await db().passkey.count({ where: { userId: person.id } })).toBe(0);
    const again = await fetch(`${server.url}/admin/users/${person.id}/passkeys/${body.passkeys[0]?.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(404);
    expect(await events(person.id, 'passkey.removed')).toHaveLength(1);
  });
});

/** An admin access token (client_credentials with the admin scope), as the admin API tests get one. */
async function adminToken(server: TestGatehouse): Promise<string> {
  const client = { id: 'passkey-admin', secret: secretFor('passkey-admin') };
  await server.addClient({ client_id: client.id, client_secret: client.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin', token_endpoint_auth_method: 'client_secret_basic' });
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no admin token: ${JSON.stringify(body)}`);
  return body.access_token;
}
