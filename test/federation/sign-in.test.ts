// Signing in through upstream identity providers, end to end over real HTTP on 127.0.0.1, on
// SQLite and PostgreSQL: a bare oidc-provider, a second Gatehouse and a GitHub-style OAuth 2.0
// server as upstreams. The linking rules, the local policy (disabled people, MFA), the account
// page's linking and unlinking, and each failure: a clear page, an audit event, nothing stored.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { dialectOf } from '../../src/db/dialect.js';
import { createIdp } from '../../src/federation/service.js';
import { createFederation } from '../../src/federation/sign-in.js';
import { FLOW_COOKIE } from '../../src/http/federation.js';
import { MAX_SECOND_FACTOR_FAILURES } from '../../src/oidc/interaction-state.js';
import { ACR_MFA } from '../../src/oidc/provider.js';
import { allowAccess, Browser, completeSignIn, submitForm, submitPassword, type Page } from '../helpers/browser.js';
import { authorizationUrl, redeemCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, secretFor, WEB_APP, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
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
    // Not linked: the sign-in page offers to link it with that account's password instead (below).
    const offered = (await fullSignIn('bare')).back;
    expect(offered.html).toContain(`An account with your Bare bare email address (${person.email}) already exists here`);
    expect(await counts()).toEqual(before);
    expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', reason: 'email_in_use', link_offered: true });

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
    bare.behaviour = { account: 'strict-twin' };
    expect((await fullSignIn('strict')).back.html).toContain('Sign in to it with its password now to link Bare strict to it');
    expect((await failures()).at(-1)).toMatchObject({ provider: 'strict', reason: 'email_in_use', link_offered: true });
    for (const [account, status, reason] of [
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
    const offered = (await fullSignIn('github')).back;
    expect(offered.html).toContain('to link GitHub to it');
    expect(await counts()).toEqual(before);
    // The email of someone without a password (created through a provider): refused, nothing offered.
    github.user = { id: 778, login: 'twin2', name: null, emails: [{ email: 'octo@example.com', primary: true, verified: false }] };
    const refused = (await fullSignIn('github')).back;
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('<code>email_in_use</code>');
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

  it('counts federated sign-ins in the metrics by configured provider and outcome, never by a name from the URL', async () => {
    const metric = async (labels: string) => {
      const text = await (await fetch(`${gatehouse.url}/metrics`)).text();
      return Number(new RegExp(`^gatehouse_federated_sign_ins_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const snapshot = async () => ({
      success: await metric('provider="bare",outcome="success"'),
      failure: await metric('provider="bare",outcome="failure"'),
      offered: await metric('provider="bare",outcome="link_offered"'),
      unknown: await metric('provider="_unknown",outcome="failure"'),
      github: await metric('provider="github",outcome="success"'),
    });
    const before = await snapshot();
    bare.accounts.set('counted', { email: 'counted@example.com', email_verified: true });
    bare.behaviour = { account: 'counted' };
    await (await fullSignIn('bare')).claims();
    bare.behaviour = { account: undefined };
    expect((await fullSignIn('bare')).back.status).toBe(403);
    const person = await gatehouse.addPerson();
    bare.accounts.set('counted-twin', { email: person.email, email_verified: false });
    bare.behaviour = { account: 'counted-twin' };
    expect((await fullSignIn('bare')).back.html).toContain('already exists here');
    // A provider nobody configured, named in the URL: counted without its name.
    expect((await new Browser(gatehouse.url).visit('/federation/made-up-name/callback?state=x&code=y')).status).toBe(400);
    expect(await snapshot()).toEqual({ success: before.success + 1, failure: before.failure + 1, offered: before.offered + 1, unknown: before.unknown + 1, github: before.github });
    expect(await (await fetch(`${gatehouse.url}/metrics`)).text()).not.toContain('made-up-name');
  });

  describe('a pending link: the person whose email it is signs in with their password there, and it is linked', () => {
    /** A sign-in through `bare` as a new identity showing `email` (not verified): the sign-in page offering the link. */
    async function linkOffered(email: string, client = WEB_APP) {
      const subject = `pending-${Math.random().toString(36).slice(2, 10)}`;
      bare.accounts.set(subject, { email, email_verified: false });
      bare.behaviour = { account: subject };
      const signIn = await fullSignIn('bare', { client });
      expect(signIn.back.status).toBe(200);
      expect(signIn.back.html).toContain(`An account with your Bare bare email address (${email}) already exists here`);
      expect(signIn.back.html).toMatch(new RegExp(`<input id="email" name="email" type="email"[^>]*value="${email}"`));
      return { ...signIn, subject };
    }
    const linksOf = async (userId: string) => prisma().linkedIdentity.findMany({ where: { userId } });
    const expireInteractions = async () => {
      const dialect = dialectOf(flavour);
      await prisma().$executeRawUnsafe(dialect.sql('UPDATE "OidcArtifact" SET "expiresAt" = ? WHERE "model" = ?'), dialect.time(new Date(Date.now() - 1000)), 'Interaction');
    };

    it('links it after that person signs in with their password, audited as theirs, and the authorization continues', async () => {
      const person = await gatehouse.addPerson();
      const { browser, back, verifier, subject } = await linkOffered(person.email);
      const wrong = await submitPassword(browser, back, { email: person.email, password: WRONG_PASSWORD });
      expect(wrong.status).toBe(401);
      // Still offered after a wrong password; nothing linked.
      expect(wrong.html).toContain('already exists here');
      expect(await linksOf(person.id)).toEqual([]);

      const claims = await finishAtApp(browser, await submitPassword(browser, wrong, person), verifier);
      expect(claims).toMatchObject({ sub: person.id, amr: ['pwd'] });
      expect(await linksOf(person.id)).toEqual([expect.objectContaining({ providerId: 'bare', subject, email: person.email })]);
      expect(await prisma().auditEvent.findMany({ where: { type: 'federation.linked', accountId: person.id } })).toEqual([expect.objectContaining({ details: { provider: 'bare', via: 'local_sign_in' } })]);

      // From now on the upstream identity signs in as them.
      bare.behaviour = { account: subject };
      expect(await (await fullSignIn('bare')).claims()).toMatchObject({ sub: person.id, amr: ['fed'] });
    });

    it('links it only after the second factor the client requires', async () => {
      const person = await gatehouse.addPerson();
      const { browser, back, verifier, subject } = await linkOffered(person.email, MFA_APP);
      const enrol = await submitPassword(browser, back, person);
      expect(enrol.html).toMatch(/action="\/interaction\/[\w-]+\/enroll"/);
      expect(await linksOf(person.id)).toEqual([]);
      const secret = (/id="totp-secret">([^<]+)</.exec(enrol.html)?.[1] ?? '').replace(/\s/g, '');
      const codes = await submitForm(browser, enrol, '/enroll', { code: await codeAt(secret, currentStep()) });
      expect(await linksOf(person.id)).toEqual([]);
      const claims = await finishAtApp(browser, await submitForm(browser, codes, '/continue'), verifier, MFA_APP);
      expect(claims).toMatchObject({ sub: person.id, amr: ['pwd', 'otp'], acr: ACR_MFA });
      expect(await linksOf(person.id)).toEqual([expect.objectContaining({ providerId: 'bare', subject })]);
    });

    it('links nothing when someone else signs in, and forgets the offer', async () => {
      const owner = await gatehouse.addPerson();
      const someoneElse = await gatehouse.addPerson();
      const before = await counts();
      const { browser, back, verifier } = await linkOffered(owner.email);
      const refused = await submitPassword(browser, back, someoneElse);
      expect(refused.status).toBe(403);
      expect(refused.html).toContain('That is not the account with your upstream email address, so nothing was linked');
      expect(refused.html).not.toContain('already exists here');
      expect(await counts()).toEqual(before);
      expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', reason: 'link_account_mismatch' });
      // Signing in again there is an ordinary sign-in: still nothing linked.
      expect(await finishAtApp(browser, await submitPassword(browser, refused, owner), verifier)).toMatchObject({ sub: owner.id, amr: ['pwd'] });
      expect(await counts()).toEqual(before);
    });

    it('links nothing when the second factor is not passed', async () => {
      const person = await gatehouse.addPerson();
      const { browser, back } = await linkOffered(person.email, MFA_APP);
      let page = await submitPassword(browser, back, person);
      for (let attempt = 0; attempt < MAX_SECOND_FACTOR_FAILURES; attempt++) page = await submitForm(browser, page, '/enroll', { code: '000000' });
      expect(page.html).toContain('Too many incorrect codes');
      expect(await linksOf(person.id)).toEqual([]);
    });

    it('refuses, signing no one in, when the identity was linked to someone else meanwhile', async () => {
      const person = await gatehouse.addPerson();
      const other = await gatehouse.addPerson();
      const { browser, back, subject } = await linkOffered(person.email);
      await prisma().linkedIdentity.create({ data: { providerId: 'bare', subject, userId: other.id } });
      const refused = await submitPassword(browser, back, person);
      expect(refused.status).toBe(409);
      expect(refused.html).toContain('This Bare bare account is already linked to another account here');
      expect(refused.redirectedTo).toBeUndefined();
      expect(await linksOf(person.id)).toEqual([]);
      expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', purpose: 'link_on_sign_in', reason: 'identity_linked_elsewhere' });
    });

    it('links nothing once the interaction has expired', async () => {
      const person = await gatehouse.addPerson();
      const { browser, back } = await linkOffered(person.email);
      await expireInteractions();
      const expired = await submitPassword(browser, back, person);
      expect(expired.status).toBe(400);
      expect(expired.html).toContain('<code>session_not_found</code>');
      expect(await linksOf(person.id)).toEqual([]);
    });

    it('links nothing once the offer is older than ten minutes, even in a live interaction', async () => {
      const person = await gatehouse.addPerson();
      const later = createFederation({ db: gatehouse.gatehouse.db, config: gatehouse.config, audit: createAuditLog(gatehouse.gatehouse.db, createLogger({ logLevel: 'silent' })), now: () => new Date(Date.now() + 11 * 60 * 1000) });
      const pending = { provider: 'bare', providerName: 'Bare bare', subject: 'stale', email: person.email, exp: Date.now() + 10 * 60 * 1000 };
      expect(await later.acceptPendingLink(person.id, pending, {})).toBe('link_expired');
      expect((await failures()).at(-1)).toMatchObject({ provider: 'bare', reason: 'link_expired' });
      expect(await later.acceptPendingLink(person.id, { ...pending, exp: Date.now() + 20 * 60 * 1000 }, {})).toBeNull();
      expect(await linksOf(person.id)).toEqual([]);
    });
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

    it('a return after the interaction has expired: the session-expired page, a federation.failure, the flow cookie cleared', async () => {
      bare.accounts.set('never-stored', { email: 'never-stored@example.com', email_verified: true });
      bare.behaviour = { account: 'never-stored' };
      const before = await counts();
      const browser = new Browser(gatehouse.url);
      const { page } = await signInPage(browser);
      const sent = await submitForm(browser, page, '/federation/bare');
      expect(browser.hasCookie(FLOW_COOKIE)).toBe(true);
      const callback = await throughUpstream(sent.redirectedTo as URL);
      const dialect = dialectOf(flavour);
      await prisma().$executeRawUnsafe(dialect.sql('UPDATE "OidcArtifact" SET "expiresAt" = ? WHERE "model" = ?'), dialect.time(new Date(Date.now() - 1000)), 'Interaction');
      const expired = await browser.visit(callback.href);
      expect(expired.status).toBe(400);
      expect(expired.html).toContain('This sign-in page has expired or was opened in another browser');
      expect(browser.hasCookie(FLOW_COOKIE)).toBe(false);
      expect((await failures()).at(-1)).toEqual({ provider: 'bare', purpose: 'login', flow: true, reason: 'interaction_expired' });
      expect(await counts()).toEqual(before);
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
