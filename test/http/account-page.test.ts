// The account page: signed in with the provider's own session, it shows the person's profile,
// the apps they connected (and ends an app's access), their sessions (and ends the others), and
// changes their password or second factor. Every action needs the page's form token and lands
// in the audit trail.
import fc from 'fast-check';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventType } from '../../src/audit/store.js';
import { describeUserAgent } from '../../src/http/user-agents.js';
import { Browser, findForm, signOut, submitForm, submitPassword } from '../helpers/browser.js';
import { refreshTokens, signInForTokens, startAuthorization } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { PASSWORD, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { anotherCode } from '../helpers/totp.js';
const REFUSED = 'This form was not sent from your account page';

const FIREFOX_ON_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI_ON_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

describe.each(await flavours())('the account page on %s', (flavour) => {
  let server: TestGatehouse;

  // Several tests send wrong passwords from 127.0.0.1: keep the per-IP limit out of their way.
  const env = { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_DELAY_STEP_MS: '0' };
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env, clients: [webApp()] })));
  afterAll(async () => server?.close());

  /** Opens /account in a new browser, signs in on the page it is sent to, and returns the account page. */
  async function signedInAccountPage(person: { email: string; password: string }, headers: Record<string, string> = {}) {
    const browser = new Browser(server.issuer, headers);
    const signIn = await browser.visit('/account');
    expect(signIn.html).toContain('/login"');
    const page = await submitPassword(browser, signIn, person);
    expect(page.status).toBe(200);
    expect(new URL(page.url).pathname).toBe('/account');
    return { browser, page };
  }

  /** Connects Web App to the browser's signed-in account (consent, code, tokens). */
  async function connectWebApp(browser: Browser, person: { email: string; password: string }) {
    const tokens = await signInForTokens(browser, server.issuer, WEB_APP, person, 'openid email offline_access');
    expect(tokens.status).toBe(200);
    return tokens.body;
  }

  const events = (accountId: string, type: AuditEventType) => server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId, type } });
  const sessionsOf = (accountId: string) => server.gatehouse.db.prisma.oidcArtifact.count({ where: { model: 'Session', accountId } });
  const passwordHashOf = async (accountId: string) => (await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id: accountId } })).passwordHash;

  it('sends a visitor without a session to the sign-in page, then shows their profile', async () => {
    const alice = await server.addPerson();
    const browser = new Browser(server.issuer);
    const first = await browser.request('/account');
    expect(first.status).toBe(303);
    const authorize = new URL(first.headers.get('location') as string, server.issuer);
    expect(authorize.pathname).toBe('/authorize');
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ client_id: 'gatehouse-account', response_type: 'none', scope: 'openid', redirect_uri: `${server.issuer}/account/callback` });

    const { page } = await signedInAccountPage(alice);
    expect(page.html).toContain('<h1>Your account</h1>');
    expect(page.html).toContain(alice.email);
    expect(page.html).toContain(alice.name);
    expect(page.html).toContain('No app has access to your account.');
    expect(page.html).toContain('This browser');
    expect(page.headers.get('cache-control')).toBe('no-store');
    // The account page itself is not listed as a connected app, and asked for no consent.
    expect(page.html).not.toContain('gatehouse-account');
  });

  it('speaks Korean when asked with ui_locales=ko, through the sign-in and after every action', async () => {
    const june = await server.addPerson();
    const browser = new Browser(server.issuer);
    const signIn = await browser.visit('/account?ui_locales=ko');
    expect(signIn.html).toContain('<html lang="ko">');
    const page = await submitForm(browser, signIn, '/login', { email: june.email, password: PASSWORD });
    expect(new URL(page.url).search).toBe('?ui_locales=ko');
    expect(page.html).toContain('<html lang="ko">');
    expect(page.html).toContain('<h1>내 계정</h1>');
    expect(page.html).toMatch(/\d{4}\. \d{1,2}\. \d{1,2}\. \d{2}:\d{2} UTC/);
    const refused = await submitForm(browser, page, '/account/password', { current_password: 'wrong', new_password: 'short', new_password_confirm: 'short' });
    expect(refused.html).toContain('새 비밀번호는 10자 이상이어야 합니다.');
    const form = findForm(page.html, '/account/password');
    expect(form.action).toBe('/account/password?ui_locales=ko');
    const NEW = 'a brand new passphrase for june';
    const done = await browser.visit(form.action, { form: { ...form.fields, current_password: PASSWORD, new_password: NEW, new_password_confirm: NEW } });
    expect(new URL(done.url).search).toBe('?done=password_changed&ui_locales=ko');
    expect(done.html).toContain('비밀번호를 변경했습니다.');
    const error = await browser.visit('/account/sessions/end-others?ui_locales=ko', { form: {} });
    expect(error.status).toBe(403);
    expect(error.html).toContain('회원님의 계정 페이지에서 보낸 것이 아니므로');
  });

  it('refuses a callback that this browser did not start, and actions without a session', async () => {
    const browser = new Browser(server.issuer);
    const callback = await browser.request('/account/callback?state=forged', { headers: { accept: 'application/json' } });
    expect(callback.status).toBe(400);
    expect(await callback.json()).toMatchObject({ error: 'invalid_state' });

    const action = await browser.request('/account/sessions/end-others', { form: { csrf_token: 'x' }, headers: { accept: 'application/json' } });
    expect(action.status).toBe(401);
    expect(await action.json()).toMatchObject({ error: 'login_required' });
  });

  it('sends a person who cancels the sign-in to an error page that says so', async () => {
    const browser = new Browser(server.issuer);
    const signIn = await browser.visit('/account');
    const cancelled = await submitForm(browser, signIn, '/abort');
    expect(cancelled.status).toBe(400);
    expect(new URL(cancelled.url).pathname).toBe('/account/callback');
    expect(cancelled.html).toContain('You did not sign in');
  });

  it('lists an app after a code flow, with what it may access and since when; removing it ends its refresh token', async () => {
    const bob = await server.addPerson();
    const { browser } = await signedInAccountPage(bob);
    const tokens = await connectWebApp(browser, bob);
    expect(tokens.refresh_token).toBeTruthy();

    const page = await browser.visit('/account');
    expect(page.html).toContain('<h3>Web App</h3>');
    expect(page.html).toContain('See your email address');
    expect(page.html).toContain('Stay connected when you are not using it');
    expect(page.html).toMatch(/Connected since [A-Z][a-z]{2} \d{1,2}, \d{4}/);
    expect(page.html).toContain('Used for Web App');

    const after = await submitForm(browser, page, '/account/apps/revoke');
    expect(after.status).toBe(200);
    expect(new URL(after.url).search).toBe('?done=app_revoked');
    expect(after.html).toContain('Access removed');
    expect(after.html).not.toContain('<h3>Web App</h3>');

    const refresh = await refreshTokens(server.issuer, WEB_APP, tokens.refresh_token as string);
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('invalid_grant');
    const userinfo = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
    expect(await events(bob.id, 'consent.revoked')).toEqual([expect.objectContaining({ clientId: WEB_APP.id, ip: expect.any(String), details: expect.objectContaining({ via: 'account' }) })]);

    // Removing it again finds nothing to remove; the next sign-in to the app asks for consent again.
    const again = await browser.request('/account/apps/revoke', { form: { ...findForm(page.html, '/account/apps/revoke').fields }, headers: { accept: 'application/json' } });
    expect(again.status).toBe(404);
    const { page: next } = await startAuthorization(browser, server.issuer, WEB_APP, 'openid email');
    expect(next.html).toContain('/confirm"');
  });

  it('signs out every other session, and only those', async () => {
    const carol = await server.addPerson();
    const here = await signedInAccountPage(carol, { 'user-agent': FIREFOX_ON_LINUX });
    const elsewhere = await signedInAccountPage(carol, { 'user-agent': SAFARI_ON_IPHONE });
    const page = await here.browser.visit('/account');
    expect(page.html).toContain('Another browser or device');
    // Each session says when, with which browser and from which address it was last used.
    expect(page.html).toMatch(/Last used [^<]+ · Firefox · Linux · (::ffff:)?127\.0\.0\.1</);
    expect(page.html).toMatch(/Last used [^<]+ · Safari · iOS · (::ffff:)?127\.0\.0\.1</);
    expect(await sessionsOf(carol.id)).toBe(2);

    const after = await submitForm(here.browser, page, '/account/sessions/end-others');
    expect(after.html).toContain('You are signed out everywhere else.');
    expect(after.html).not.toContain('Another browser or device');
    expect(await sessionsOf(carol.id)).toBe(1);
    // The other browser is sent to sign in again; this one stays signed in.
    expect((await elsewhere.browser.visit('/account')).html).toContain('/login"');
    expect((await here.browser.visit('/account')).html).toContain('<h1>Your account</h1>');
    expect(await events(carol.id, 'session.revoked')).toEqual([expect.objectContaining({ details: expect.objectContaining({ via: 'account', sessions: 1 }) })]);
  });

  it('names common browsers and systems in a few words, and nothing it does not recognise', () => {
    expect(describeUserAgent(FIREFOX_ON_LINUX)).toBe('Firefox · Linux');
    expect(describeUserAgent(SAFARI_ON_IPHONE)).toBe('Safari · iOS');
    expect(describeUserAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0')).toBe('Edge · Windows');
    expect(describeUserAgent('Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36')).toBe('Chrome · Android');
    expect(describeUserAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36')).toBe('Chrome · macOS');
    expect(describeUserAgent('something-else/1.0')).toBeNull();
    expect(describeUserAgent(null)).toBeNull();
  });

  it('changes the password only with the right current password and a new one the policy accepts', async () => {
    const dave = await server.addPerson();
    const { browser, page } = await signedInAccountPage(dave);
    const other = await signedInAccountPage(dave);
    const before = await passwordHashOf(dave.id);
    const change = (fields: Record<string, string>) => submitForm(browser, page, '/account/password', fields);
    const NEW = 'a brand new passphrase for dave';

    const wrong = await change({ current_password: 'not my password', new_password: NEW, new_password_confirm: NEW });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('Your current password is not right.');
    const mismatch = await change({ current_password: PASSWORD, new_password: NEW, new_password_confirm: `${NEW}!` });
    expect(mismatch.status).toBe(400);
    expect(mismatch.html).toContain('do not match');
    const weak = await change({ current_password: PASSWORD, new_password: 'password123', new_password_confirm: 'password123' });
    expect(weak.status).toBe(400);
    expect(weak.html).toContain('most commonly used passwords');
    const empty = await change({ current_password: '', new_password: NEW, new_password_confirm: NEW });
    expect(empty.status).toBe(400);
    expect(await passwordHashOf(dave.id)).toBe(before);

    const done = await change({ current_password: PASSWORD, new_password: NEW, new_password_confirm: NEW });
    expect(done.status).toBe(200);
    expect(done.html).toContain('Password changed.');
    expect(await passwordHashOf(dave.id)).not.toBe(before);
    // Other sessions end with the old password; the new one signs in, the old one does not.
    expect((await other.browser.visit('/account')).html).toContain('/login"');
    await expect(signedInAccountPage({ email: dave.email, password: PASSWORD })).rejects.toThrow();
    await signedInAccountPage({ email: dave.email, password: NEW });
    expect(await events(dave.id, 'password.changed')).toHaveLength(1);
    expect(await events(dave.id, 'sign_in.failure')).toEqual(expect.arrayContaining([expect.objectContaining({ details: expect.objectContaining({ reason: 'wrong_password' }) })]));
  });

  it('refuses a current password that is the right 72 bytes followed by more, for the password and for two-step verification', async () => {
    // bcrypt reads 72 bytes: without the limit, anything after a 72-byte password would do.
    const LONG = `${'my passphrase is long '.repeat(4).slice(0, 70)}é`;
    expect(Buffer.byteLength(LONG)).toBe(72);
    const kim = { email: 'kim@example.com', password: LONG };
    const id = await server.addUser(kim);
    const { browser, page } = await signedInAccountPage(kim);
    const before = await passwordHashOf(id);
    const NEW = 'a brand new passphrase for kim';

    const change = await submitForm(browser, page, '/account/password', { current_password: `${LONG}anything`, new_password: NEW, new_password_confirm: NEW });
    expect(change.status).toBe(401);
    expect(change.html).toContain('Your current password is not right.');
    const enrol = await submitForm(browser, page, '/account/mfa/enroll', { password: `${LONG}anything` });
    expect(enrol.status).toBe(401);
    expect(enrol.html).toContain('Your current password is not right.');
    expect(await passwordHashOf(id)).toBe(before);
    expect((await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id } })).totpSecretEncrypted).toBeNull();
    const reasons = (await events(id, 'sign_in.failure')).map((row) => (row.details as { reason: string }).reason);
    expect(reasons).toEqual(['password_too_long', 'password_too_long']);

    // The password itself still works.
    expect((await submitForm(browser, page, '/account/password', { current_password: LONG, new_password: NEW, new_password_confirm: NEW })).html).toContain('Password changed.');
  });

  it('checks the current password under the sign-in limits: a locked account cannot change it, even with the right one', async () => {
    const ivy = await server.addPerson();
    const { browser, page } = await signedInAccountPage(ivy);
    const NEW = 'a brand new passphrase for ivy';
    for (let i = 0; i < 5; i++) {
      const wrong = await submitForm(browser, page, '/account/password', { current_password: `wrong ${i}`, new_password: NEW, new_password_confirm: NEW });
      expect(wrong.status).toBe(401);
    }
    const locked = await submitForm(browser, page, '/account/password', { current_password: PASSWORD, new_password: NEW, new_password_confirm: NEW });
    expect(locked.status).toBe(401);
    expect(await events(ivy.id, 'sign_in.locked')).not.toHaveLength(0);
    expect(await events(ivy.id, 'password.changed')).toHaveLength(0);
  });

  it('refuses every action without the form token, or with another session\'s, and changes nothing', async () => {
    const erin = await server.addPerson();
    const { browser, page } = await signedInAccountPage(erin);
    await connectWebApp(browser, erin);
    const elsewhere = await signedInAccountPage(erin);
    const withApp = await browser.visit('/account');
    const hash = await passwordHashOf(erin.id);
    const foreignToken = findForm(elsewhere.page.html, '/account/password').fields.csrf_token as string;
    expect(foreignToken).not.toBe(findForm(page.html, '/account/password').fields.csrf_token);

    const NEW = 'a brand new passphrase for erin';
    const attempts: [string, Record<string, string>][] = [
      ['/account/apps/revoke', { client_id: WEB_APP.id }],
      ['/account/sessions/end-others', {}],
      ['/account/password', { current_password: PASSWORD, new_password: NEW, new_password_confirm: NEW }],
      ['/account/mfa/enroll', { password: PASSWORD }],
    ];
    for (const [action, fields] of attempts) {
      for (const token of [undefined, foreignToken, '']) {
        const form = token === undefined ? fields : { ...fields, csrf_token: token };
        const refused = await browser.visit(action, { form });
        expect(refused.status, `${action} with token ${token}`).toBe(403);
        expect(refused.html).toContain(REFUSED);
      }
    }
    const json = await browser.request('/account/sessions/end-others', { form: {}, headers: { accept: 'application/json' } });
    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ error: 'invalid_form_token' });

    expect(await passwordHashOf(erin.id)).toBe(hash);
    expect(await sessionsOf(erin.id)).toBe(2);
    expect((await browser.visit('/account')).html).toContain('<h3>Web App</h3>');
    expect(withApp.html).toContain('<h3>Web App</h3>');
    const user = await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id: erin.id } });
    expect(user.totpSecretEncrypted).toBeNull();
    for (const type of ['consent.revoked', 'session.revoked', 'password.changed'] as const) expect(await events(erin.id, type)).toHaveLength(0);
  });

  it('a form token stops working when the session it was rendered for ends', async () => {
    const frank = await server.addPerson();
    const { browser, page } = await signedInAccountPage(frank);
    await signOut(browser, '/logout');
    // Signed in again in the same browser: a new session, so the old page's token is refused.
    const signIn = await browser.visit('/account');
    await submitForm(browser, signIn, '/login', { email: frank.email, password: PASSWORD });
    const stale = await submitForm(browser, page, '/account/password', { current_password: PASSWORD, new_password: 'another fine passphrase', new_password_confirm: 'another fine passphrase' });
    expect(stale.status).toBe(403);
  });

  it('answers hostile form fields on every action with a 4xx (or the page), never a 5xx, and changes nothing', async () => {
    const henry = await server.addPerson();
    const { browser, page } = await signedInAccountPage(henry);
    const token = findForm(page.html, '/account/password').fields.csrf_token as string;
    const hash = await passwordHashOf(henry.id);
    const field = fc.constantFrom('csrf_token', 'client_id', 'current_password', 'new_password', 'new_password_confirm', 'password', 'code', '__proto__', 'constructor');
    const value = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constant(token), fc.constant(WEB_APP.id), fc.constant('x'.repeat(2000)));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/account/apps/revoke', '/account/sessions/end-others', '/account/password', '/account/mfa/enroll', '/account/mfa/confirm', '/account/mfa/remove'),
        fc.array(fc.tuple(field, value), { maxLength: 8 }),
        async (action, pairs) => {
          const body = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, ''))}`).join('&');
          const response = await browser.request(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body });
          expect(response.status, `${action} ${body}`).toBeLessThan(500);
          await response.arrayBuffer();
        },
      ),
      { numRuns: 60 },
    );
    // Hostile query strings on the pages.
    for (const query of ['?done=%00', '?done[]=x&ui_locales[]=ko', '?ui_locales=' + 'x'.repeat(500), '?state=a&state=b&error[]=x']) {
      for (const path of ['/account', '/account/callback', '/account/mfa']) {
        const response = await browser.request(`${path}${query}`);
        expect(response.status, `${path}${query}`).toBeLessThan(500);
      }
    }
    expect(await passwordHashOf(henry.id)).toBe(hash);
    expect(await sessionsOf(henry.id)).toBe(1);
  });

  it('turns two-step verification on (password, QR code, code, recovery codes) and off (password)', async () => {
    const grace = await server.addPerson();
    const { browser, page } = await signedInAccountPage(grace);
    expect(page.html).toContain('Set up two-step verification');

    const wrongPassword = await submitForm(browser, page, '/account/mfa/enroll', { password: 'not my password' });
    expect(wrongPassword.status).toBe(401);
    expect(wrongPassword.html).toContain('Your current password is not right.');

    const enrol = await submitForm(browser, page, '/account/mfa/enroll', { password: PASSWORD });
    expect(new URL(enrol.url).pathname).toBe('/account/mfa');
    expect(enrol.html).toMatch(/<img class="qr-code" src="data:image\/svg\+xml;base64,/);
    const secret = (/id="totp-secret">([A-Z2-7 ]+)</.exec(enrol.html)?.[1] ?? '').replace(/ /g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);

    const wrongCode = await submitForm(browser, enrol, '/account/mfa/confirm', { code: anotherCode(await generate({ secret })) });
    expect(wrongCode.status).toBe(401);
    expect(wrongCode.html).toContain('That code is not right.');
    const codes = await submitForm(browser, wrongCode, '/account/mfa/confirm', { code: await generate({ secret }) });
    expect(codes.status).toBe(200);
    expect([...codes.html.matchAll(/<li><code>([a-z2-7-]+)<\/code><\/li>/g)]).toHaveLength(10);
    expect(await events(grace.id, 'mfa.enrolled')).toEqual([expect.objectContaining({ details: expect.objectContaining({ via: 'account' }) })]);

    const on = await browser.visit('/account?done=mfa_enrolled');
    expect(on.html).toContain('Recovery codes left: 10.');
    // Now a sign-in elsewhere asks for a code after the password.
    const elsewhere = new Browser(server.issuer);
    const signIn = await elsewhere.visit('/account');
    expect((await submitForm(elsewhere, signIn, '/login', { email: grace.email, password: PASSWORD })).html).toContain('/mfa"');

    const refused = await submitForm(browser, on, '/account/mfa/remove', { password: 'not my password' });
    expect(refused.status).toBe(401);
    const off = await submitForm(browser, on, '/account/mfa/remove', { password: PASSWORD });
    expect(off.html).toContain('Two-step verification is off.');
    expect(await events(grace.id, 'mfa.removed')).toEqual([expect.objectContaining({ details: expect.objectContaining({ via: 'account' }) })]);
    const user = await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id: grace.id } });
    expect(user.totpEnabledAt).toBeNull();
  });
});
