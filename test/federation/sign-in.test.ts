// Signing in through upstream identity providers, end to end over real HTTP on 127.0.0.1, on
// SQLite and PostgreSQL: a bare oidc-provider, a second Gatehouse and a GitHub-style OAuth 2.0
// server as upstreams. The linking rules, the local policy (disabled people, MFA), the account
// page's linking and unlinking, and each failure: a clear page, an audit event, nothing stored.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createIdp } from '../../src/federation/service.js';
import { ACR_MFA } from '../../src/oidc/provider.js';
import { allowAccess, Browser, completeSignIn, submitForm, type Page } from '../helpers/browser.js';
import { authorizationUrl, redeemCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, secretFor, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { freePort } from '../helpers/ports.js';
import { codeAt, currentStep } from '../helpers/totp.js';
import { gitHubEndpoints, startBareUpstream, startGitHub, type BareUpstream, type FakeGitHub } from '../helpers/upstreams.js';

const MFA_APP = { ...WEB_APP, id: 'mfa-app', secret: secretFor('mfa-app') };

describe.each(await flavours())('signing in through upstream identity providers on %s', (flavour) => {
  let gatehouse: TestGatehouse;
  let bare: BareUpstream;
  let github: FakeGitHub;
  let other: TestGatehouse;
  const otherClient = { id: 'gatehouse-downstream', secret: secretFor('gatehouse-downstream') };

  const declare = (declaration: Record<string, unknown>) =>
    createIdp({ db: gatehouse.gatehouse.db, secrets: [TEST_SECRET], audit: createAuditLog(gatehouse.gatehouse.db, createLogger({ logLevel: 'silent' })), issuer: gatehouse.issuer }, declaration, { via: 'cli' });

  const bareIdp = (id: string, rest: Record<string, unknown>) => ({ id, display_name: `Bare ${id}`, kind: 'oidc', issuer: bare.issuer, client_id: bare.clientId, client_secret: bare.clientSecret, ...rest });

  beforeAll(async () => {
    gatehouse = await startTestGatehouse(flavour, { clients: [webApp(), webApp({ client_id: MFA_APP.id, client_secret: MFA_APP.secret, gatehouse_require_mfa: true })] });
    const callback = (id: string) => `${gatehouse.url}/federation/${id}/callback`;
    bare = await startBareUpstream(['bare', 'strict', 'trusted'].map(callback));
    github = await startGitHub();
    other = await startTestGatehouse(flavour, { people: [ALICE] });
    await other.addClient(webApp({ client_id: otherClient.id, client_secret: otherClient.secret, redirect_uris: [callback('gatehouse-b')], scope: 'openid profile email' }));

    await declare(bareIdp('bare', { create_accounts: true, link_by_verified_email: true }));
    await declare(bareIdp('strict', { email_domains: ['example.com'] }));
    await declare(bareIdp('trusted', { create_accounts: true, link_by_verified_email: true, trusted: true }));
    await declare({ id: 'github', display_name: 'GitHub', kind: 'oauth2', preset: 'github', ...gitHubEndpoints(github), client_id: github.clientId, client_secret: github.clientSecret, create_accounts: true, link_by_verified_email: true });
    await declare({ id: 'gatehouse-b', display_name: 'Gatehouse B', kind: 'oidc', issuer: other.issuer, client_id: otherClient.id, client_secret: otherClient.secret, create_accounts: true });
    await declare({ id: 'down', display_name: 'Nobody Home', kind: 'oidc', issuer: `http://127.0.0.1:${await freePort()}`, client_id: 'x', client_secret: 'y', create_accounts: true });
  });

  afterAll(async () => {
    await other?.close();
    await gatehouse?.close();
    await bare?.close();
    await github?.close();
  });

  const prisma = () => gatehouse.gatehouse.db.prisma;
  const counts = async () => ({ users: await prisma().user.count(), links: await prisma().linkedIdentity.count() });
  const failures = async () => (await prisma().auditEvent.findMany({ where: { type: 'federation.failure' }, orderBy: { at: 'asc' } })).map((e) => e.details as Record<string, unknown>);

  /** An app's authorization request at Gatehouse: the sign-in page, and the verifier to redeem the code with. */
  async function signInPage(browser: Browser, client = WEB_APP) {
    const { url, verifier } = authorizationUrl(gatehouse.url, client, { scope: 'openid email profile' });
    return { page: await browser.visit(url.href), verifier };
  }

  /** Through the upstream's pages (a person signed in there, or refused) and back to Gatehouse's callback. */
  async function throughUpstream(to: URL, person?: { email: string; password: string }): Promise<URL> {
    const upstream = new Browser(to.origin);
    const page = await upstream.visit(to.href);
    if (page.redirectedTo) return page.redirectedTo;
    if (!person) throw new Error(`the upstream did not send the browser back:\n${page.html.slice(0, 400)}`);
    return completeSignIn(upstream, page, person);
  }

  /** Clicks the provider's button and goes through the upstream; the page Gatehouse then shows. */
  async function signInWith(browser: Browser, page: Page, idp: string, options: { person?: { email: string; password: string }; alterCallback?: (url: URL) => void } = {}) {
    const sent = await submitForm(browser, page, `/federation/${idp}`);
    if (!sent.redirectedTo) return sent;
    const callback = await throughUpstream(sent.redirectedTo, options.person);
    options.alterCallback?.(callback);
    return browser.visit(callback.href);
  }

  /** Consent when asked, then the code redeemed: the ID token's claims. */
  async function finishAtApp(browser: Browser, page: Page & { redirectedTo?: URL }, verifier: string, client = WEB_APP) {
    const done = page.redirectedTo ? page : await allowAccess(browser, page);
    const code = done.redirectedTo?.searchParams.get('code');
    if (!code) throw new Error(`no code; page:\n${done.html.slice(0, 600)}`);
    const tokens = await redeemCode(gatehouse.url, client, code, verifier);
    expect(tokens.status).toBe(200);
    return decodeJwt(tokens.body.id_token as string);
  }

  async function fullSignIn(idp: string, options: { client?: typeof WEB_APP; person?: { email: string; password: string } } = {}) {
    const browser = new Browser(gatehouse.url);
    const { page, verifier } = await signInPage(browser, options.client);
    const back = await signInWith(browser, page, idp, options);
    return { browser, back, verifier, claims: () => finishAtApp(browser, back, verifier, options.client) };
  }

  it('shows one button per enabled provider on the sign-in page, as a form that works without JavaScript', async () => {
    const { page } = await signInPage(new Browser(gatehouse.url));
    for (const idp of ['bare', 'strict', 'github', 'gatehouse-b']) expect(page.html).toMatch(new RegExp(`<form method="post" action="/interaction/[\\w-]+/federation/${idp}">`));
    expect(page.html).toContain('Sign in with GitHub');
  });

  it('creates a person on the first sign-in (create_accounts), then finds them by (provider, subject); the ID token says fed', async () => {
    bare.accounts.set('fresh', { email: 'Fresh@Example.com', email_verified: true, name: 'Fresh Person' });
    bare.behaviour = { account: 'fresh' };
    const before = await counts();
    const claims = await (await fullSignIn('bare')).claims();
    expect(claims.amr).toEqual(['fed']);
    const user = await prisma().user.findUniqueOrThrow({ where: { id: claims.sub as string } });
    expect(user).toMatchObject({ email: 'fresh@example.com', emailVerified: true, name: 'Fresh Person', passwordHash: null });
    expect(await counts()).toEqual({ users: before.users + 1, links: before.links + 1 });

    const again = await (await fullSignIn('bare')).claims();
    expect(again.sub).toBe(claims.sub);
    expect(await counts()).toEqual({ users: before.users + 1, links: before.links + 1 });
    const events = await prisma().auditEvent.findMany({ where: { accountId: claims.sub as string } });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['federation.account_created', 'federation.sign_in']));
  });

  it('links to the person whose email matches only when the upstream says it is verified (link_by_verified_email)', async () => {
    const person = await gatehouse.addPerson();
    bare.accounts.set('unverified-twin', { email: person.email, email_verified: false });
    bare.behaviour = { account: 'unverified-twin' };
    const before = await counts();
    const refused = (await fullSignIn('bare')).back;
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('Sign in once with its password, then link Bare bare on your account page');
    expect(await counts()).toEqual(before);
    expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', reason: 'email_in_use' });

    bare.accounts.set('verified-twin', { email: person.email, email_verified: true });
    bare.behaviour = { account: 'verified-twin' };
    const claims = await (await fullSignIn('bare')).claims();
    expect(claims.sub).toBe(person.id);
    expect(await prisma().linkedIdentity.findMany({ where: { userId: person.id } })).toEqual([expect.objectContaining({ providerId: 'bare', subject: 'verified-twin' })]);
  });

  it('never links by email when the provider does not allow it, creates no one unless allowed, and keeps to its email domains', async () => {
    const person = await gatehouse.addPerson();
    bare.accounts.set('strict-twin', { email: person.email, email_verified: true });
    bare.accounts.set('stranger', { email: 'stranger@example.com', email_verified: true });
    bare.accounts.set('outsider', { email: 'outsider@elsewhere.org', email_verified: true });
    const before = await counts();
    for (const [account, status, reason] of [
      ['strict-twin', 409, 'email_in_use'],
      ['stranger', 403, 'no_account'],
      ['outsider', 403, 'email_domain_not_allowed'],
    ] as const) {
      bare.behaviour = { account };
      const page = (await fullSignIn('strict')).back;
      expect(page.status, account).toBe(status);
      expect(page.html).toContain(`<code>${reason}</code>`);
      expect((await failures()).at(-1)).toMatchObject({ provider: 'strict', reason });
    }
    expect(await counts()).toEqual(before);
  });

  it('refuses a disabled person', async () => {
    bare.accounts.set('to-disable', { email: 'to-disable@example.com', email_verified: true });
    bare.behaviour = { account: 'to-disable' };
    const { sub } = await (await fullSignIn('bare')).claims();
    await prisma().user.update({ where: { id: sub as string }, data: { disabled: true } });
    const page = (await fullSignIn('bare')).back;
    expect(page.status).toBe(403);
    expect(page.html).toContain('This account is disabled');
    expect((await failures()).at(-1)).toMatchObject({ reason: 'account_disabled' });
  });

  it('still asks for the local second factor when the client requires MFA, unless a trusted provider shows MFA upstream', async () => {
    bare.accounts.set('mfa-person', { email: 'mfa-person@example.com', email_verified: true });
    bare.behaviour = { account: 'mfa-person', amr: ['pwd', 'otp'] };
    // Not trusted: its amr does not count; the person is asked to set up a second factor here.
    const untrusted = await fullSignIn('bare', { client: MFA_APP });
    expect(untrusted.back.html).toMatch(/action="\/interaction\/[\w-]+\/enroll"/);
    const secret = (/id="totp-secret">([^<]+)</.exec(untrusted.back.html)?.[1] ?? '').replace(/\s/g, '');
    const step = currentStep();
    const codes = await submitForm(untrusted.browser, untrusted.back, '/enroll', { code: await codeAt(secret, step) });
    const enrolled = await finishAtApp(untrusted.browser, await submitForm(untrusted.browser, codes, '/continue'), untrusted.verifier, MFA_APP);
    expect(enrolled).toMatchObject({ acr: ACR_MFA, amr: ['fed', 'otp'] });

    // With TOTP on, every sign-in through an untrusted provider asks for a code, as a password sign-in does.
    const later = await fullSignIn('bare');
    expect(later.back.html).toMatch(/action="\/interaction\/[\w-]+\/mfa"/);
    const withCode = await finishAtApp(later.browser, await submitForm(later.browser, later.back, '/mfa', { code: await codeAt(secret, step + 1) }), later.verifier);
    expect(withCode).toMatchObject({ acr: ACR_MFA, amr: ['fed', 'otp'] });

    const trusted = await (await fullSignIn('trusted', { client: MFA_APP })).claims();
    expect(trusted.acr).toBe(ACR_MFA);
    expect(trusted.amr).toEqual(['fed', 'mfa']);

    // Trusted, but the upstream sign-in was a password alone: the local code is asked for.
    bare.behaviour = { account: 'mfa-person', amr: ['pwd'] };
    const single = (await fullSignIn('trusted', { client: MFA_APP })).back;
    expect(single.html).toMatch(/action="\/interaction\/[\w-]+\/mfa"/);
  });

  it('signs in through a GitHub-style OAuth 2.0 server, reading the verified email from /user/emails', async () => {
    github.user = { id: 4242, login: 'octo', name: 'Octo Cat', avatar_url: 'https://avatars.example/u/4242', emails: [{ email: 'octo@users.example', primary: false, verified: false }, { email: 'Octo@Example.com', primary: true, verified: true }] };
    const claims = await (await fullSignIn('github')).claims();
    expect(claims.amr).toEqual(['fed']);
    const user = await prisma().user.findUniqueOrThrow({ where: { id: claims.sub as string } });
    expect(user).toMatchObject({ email: 'octo@example.com', emailVerified: true, name: 'Octo Cat', preferredUsername: 'octo', picture: 'https://avatars.example/u/4242' });
    expect(await prisma().linkedIdentity.findMany({ where: { userId: user.id } })).toEqual([expect.objectContaining({ providerId: 'github', subject: '4242' })]);

    // An unverified GitHub email of someone here links nothing.
    const person = await gatehouse.addPerson();
    github.user = { id: 777, login: 'twin', name: null, emails: [{ email: person.email, primary: true, verified: false }] };
    const before = await counts();
    const refused = (await fullSignIn('github')).back;
    expect(refused.status).toBe(409);
    expect(await counts()).toEqual(before);

    github.user = undefined;
    const denied = (await fullSignIn('github')).back;
    expect(denied.status).toBe(403);
    expect(denied.html).toContain('You did not allow the sign-in at GitHub');
    expect((await failures()).at(-1)).toMatchObject({ provider: 'github', reason: 'refused_upstream' });
  });

  it('signs in through a second Gatehouse as an OpenID Connect upstream', async () => {
    const claims = await (await fullSignIn('gatehouse-b', { person: ALICE })).claims();
    expect(claims.amr).toEqual(['fed']);
    const user = await prisma().user.findUniqueOrThrow({ where: { id: claims.sub as string } });
    expect(user).toMatchObject({ email: ALICE.email, name: ALICE.name });
    expect(await prisma().linkedIdentity.findMany({ where: { userId: user.id } })).toEqual([expect.objectContaining({ providerId: 'gatehouse-b', subject: other.idOf(ALICE) })]);
  });

  describe('each failure: a clear page, an audit event, nothing stored', () => {
    const cases: { name: string; idp: string; status: number; reason: string; text: string; arrange: () => void; alterCallback?: (url: URL) => void }[] = [
      { name: 'the upstream is unreachable', idp: 'down', status: 502, reason: 'upstream_unreachable', text: 'Nobody Home could not be reached', arrange: () => {} },
      { name: 'the person refused upstream', idp: 'bare', status: 403, reason: 'refused_upstream', text: 'You did not allow the sign-in at Bare bare', arrange: () => (bare.behaviour = { account: undefined }) },
      { name: 'the state does not match', idp: 'bare', status: 400, reason: 'state_mismatch', text: 'does not belong to a sign-in started in this browser', arrange: () => (bare.behaviour = { account: 'never-stored' }), alterCallback: (url) => url.searchParams.set('state', 'forged') },
      { name: 'the ID token signature does not verify', idp: 'bare', status: 502, reason: 'bad_signature', text: 'signature that does not verify', arrange: () => (bare.behaviour = { account: 'never-stored', tamper: 'other_key' }) },
      { name: 'the ID token names another issuer', idp: 'bare', status: 502, reason: 'wrong_issuer', text: 'came from another issuer', arrange: () => (bare.behaviour = { account: 'never-stored', tamper: 'other_issuer' }) },
      { name: 'the ID token answers another request (nonce)', idp: 'bare', status: 502, reason: 'invalid_id_token', text: 'is expired or does not match this request', arrange: () => (bare.behaviour = { account: 'never-stored', tamper: 'other_nonce' }) },
      { name: 'the ID token has expired', idp: 'bare', status: 502, reason: 'invalid_id_token', text: 'is expired or does not match this request', arrange: () => (bare.behaviour = { account: 'never-stored', tamper: 'expired' }) },
      { name: 'the ID token is for another audience', idp: 'bare', status: 502, reason: 'wrong_audience', text: 'meant for another application', arrange: () => (bare.behaviour = { account: 'never-stored', tamper: 'other_audience' }) },
    ];

    it.each(cases)('$name', async ({ idp, status, reason, text, arrange, alterCallback }) => {
      bare.accounts.set('never-stored', { email: 'never-stored@example.com', email_verified: true });
      arrange();
      const before = await counts();
      const browser = new Browser(gatehouse.url);
      const { page } = await signInPage(browser);
      const shown = await signInWith(browser, page, idp, { alterCallback });
      expect(shown.status, JSON.stringify((await failures()).at(-1))).toBe(status);
      expect(shown.html, JSON.stringify((await failures()).at(-1))).toContain(text);
      expect(shown.html).toMatch(/<a href="\/interaction\/[\w-]+">Back<\/a>/);
      expect((await failures()).at(-1)).toMatchObject({ provider: idp, reason });
      expect(await counts()).toEqual(before);
      expect(await prisma().user.findUnique({ where: { email: 'never-stored@example.com' } })).toBeNull();
    });

    it('a return without the cookie of a sign-in started in this browser is refused', async () => {
      bare.behaviour = { account: 'never-stored' };
      const browser = new Browser(gatehouse.url);
      const { page } = await signInPage(browser);
      const sent = await submitForm(browser, page, '/federation/bare');
      const callback = await throughUpstream(sent.redirectedTo as URL);
      const stranger = await new Browser(gatehouse.url).visit(callback.href);
      expect(stranger.status).toBe(400);
      expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', reason: 'state_mismatch' });
      expect(await prisma().user.findUnique({ where: { email: 'never-stored@example.com' } })).toBeNull();
    });

    it('the page speaks Korean', async () => {
      bare.behaviour = { account: undefined };
      const browser = new Browser(gatehouse.url, { 'accept-language': 'ko' });
      const { page } = await signInPage(browser);
      const shown = await signInWith(browser, page, 'bare');
      expect(shown.status).toBe(403);
      expect(shown.html).toContain('Bare bare에서 로그인을 허용하지 않으셨거나 거부되어 로그인하지 못했습니다.');
    });
  });

  describe('the account page', () => {
    /** Signs in at /account through `idp`: the account page. */
    async function accountPage(idp: string) {
      const browser = new Browser(gatehouse.url);
      const page = await signInWith(browser, await browser.visit('/account'), idp);
      expect(page.url).toContain('/account');
      return { browser, page };
    }

    it('lists linked providers, links another through the upstream, unlinks one, and refuses to remove the last way to sign in', async () => {
      bare.accounts.set('account-page', { email: 'account-page@example.com', email_verified: true });
      bare.behaviour = { account: 'account-page' };
      const { browser, page } = await accountPage('bare');
      expect(page.html).toContain('Bare bare');
      expect(page.html).toMatch(/action="\/account\/federation\/bare\/unlink"/);
      expect(page.html).toMatch(/action="\/account\/federation\/github\/link"/);
      // No password to change or to confirm two-step verification with: the page says so and offers to set one instead.
      expect(page.html).toContain('You have no password: you sign in with a passkey or a linked account');
      expect(page.html).not.toContain('action="/account/password"');
      expect(page.html).toContain('action="/account/password/set"');

      github.user = { id: 9001, login: 'linker', name: 'Linker', emails: [{ email: 'linker@elsewhere.org', primary: true, verified: true }] };
      const sent = await submitForm(browser, page, '/account/federation/github/link');
      const linked = await browser.visit((await throughUpstream(sent.redirectedTo as URL)).href);
      expect(linked.url).toContain('done=idp_linked');
      expect(linked.html).toMatch(/action="\/account\/federation\/github\/unlink"/);
      const user = await prisma().user.findUniqueOrThrow({ where: { email: 'account-page@example.com' } });
      expect((await prisma().linkedIdentity.findMany({ where: { userId: user.id } })).map((l) => l.providerId).sort()).toEqual(['bare', 'github']);

      const unlinked = await submitForm(browser, linked, '/account/federation/github/unlink');
      expect(unlinked.url).toContain('done=idp_unlinked');
      // No password and one link left: that link is the only way in.
      const refused = await submitForm(browser, unlinked, '/account/federation/bare/unlink');
      expect(refused.status).toBe(409);
      expect(refused.html).toContain('This is your only way to sign in');
      expect(await prisma().linkedIdentity.count({ where: { userId: user.id } })).toBe(1);
      expect((await prisma().auditEvent.findMany({ where: { accountId: user.id, type: { in: ['federation.linked', 'federation.unlinked'] } } })).map((e) => e.type).sort()).toEqual(['federation.linked', 'federation.unlinked']);
    });

    it('a person with a password may unlink their only provider; a link already held by someone else is refused', async () => {
      const person = await gatehouse.addPerson();
      bare.accounts.set('with-password', { email: person.email, email_verified: true });
      bare.behaviour = { account: 'with-password' };
      const { browser, page } = await accountPage('bare');
      expect(page.html).toContain('action="/account/password"');
      // GitHub account 4242 is linked to octo@example.com already.
      github.user = { id: 4242, login: 'octo', name: 'Octo Cat', emails: [{ email: 'octo@example.com', primary: true, verified: true }] };
      const sent = await submitForm(browser, page, '/account/federation/github/link');
      const taken = await browser.visit((await throughUpstream(sent.redirectedTo as URL)).href);
      expect(taken.status).toBe(409);
      expect(taken.html).toContain('already linked to another account');
      expect(await prisma().linkedIdentity.count({ where: { userId: person.id } })).toBe(1);

      const unlinked = await submitForm(browser, await browser.visit('/account'), '/account/federation/bare/unlink');
      expect(unlinked.url).toContain('done=idp_unlinked');
      expect(await prisma().linkedIdentity.count({ where: { userId: person.id } })).toBe(0);
    });
  });
});
