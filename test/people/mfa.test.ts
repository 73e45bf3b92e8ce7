// Multi-factor sign-in with TOTP (RFC 6238): enrolment during sign-in when a client requires
// it, the code step after the password, recovery codes, and what an app sees in the ID token.
// Codes are made here with otplib from the secret the enrolment page shows.
import type * as oidc from 'openid-client';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventType } from '../../src/audit/store.js';
import { createUserStore } from '../../src/people/store.js';
import { decrypt, DecryptionError } from '../../src/core/secrets.js';
import { createMfa } from '../../src/people/mfa.js';
import { Browser, findForm, submitForm, submitPassword, type Page } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { APP, credentialsOf, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { encryptV1 } from '../helpers/legacy-secrets.js';
import { authorizeIn, discover } from '../helpers/relying-party.js';
import { anotherCode, codeAt, currentStep } from '../helpers/totp.js';

const ACR_MFA = 'urn:gatehouse:acr:mfa';
const ACR_PASSWORD = 'urn:gatehouse:acr:password';
/** A client that requires a second factor of everyone who signs in to it. */
const STRICT = credentialsOf('strict-app');

type Visited = Page & { redirectedTo?: URL };

describe.each(await flavours())('multi-factor sign-in on %s', (flavour) => {
  let server: TestGatehouse;
  const strictApp = webApp({ client_id: STRICT.id, client_secret: STRICT.secret, client_name: 'Strict App', gatehouse_require_mfa: true });
  beforeAll(async () => (server = await startTestGatehouse(flavour, { clients: [strictApp, webApp()] })));
  afterAll(async () => server?.close());

  /** Starts an authorization in `browser`; `finish` redeems the code the app gets back and returns the ID token's claims. */
  async function authorize(browser: Browser, client: { id: string; secret: string }, params: Record<string, string> = {}) {
    const { page, finish } = await authorizeIn(browser, await discover(server.issuer, client), { redirect_uri: WEB_APP.redirectUri, scope: 'openid', ...params });
    return {
      page,
      finish: async (callback: URL | undefined) => {
        expect(callback?.origin).toBe(APP);
        return (await finish(callback)).claims() as oidc.IDToken;
      },
    };
  }

  /** Allows access when the consent page appears (the first time a person uses a client). */
  const consentIfAsked = async (browser: Browser, page: Visited) => (page.redirectedTo ? page : submitForm(browser, page, '/confirm'));

  const isEnrolPage = (page: Page) => page.html.includes('/enroll"');
  const isCodePage = (page: Page) => page.html.includes('/mfa"');
  const isSignInPage = (page: Page) => page.html.includes('/login"');

  const secretOnPage = (page: Page) => (/id="totp-secret">([A-Z2-7 ]+)</.exec(page.html)?.[1] ?? '').replace(/ /g, '');
  const recoveryCodesOnPage = (page: Page) => [...page.html.matchAll(/<li><code>([a-z2-7-]+)<\/code><\/li>/g)].map((m) => m[1] as string);
  const user = (id: string) => createUserStore(server.gatehouse.db).findById(id);
  const events = (accountId: string, type: AuditEventType) => server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId, type } });

  /**
   * The code an authenticator app shows for the next time step not yet used with this secret:
   * the server accepts each step once (and the one after the current one, for clock drift), so
   * a test that signs in twice within 30 seconds moves on a step, waiting if it must.
   */
  const usedSteps = new Map<string, number>();
  async function nextCode(secret: string): Promise<string> {
    const current = currentStep();
    const step = Math.max(current, (usedSteps.get(secret) ?? current - 1) + 1);
    if (step > current + 1) await new Promise((resolve) => setTimeout(resolve, (step - 1) * 30_000 - Date.now() + 50));
    usedSteps.set(secret, step);
    return codeAt(secret, step);
  }

  /** A code the app would not show now (the current one, shifted). */
  const wrongCode = async (secret: string) => anotherCode(await codeAt(secret, currentStep()));

  /** Signs `person` up for TOTP through a strict client's sign-in and returns the secret and recovery codes. */
  async function enrol(person: { id: string; email: string; password: string }) {
    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, STRICT);
    const enrolPage = await submitPassword(browser, page, person);
    expect(isEnrolPage(enrolPage)).toBe(true);
    const secret = secretOnPage(enrolPage);
    const codesPage = await submitForm(browser, enrolPage, '/enroll', { code: await nextCode(secret) });
    const recoveryCodes = recoveryCodesOnPage(codesPage);
    expect(recoveryCodes).toHaveLength(10);
    await finish((await consentIfAsked(browser, await submitForm(browser, codesPage, '/continue'))).redirectedTo);
    return { secret, recoveryCodes };
  }

  it('enrols a person during sign-in to a client that requires MFA: QR code, wrong code refused, 10 recovery codes, MFA in the ID token', async () => {
    const alice = await server.addPerson();
    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, STRICT);
    expect(isSignInPage(page)).toBe(true);

    const enrolPage = await submitPassword(browser, page, alice);
    expect(enrolPage.status).toBe(200);
    expect(enrolPage.url).toMatch(/\/interaction\/[\w-]+$/);
    expect(enrolPage.html).toMatch(/<img class="qr-code" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    expect(enrolPage.html).toMatch(/<label for="code">/);
    expect(enrolPage.html).toContain('autocomplete="one-time-code"');
    expect(enrolPage.html).toContain('inputmode="numeric"');
    const secret = secretOnPage(enrolPage);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    // Pending, and kept only encrypted: the secret on the page is what the database decrypts to.
    const pending = await user(alice.id);
    expect(pending?.totpEnabledAt).toBeNull();
    expect(pending?.totpSecretEncrypted).toMatch(/^v2\./);
    expect(pending?.totpSecretEncrypted).not.toContain(secret);
    expect(decrypt(pending?.totpSecretEncrypted as string, [TEST_SECRET], `totp:${pending?.id}`).plaintext).toBe(secret);

    const wrong = await submitForm(browser, enrolPage, '/enroll', { code: await wrongCode(secret) });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('That code is not right');
    expect(isEnrolPage(wrong)).toBe(true);
    expect((await user(alice.id))?.totpEnabledAt).toBeNull();
    expect(await events(alice.id, 'mfa.failure')).toHaveLength(1);

    const codesPage = await submitForm(browser, wrong, '/enroll', { code: await nextCode(secret) });
    expect(codesPage.status).toBe(200);
    const recoveryCodes = recoveryCodesOnPage(codesPage);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    expect((await user(alice.id))?.totpEnabledAt).toBeInstanceOf(Date);
    expect(await events(alice.id, 'mfa.enrolled')).toHaveLength(1);

    // Recovery codes are stored only as hashes.
    const rows = await server.gatehouse.db.prisma.recoveryCode.findMany({ where: { userId: alice.id } });
    expect(rows).toHaveLength(10);
    for (const row of rows) {
      expect(row.codeHash).toMatch(/^[0-9a-f]{64}$/);
      for (const code of recoveryCodes) {
        expect(row.codeHash).not.toContain(code.replace(/-/g, ''));
      }
    }

    const claims = await finish((await consentIfAsked(browser, await submitForm(browser, codesPage, '/continue'))).redirectedTo);
    expect(claims.sub).toBe(alice.id);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);
  });

  it('asks an enrolled person for the code after the password: wrong code refused, right code gives amr pwd+otp and the MFA acr', async () => {
    const bob = await server.addPerson();
    const { secret } = await enrol(bob);

    // Any client, even one that does not require MFA.
    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, WEB_APP);
    const codePage = await submitPassword(browser, page, bob);
    expect(codePage.status).toBe(200);
    expect(isCodePage(codePage)).toBe(true);
    expect(codePage.html).toMatch(/<label for="code">/);
    expect(codePage.html).toContain('autocomplete="one-time-code"');
    expect(codePage.html).toContain('inputmode="numeric"');
    expect(codePage.html).toContain('Use a recovery code instead');
    expect(findForm(codePage.html, '/mfa').fields.csrf_token).toMatch(/^[\w-]{43}$/);
    expect(findForm(codePage.html, '/recovery').fields.csrf_token).toMatch(/^[\w-]{43}$/);

    const wrong = await submitForm(browser, codePage, '/mfa', { code: await wrongCode(secret) });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('That code is not right');
    expect(wrong.redirectedTo).toBeUndefined();
    const failures = await events(bob.id, 'mfa.failure');
    expect(failures.at(-1)?.details).toMatchObject({ method: 'totp' });

    const code = await nextCode(secret);
    const done = await consentIfAsked(browser, await submitForm(browser, wrong, '/mfa', { code }));
    const claims = await finish(done.redirectedTo);
    expect(claims.sub).toBe(bob.id);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);

    // The same code a second time, even in another browser with the right password: refused.
    const replay = new Browser(server.issuer);
    const again = await submitPassword(replay, (await authorize(replay, WEB_APP)).page, bob);
    const refused = await submitForm(replay, again, '/mfa', { code });
    expect(refused.status).toBe(401);
    expect(refused.redirectedTo).toBeUndefined();
  });

  it('accepts a recovery code once instead of the app, and never twice', async () => {
    const carol = await server.addPerson();
    const { recoveryCodes } = await enrol(carol);
    const [code] = recoveryCodes as [string];

    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, STRICT);
    const codePage = await submitPassword(browser, page, carol);
    // Case and dashes do not matter.
    const done = await submitForm(browser, codePage, '/recovery', { recovery_code: code.toUpperCase().replace(/-/g, ' ') });
    const claims = await finish(done.redirectedTo);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);
    const used = await events(carol.id, 'mfa.recovery_code_used');
    expect(used).toHaveLength(1);
    expect(used[0]?.details).toEqual({ remaining: 9 });
    expect(JSON.stringify(used[0])).not.toContain(code);

    const other = new Browser(server.issuer);
    const again = await authorize(other, STRICT);
    const secondCodePage = await submitPassword(other, again.page, carol);
    const refused = await submitForm(other, secondCodePage, '/recovery', { recovery_code: code });
    expect(refused.status).toBe(401);
    expect(refused.redirectedTo).toBeUndefined();
    expect(refused.html).toContain('not valid or has already been used');
    expect(await server.gatehouse.db.prisma.recoveryCode.count({ where: { userId: carol.id, usedAt: { not: null } } })).toBe(1);
  });

  it('leaves a person without MFA on password-only sign-in for clients that do not require it', async () => {
    const dave = await server.addPerson();
    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, WEB_APP);
    const claims = await finish((await consentIfAsked(browser, await submitPassword(browser, page, dave))).redirectedTo);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe(ACR_PASSWORD);
    expect((await user(dave.id))?.totpSecretEncrypted).toBeNull();

    // A silent request that needs MFA cannot be satisfied by this password-only session.
    const silent = await authorize(browser, WEB_APP, { acr_values: ACR_MFA, prompt: 'none' });
    expect(silent.page.redirectedTo?.searchParams.get('error')).toBe('login_required');
  });

  it('asks a password-only session to sign in again, and to enrol, when a request asks for acr_values=mfa', async () => {
    const erin = await server.addPerson();
    const browser = new Browser(server.issuer);
    const first = await authorize(browser, WEB_APP);
    expect((await first.finish((await consentIfAsked(browser, await submitPassword(browser, first.page, erin))).redirectedTo)).acr).toBe(ACR_PASSWORD);

    // Same session, no MFA requested: straight back to the app.
    const quiet = await authorize(browser, WEB_APP);
    expect(quiet.page.redirectedTo?.searchParams.get('code')).toBeTruthy();

    const stepUp = await authorize(browser, WEB_APP, { acr_values: ACR_MFA });
    expect(isSignInPage(stepUp.page)).toBe(true);
    const enrolPage = await submitPassword(browser, stepUp.page, erin);
    expect(isEnrolPage(enrolPage)).toBe(true);
    const codesPage = await submitForm(browser, enrolPage, '/enroll', { code: await nextCode(secretOnPage(enrolPage)) });
    expect(recoveryCodesOnPage(codesPage)).toHaveLength(10);
    const claims = await stepUp.finish((await consentIfAsked(browser, await submitForm(browser, codesPage, '/continue'))).redirectedTo);
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.acr).toBe(ACR_MFA);

    // The session is now an MFA one: a client that requires MFA needs no new sign-in.
    const strict = await authorize(browser, STRICT);
    expect(strict.page.html).not.toContain('/login"');
  });

  it('honours an essential acr claim in the claims parameter', async () => {
    const frank = await server.addPerson();
    const { secret } = await enrol(frank);
    const browser = new Browser(server.issuer);
    const first = await authorize(browser, WEB_APP);
    const codePage = await submitPassword(browser, first.page, frank);
    await first.finish((await consentIfAsked(browser, await submitForm(browser, codePage, '/mfa', { code: await nextCode(secret) }))).redirectedTo);

    const claims = JSON.stringify({ id_token: { acr: { essential: true, value: ACR_MFA } } });
    const again = await authorize(browser, WEB_APP, { claims });
    expect((await again.finish(again.page.redirectedTo)).acr).toBe(ACR_MFA);

    // A person without MFA asked for it by an essential claim must enrol.
    const grace = await server.addPerson();
    const other = new Browser(server.issuer);
    const essential = await authorize(other, WEB_APP, { claims });
    expect(isEnrolPage(await submitPassword(other, essential.page, grace))).toBe(true);
  });

  it('refuses a code posted without the password step, from another browser, or without the form token', async () => {
    const henry = await server.addPerson();
    const { secret } = await enrol(henry);

    // The sign-in page's own token, but no password step in this interaction.
    const browser = new Browser(server.issuer);
    const { page } = await authorize(browser, STRICT);
    const login = findForm(page.html, '/login');
    const mfaAction = login.action.replace(/\/login$/, '/mfa');
    for (const [action, field] of [
      [mfaAction, { code: await generate({ secret }) }],
      [login.action.replace(/\/login$/, '/recovery'), { recovery_code: 'aaaa-bbbb-cccc-dddd' }],
      [login.action.replace(/\/login$/, '/enroll'), { code: await generate({ secret }) }],
      [login.action.replace(/\/login$/, '/continue'), {}],
    ] as const) {
      const forged = await browser.visit(action, { form: { csrf_token: login.fields.csrf_token as string, ...field } });
      expect(forged.status).toBe(400);
      expect(forged.html).toContain('not expected now');
      expect(forged.redirectedTo).toBeUndefined();
    }

    // After the password step: the code form needs its token.
    const codePage = await submitPassword(browser, page, henry);
    const form = findForm(codePage.html, '/mfa');
    const missing = await browser.visit(form.action, { form: { code: await generate({ secret }) } });
    expect(missing.status).toBe(403);
    const wrongToken = await browser.visit(form.action, { form: { csrf_token: 'x'.repeat(43), code: await generate({ secret }) } });
    expect(wrongToken.status).toBe(403);
    const recovery = findForm(codePage.html, '/recovery');
    expect((await browser.visit(recovery.action, { form: { recovery_code: 'aaaa-bbbb-cccc-dddd' } })).status).toBe(403);

    // Another browser (no interaction cookie) cannot use this interaction, token or not.
    const stranger = new Browser(server.issuer);
    const stolen = await stranger.visit(form.action, { form: { ...form.fields, code: await generate({ secret }) } });
    expect(stolen.status).toBe(400);
    expect(stolen.redirectedTo).toBeUndefined();

    // The real browser still can.
    expect((await browser.visit(form.action, { form: { ...form.fields, code: await nextCode(secret) } })).redirectedTo?.origin).toBe(APP);
  });

  it('requires the form token on the enrolment and recovery-code pages', async () => {
    const ivy = await server.addPerson();
    const browser = new Browser(server.issuer);
    const { page } = await authorize(browser, STRICT);
    const enrolPage = await submitPassword(browser, page, ivy);
    const enrolForm = findForm(enrolPage.html, '/enroll');
    const secret = secretOnPage(enrolPage);
    expect((await browser.visit(enrolForm.action, { form: { code: await generate({ secret }) } })).status).toBe(403);
    expect((await user(ivy.id))?.totpEnabledAt).toBeNull();

    const codesPage = await submitForm(browser, enrolPage, '/enroll', { code: await nextCode(secret) });
    const cont = findForm(codesPage.html, '/continue');
    expect((await browser.visit(cont.action, { form: {} })).status).toBe(403);
    // Reloading the interaction shows no codes again.
    const reloaded = await browser.visit(cont.action.replace(/\/continue$/, ''));
    expect(recoveryCodesOnPage(reloaded)).toHaveLength(0);
    expect(findForm(reloaded.html, '/continue').fields.csrf_token).toBe(cont.fields.csrf_token);
  });

  it('forgets the password step after five wrong codes', async () => {
    const jack = await server.addPerson();
    const { secret } = await enrol(jack);
    const browser = new Browser(server.issuer);
    const { page } = await authorize(browser, WEB_APP);
    let current: Visited = await submitPassword(browser, page, jack);
    for (let attempt = 1; attempt <= 4; attempt++) {
      current = await submitForm(browser, current, '/mfa', { code: await wrongCode(secret) });
      expect(current.status).toBe(401);
      expect(isCodePage(current)).toBe(true);
    }
    const form = findForm(current.html, '/mfa');
    current = await browser.visit(form.action, { form: { ...form.fields, code: await wrongCode(secret) } });
    expect(current.status).toBe(401);
    expect(current.html).toContain('Too many incorrect codes');
    expect(isSignInPage(current)).toBe(true);
    // The right code no longer helps without the password again.
    const late = await browser.visit(form.action, { form: { ...form.fields, code: await generate({ secret }) } });
    expect(late.status).toBe(400);
  });

  it('counts wrong codes against the account across password steps: once locked, a right password does not help, nor a right code or recovery code', async () => {
    const mallory = await server.addPerson();
    const { secret, recoveryCodes } = await enrol(mallory);
    const browser = new Browser(server.issuer);
    const { page } = await authorize(browser, WEB_APP);
    // The attack: the password is known, codes are guessed; five per password step.
    let current: Visited = await submitPassword(browser, page, mallory);
    const started = performance.now();
    for (let attempt = 1; attempt <= 5; attempt++) current = await submitForm(browser, current, '/mfa', { code: await wrongCode(secret) });
    // Each earlier failure made the next answer wait (SIGN_IN_DELAY_STEP_MS, 250 ms): 0 + 250 + 500 + 750 + 1000.
    expect(performance.now() - started).toBeGreaterThan(2400);
    expect(isSignInPage(current)).toBe(true);
    expect(await events(mallory.id, 'mfa.locked')).toEqual([expect.objectContaining({ details: expect.objectContaining({ scope: 'account', method: 'totp' }) })]);

    // Entering the password again (which is right) clears nothing: the account's second factor stays locked.
    const again = await authorize(browser, WEB_APP);
    const codePage = await submitPassword(browser, again.page, mallory);
    expect(isCodePage(codePage)).toBe(true);
    const right = await submitForm(browser, codePage, '/mfa', { code: await nextCode(secret) });
    expect(right.status).toBe(401);
    expect(right.redirectedTo).toBeUndefined();
    expect(right.html).toContain('Too many incorrect codes');

    const third = await authorize(browser, WEB_APP);
    const recovery = await submitForm(browser, await submitPassword(browser, third.page, mallory), '/recovery', { recovery_code: recoveryCodes[0] as string });
    expect(recovery.status).toBe(401);
    expect(recovery.redirectedTo).toBeUndefined();
    // Refused unchecked: the recovery code was not spent.
    expect(await server.gatehouse.db.prisma.recoveryCode.count({ where: { userId: mallory.id, usedAt: { not: null } } })).toBe(0);
    expect((await events(mallory.id, 'mfa.failure')).filter((event) => (event.details as { reason?: string } | null)?.reason === 'locked')).toHaveLength(2);
  });

  it('refuses a TOTP secret copied from another person\'s row, and seals an old-format one again at its next use', async () => {
    const mfa = createMfa(server.gatehouse.db, { secrets: [TEST_SECRET], audit: { record: async () => {} } });
    const mallory = await server.addPerson();
    const victim = await server.addPerson();
    const { secret: mallorys } = await enrol(mallory);
    // Someone who can write the database but does not know SECRETS copies their own secret onto the victim.
    const { totpSecretEncrypted, totpEnabledAt } = (await user(mallory.id))!;
    await server.gatehouse.db.prisma.user.update({ where: { id: victim.id }, data: { totpSecretEncrypted, totpEnabledAt } });
    await expect(mfa.verifyCode(victim.id, await nextCode(mallorys))).rejects.toThrow(DecryptionError);

    // A secret stored before secrets were bound to their row (v1) still works, and is sealed anew when used.
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await server.gatehouse.db.prisma.user.update({ where: { id: victim.id }, data: { totpSecretEncrypted: encryptV1(secret, TEST_SECRET), totpLastStep: null } });
    expect(await mfa.verifyCode(victim.id, await nextCode(secret))).toBe(true);
    const resealed = (await user(victim.id))!.totpSecretEncrypted as string;
    expect(resealed).toMatch(/^v2\./);
    expect(decrypt(resealed, [TEST_SECRET], `totp:${victim.id}`).plaintext).toBe(secret);
  });

  it('resets MFA for a person: secret and recovery codes removed, password-only sign-in again', async () => {
    const kate = await server.addPerson();
    await enrol(kate);
    const users = createUserStore(server.gatehouse.db);
    expect(await users.resetMfa(kate.id)).toBe(true);
    expect(await users.resetMfa(kate.id)).toBe(false);
    const row = await user(kate.id);
    expect(row?.totpSecretEncrypted).toBeNull();
    expect(row?.totpEnabledAt).toBeNull();
    expect(await server.gatehouse.db.prisma.recoveryCode.count({ where: { userId: kate.id } })).toBe(0);

    const browser = new Browser(server.issuer);
    const { page, finish } = await authorize(browser, WEB_APP);
    const claims = await finish((await consentIfAsked(browser, await submitPassword(browser, page, kate))).redirectedTo);
    expect(claims.amr).toEqual(['pwd']);
  });
});
