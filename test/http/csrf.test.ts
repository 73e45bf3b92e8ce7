// Cross-site request forgery: every form we render carries a token bound to its interaction,
// and a POST without it, or with another interaction's, is refused and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm, submitPassword, type Page } from '../helpers/browser.js';
import { authorizePath } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const REFUSED = 'This form was not sent from the sign-in page you have open';

describe.each(await flavours())('form tokens on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour, { clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  async function signInPage(browser: Browser, state?: string) {
    const page = await browser.visit(authorizePath(state ? { state } : {}));
    expect(page.status).toBe(200);
    return { page, form: findForm(page.html, '/login'), abort: findForm(page.html, '/abort') };
  }

  /** Signs a new person in (consent is remembered per person) and returns the consent page. */
  async function consentPage(browser: Browser) {
    const person = await server.addPerson();
    const { page: signIn, form } = await signInPage(browser);
    const page = await submitPassword(browser, signIn, person);
    expect(page.html).toContain('/confirm"');
    return { page, form: findForm(page.html, '/confirm'), login: form };
  }

  const grants = () => server.gatehouse.db.prisma.oidcArtifact.count({ where: { model: 'Grant' } });
  const isSignInPage = (page: Page) => page.status === 200 && /action="\/interaction\/[^"]+\/login"/.test(page.html);

  it('puts a token in every form it renders, the same for all forms of one interaction', async () => {
    const browser = new Browser(server.issuer);
    const { form, abort } = await signInPage(browser);
    expect(form.fields.csrf_token).toMatch(/^[\w-]{43}$/);
    expect(abort.fields.csrf_token).toBe(form.fields.csrf_token);
    const consent = await consentPage(browser);
    expect(consent.form.fields.csrf_token).toMatch(/^[\w-]{43}$/);
    expect(findForm(consent.page.html, '/abort').fields.csrf_token).toBe(consent.form.fields.csrf_token);
    // A new interaction (consent after sign-in) gets a different token.
    expect(consent.form.fields.csrf_token).not.toBe(consent.login.fields.csrf_token);
  });

  describe('the sign-in form', () => {
    it('refuses a POST without the token and does not sign the person in', async () => {
      const browser = new Browser(server.issuer);
      const { page, form } = await signInPage(browser);
      const refused = await browser.visit(form.action, { form: { email: ALICE.email, password: ALICE.password } });
      expect(refused.status).toBe(403);
      expect(refused.html).toContain(REFUSED);
      expect(refused.html).toContain('invalid_form_token');
      expect(refused.headers.get('cache-control')).toBe('no-store');
      expect(isSignInPage(await browser.visit(page.url))).toBe(true);

      const json = await browser.request(form.action, { form: { email: ALICE.email, password: ALICE.password }, headers: { accept: 'application/json' } });
      expect(json.status).toBe(403);
      expect(await json.json()).toMatchObject({ error: 'invalid_form_token', error_description: expect.stringContaining(REFUSED) });
      expect(isSignInPage(await browser.visit(page.url))).toBe(true);
    });

    it('refuses an empty, altered or oversized token', async () => {
      const browser = new Browser(server.issuer);
      const { page, form } = await signInPage(browser);
      const token = form.fields.csrf_token as string;
      const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
      for (const bad of ['', flipped, `${token}A`, token.slice(1), 'x'.repeat(500)]) {
        const refused = await browser.visit(form.action, { form: { csrf_token: bad, email: ALICE.email, password: ALICE.password } });
        expect(refused.status).toBe(403);
      }
      expect(isSignInPage(await browser.visit(page.url))).toBe(true);
    });

    it("refuses another interaction's token in the same browser", async () => {
      const browser = new Browser(server.issuer);
      // Two sign-ins open in one browser: each interaction cookie is scoped to its own page.
      const first = await signInPage(browser, 'one');
      const second = await signInPage(browser, 'two');
      expect(first.form.action).not.toBe(second.form.action);
      const refused = await browser.visit(first.form.action, { form: { ...second.form.fields, email: ALICE.email, password: ALICE.password } });
      expect(refused.status).toBe(403);
      expect(isSignInPage(await browser.visit(first.page.url))).toBe(true);
      // Each still works with its own token.
      const signedIn = await browser.visit(first.form.action, { form: { ...first.form.fields, email: ALICE.email, password: ALICE.password } });
      expect(signedIn.html).toContain('/confirm"');
    });

    it("refuses a token from another person's session", async () => {
      const attacker = await signInPage(new Browser(server.issuer));
      const victim = new Browser(server.issuer);
      const { page, form } = await signInPage(victim);
      const refused = await victim.visit(form.action, { form: { ...attacker.form.fields, email: ALICE.email, password: ALICE.password } });
      expect(refused.status).toBe(403);
      expect(isSignInPage(await victim.visit(page.url))).toBe(true);
    });

    it('refuses an abort (cancel) without the token, and keeps the sign-in going', async () => {
      const browser = new Browser(server.issuer);
      const { page, abort } = await signInPage(browser);
      const refused = await browser.visit(abort.action, { form: {} });
      expect(refused.status).toBe(403);
      expect(refused.redirectedTo).toBeUndefined();
      expect(isSignInPage(await browser.visit(page.url))).toBe(true);
      const cancelled = await browser.visit(abort.action, { form: abort.fields });
      expect(cancelled.redirectedTo?.searchParams.get('error')).toBe('access_denied');
    });
  });

  describe('the consent form', () => {
    it('refuses a POST without the token and records no consent', async () => {
      const browser = new Browser(server.issuer);
      const { page, form } = await consentPage(browser);
      const before = await grants();
      const refused = await browser.visit(form.action, { form: {} });
      expect(refused.status).toBe(403);
      expect(refused.html).toContain(REFUSED);
      expect(refused.redirectedTo).toBeUndefined();
      expect(await grants()).toBe(before);
      // Still asking; allowing with the token then works.
      const again = await browser.visit(page.url);
      expect(again.html).toContain('/confirm"');
      const allowed = await browser.visit(form.action, { form: form.fields });
      expect(allowed.redirectedTo?.searchParams.get('code')).toBeTruthy();
      expect(await grants()).toBe(before + 1);
    });

    it("refuses the sign-in page's token (another interaction) and records no consent", async () => {
      const browser = new Browser(server.issuer);
      const { form, login } = await consentPage(browser);
      const before = await grants();
      const refused = await browser.visit(form.action, { form: login.fields });
      expect(refused.status).toBe(403);
      expect(await grants()).toBe(before);
    });

    it('refuses a deny without the token and keeps asking', async () => {
      const browser = new Browser(server.issuer);
      const { page } = await consentPage(browser);
      const deny = findForm(page.html, '/abort');
      const refused = await browser.visit(deny.action, { form: {} });
      expect(refused.status).toBe(403);
      expect((await browser.visit(page.url)).html).toContain('/confirm"');
    });
  });
});
