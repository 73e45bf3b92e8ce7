// Accepting an invitation lands the person signed in (people/sign-in-handoff.ts), on SQLite and
// PostgreSQL, over real HTTP: with a password, on /account or at the invited app (its
// initiate_login_uri, then the app's own code flow, played by openid-client); with a passkey
// instead (a software authenticator), as an MFA sign-in. The handoff is single-use, hashed, kept
// in an HttpOnly cookie for /interaction only: replayed in another browser, after use, expired or
// forged, it shows the ordinary sign-in page (the email filled in) and signs no one in. Gatehouse
// runs with ISSUER=http://localhost:PORT (WebAuthn refuses IP origins).
import { createHash } from 'node:crypto';
import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { accountMailOf } from '../../src/http/mail-renderer.js';
import { ACR_MFA } from '../../src/oidc/provider.js';
import { inviteUser } from '../../src/people/invitations.js';
import { SoftwareAuthenticator, type Spoil } from '../helpers/authenticator.js';
import { allowAccess, Browser, findForm, submitForm, type Page } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { APP, secretFor, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { authorizeIn, discover } from '../helpers/relying-party.js';
import { newestMailLink } from '../helpers/smtp.js';

const PASSWORD = 'an invited person chooses this';
const HANDOFF = 'gatehouse.handoff';
const app = (id: string) => ({ id, secret: secretFor(id), redirectUri: `${APP}/${id}/callback` });
/** An app that starts its own sign-in (OpenID Connect third-party-initiated login). */
const WIKI = app('wiki');
/** An app that requires MFA. */
const VAULT = app('vault');
/** An app that says only where it lives. */
const HOME = app('home');

describe.each(await flavours())('landing signed in after accepting an invitation on %s', (flavour) => {
  let server: TestGatehouse;
  let counter = 0;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, {
      localhostIssuer: true,
      env: { SIGN_IN_DELAY_STEP_MS: '0' },
      clients: [
        webApp({ client_id: WIKI.id, client_secret: WIKI.secret, client_name: 'The Wiki', redirect_uris: [WIKI.redirectUri], initiate_login_uri: 'https://wiki.test/login' }),
        webApp({ client_id: VAULT.id, client_secret: VAULT.secret, client_name: 'Vault', redirect_uris: [VAULT.redirectUri], initiate_login_uri: 'https://vault.test/start', gatehouse_require_mfa: true }),
        webApp({ client_id: HOME.id, client_secret: HOME.secret, client_name: 'Home', redirect_uris: [HOME.redirectUri], client_uri: 'https://home.test/' }),
      ],
    });
  });
  afterAll(async () => server?.close());

  const db = () => server.gatehouse.db.prisma;

  /** A new invitation (for `clientId`'s app, if given): its id, address, and the invitation page in a new browser. */
  async function invited(clientId?: string) {
    const email = `invited-${++counter}-${flavour}@example.com`;
    const gatehouseDb = server.gatehouse.db;
    const audit = createAuditLog(gatehouseDb, createLogger({ logLevel: 'silent' }));
    const invitation = await inviteUser({ db: gatehouseDb, audit, mail: accountMailOf(server.config, server.gatehouse.outbox) }, { email, client_id: clientId }, { via: 'cli' });
    const link = await newestMailLink(server, '/invitation?token=');
    const browser = new Browser(server.issuer);
    const page = await browser.visit(link);
    expect(page.status).toBe(200);
    return { id: invitation.id, email, link, browser, page };
  }

  /** Posts the password form without following the redirect: the response and the handoff's secret. */
  async function acceptWithPassword(browser: Browser, page: Page) {
    const form = findForm(page.html, '/invitation');
    const response = await browser.request(form.action, { form: { ...form.fields, password: PASSWORD, password_confirm: PASSWORD } });
    return { response, location: response.headers.get('location') ?? '', secret: browser.cookie(HANDOFF) ?? '' };
  }

  /** The app's side: started at its initiate_login_uri, it sends the browser to authorize (with the login_hint it was given) and redeems the code. */
  async function appSignIn(browser: Browser, client: typeof WIKI, loginHint: string, params: Record<string, string> = {}) {
    const config = await discover(server.issuer, client);
    const { page, finish } = await authorizeIn(browser, config, { redirect_uri: client.redirectUri, scope: 'openid email', login_hint: loginHint, ...params });
    return { page, finish };
  }

  it('with a password: lands on /account signed in without typing it again; the handoff is hashed, short-lived and for /interaction only', async () => {
    const { id, email, browser, page } = await invited();
    const { response, location, secret } = await acceptWithPassword(browser, page);
    expect(response.status).toBe(303);
    expect(location).toBe(`/account?login_hint=${encodeURIComponent(email)}`);
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith(`${HANDOFF}=`)) ?? '';
    expect(cookie).toMatch(/Path=\/interaction/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Max-Age=300/);
    const stored = await db().accountLink.findMany({ where: { userId: id, purpose: 'invitation_sign_in' } });
    expect(stored).toHaveLength(1);
    expect(stored[0]?.tokenHash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(stored)).not.toContain(secret);

    const landed = await browser.visit(location);
    expect(new URL(landed.url).pathname).toBe('/account');
    expect(landed.status).toBe(200);
    expect(landed.html).toContain(email);
    expect(browser.hasCookie(HANDOFF)).toBe(false);
    const signIns = await db().auditEvent.findMany({ where: { accountId: id, type: 'sign_in.success' } });
    expect(signIns.map((event) => event.details)).toEqual([expect.objectContaining({ method: 'invitation', factor: 'password' })]);
    expect((await db().accountLink.findFirst({ where: { userId: id, purpose: 'invitation_sign_in' } }))?.usedAt).not.toBeNull();

    // The same secret in another browser: used up, so the ordinary sign-in page, the email filled in.
    const other = new Browser(server.issuer);
    other.setCookie(HANDOFF, secret, '/interaction');
    const replayed = await other.visit(location);
    expect(new URL(replayed.url).pathname).toMatch(/^\/interaction\//);
    expect(replayed.html).toContain('/login"');
    expect(replayed.html).toContain(`value="${email}"`);
    // And again in the first browser, in a sign-in that asks for the password again: no second use either.
    browser.setCookie(HANDOFF, secret, '/interaction');
    const again = await appSignIn(browser, WIKI, email, { prompt: 'login' });
    expect(again.page.html).toContain('/login"');
    expect(await db().auditEvent.count({ where: { accountId: id, type: 'sign_in.success' } })).toBe(1);
  });

  it('an expired or forged handoff: the ordinary sign-in page, the email filled in, no one signed in', async () => {
    const { id, email, browser, page } = await invited();
    const { location } = await acceptWithPassword(browser, page);
    await db().accountLink.updateMany({ where: { userId: id, purpose: 'invitation_sign_in' }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expired = await browser.visit(location);
    expect(expired.html).toContain('/login"');
    expect(expired.html).toContain(`value="${email}"`);

    const stranger = new Browser(server.issuer);
    stranger.setCookie(HANDOFF, 'A'.repeat(43), '/interaction');
    const forged = await stranger.visit(location);
    expect(forged.html).toContain('/login"');
    stranger.setCookie(HANDOFF, '%zz', '/interaction');
    expect((await stranger.visit(location)).html).toContain('/login"');
    expect(await db().auditEvent.count({ where: { accountId: id, type: 'sign_in.success' } })).toBe(0);
    // The account exists all the same, and its password works as usual.
    expect(await db().user.findUnique({ where: { id } })).toMatchObject({ emailVerified: true });
  });

  it('at the invited app: its initiate_login_uri (iss, login_hint), then its code flow signs in with amr pwd and nothing typed', async () => {
    const { id, email, browser, page } = await invited(WIKI.id);
    const accepted = await submitForm(browser, page, '/invitation', { password: PASSWORD, password_confirm: PASSWORD });
    const start = accepted.redirectedTo as URL;
    expect(`${start.origin}${start.pathname}`).toBe('https://wiki.test/login');
    expect(start.searchParams.get('iss')).toBe(server.issuer);
    expect(start.searchParams.get('login_hint')).toBe(email);

    const { page: next, finish } = await appSignIn(browser, WIKI, start.searchParams.get('login_hint') as string);
    expect(next.html).not.toContain('/login"');
    const back = next.redirectedTo ? next : await allowAccess(browser, next);
    const tokens = await finish(back.redirectedTo);
    const claims = tokens.claims();
    expect(claims?.sub).toBe(id);
    expect(claims?.amr).toEqual(['pwd']);
  });

  it('an app that requires MFA: the handoff is the first factor, the second is still owed', async () => {
    const { email, browser, page } = await invited(VAULT.id);
    const accepted = await submitForm(browser, page, '/invitation', { password: PASSWORD, password_confirm: PASSWORD });
    expect(accepted.redirectedTo?.origin).toBe('https://vault.test');
    const { page: next } = await appSignIn(browser, VAULT, email);
    expect(next.html).toContain('/enroll"');
  });

  it('offers the passkey in Korean, with its form token and the link, and says it needs JavaScript', async () => {
    const { link } = await invited();
    const korean = await new Browser(server.issuer, { 'accept-language': 'ko' }).visit(link);
    expect(korean.html).toContain('대신 패스키 설정하기');
    expect(korean.html).toContain('<noscript><p class="hint">패스키를 설정하려면 JavaScript가 필요합니다.');
    const form = findForm(korean.html, '/invitation/passkey');
    expect(form.fields).toMatchObject({ token: new URL(link).searchParams.get('token'), name: '내 패스키', response: '' });
    expect(form.fields.csrf_token).toBeTruthy();
  });

  it('an app with only a client_uri: the browser goes there', async () => {
    const { browser, page } = await invited(HOME.id);
    const accepted = await submitForm(browser, page, '/invitation', { password: PASSWORD, password_confirm: PASSWORD });
    expect(accepted.redirectedTo?.href).toBe('https://home.test/');
  });

  describe('a passkey instead of a password', () => {
    async function passkeyOptions(browser: Browser, page: Page, fields: Record<string, string> = {}) {
      const form = findForm(page.html, '/invitation/passkey');
      const response = await browser.request('/invitation/passkey/options', { form: { csrf_token: form.fields.csrf_token ?? '', token: form.fields.token ?? '', ...fields } });
      return { status: response.status, body: (await response.json()) as PublicKeyCredentialCreationOptionsJSON & { error?: string } };
    }

    async function acceptWithPasskey(browser: Browser, page: Page, authenticator: SoftwareAuthenticator, spoil: Spoil = {}, name = 'Laptop') {
      const { body } = await passkeyOptions(browser, page);
      return submitForm(browser, page, '/invitation/passkey', { name, response: JSON.stringify(authenticator.create(body, spoil)) });
    }

    it('creates the account with no password and the passkey, then signs in at the app as MFA (amr hwk user)', async () => {
      const { id, email, browser, page } = await invited(VAULT.id);
      expect(page.html).toContain('data-options-url="/invitation/passkey/options"');
      const authenticator = new SoftwareAuthenticator(server.issuer);
      const { body: options } = await passkeyOptions(browser, page);
      expect(options.user.name).toBe(email);
      expect(Buffer.from(options.user.id, 'base64url').toString('utf8')).toBe(id);
      expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });

      const accepted = await submitForm(browser, page, '/invitation/passkey', { name: 'Laptop', response: JSON.stringify(authenticator.create(options)) });
      expect(accepted.redirectedTo?.origin).toBe('https://vault.test');
      const user = await db().user.findUnique({ where: { id } });
      expect(user).toMatchObject({ email, emailVerified: true, passwordHash: null });
      const passkeys = await db().passkey.findMany({ where: { userId: id } });
      expect(passkeys.map((p) => [p.name, p.credentialId])).toEqual([['Laptop', authenticator.credentials[0]?.id.toString('base64url')]]);
      expect(await db().auditEvent.count({ where: { accountId: id, type: 'passkey.added' } })).toBe(1);

      // The app requires MFA: the passkey, made with user verification, was both factors.
      const { page: next, finish } = await appSignIn(browser, VAULT, email);
      const back = next.redirectedTo ? next : await allowAccess(browser, next);
      const claims = (await finish(back.redirectedTo)).claims();
      expect(claims?.sub).toBe(id);
      expect(claims?.amr).toEqual(['hwk', 'user']);
      expect(claims?.acr).toBe(ACR_MFA);
    });

    it('refuses a bad answer or request, creating nothing, and the link keeps working', async () => {
      const { id, link, browser, page } = await invited();
      const authenticator = new SoftwareAuthenticator(server.issuer);
      const port = new URL(server.issuer).port;
      for (const spoil of [{ origin: `http://evil.localhost:${port}` }, { rpId: 'evil.test' }, { userVerified: false }, { challenge: 'A'.repeat(43) }]) {
        const refused = await acceptWithPasskey(browser, page, authenticator, spoil);
        expect(refused.status, JSON.stringify(spoil)).toBe(400);
        expect(refused.html).toContain('That passkey could not be set up.');
      }
      expect((await submitForm(browser, page, '/invitation/passkey', { name: 'Laptop', response: 'not json' })).status).toBe(400);
      expect((await acceptWithPasskey(browser, page, authenticator, {}, '  ')).html).toContain('Give the passkey a name');
      expect((await passkeyOptions(browser, page, { csrf_token: 'forged' })).status).toBe(403);
      expect(await passkeyOptions(browser, page, { token: 'A'.repeat(43) })).toEqual({ status: 400, body: { error: 'invalid' } });
      expect(await passkeyOptions(new Browser(server.issuer), page)).toMatchObject({ status: 403 });
      expect(await db().user.findUnique({ where: { id } })).toBeNull();
      expect(await db().passkey.count({ where: { userId: id } })).toBe(0);

      // The link still works: the password form creates the account, and then the passkey's challenge is gone with the link.
      const { body: stale } = await passkeyOptions(browser, page);
      const fresh = await browser.visit(link);
      expect((await submitForm(browser, fresh, '/invitation', { password: PASSWORD, password_confirm: PASSWORD })).status).toBe(200);
      expect(await db().user.findUnique({ where: { id } })).toMatchObject({ emailVerified: true });
      const late = await submitForm(browser, page, '/invitation/passkey', { name: 'Laptop', response: JSON.stringify(authenticator.create(stale)) });
      expect(late.status).toBe(400);
      expect(late.html).toContain('This invitation does not work');
      expect(await db().passkey.count({ where: { userId: id } })).toBe(0);
    });
  });
});
