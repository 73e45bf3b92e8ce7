// Who gets into the admin console: members of ADMIN_GROUP, signed in afresh with their second
// factor, through the console's own built-in client. Everyone else gets a 403 page that says
// nothing about the console; a POST needs the console's form token; removing someone from the
// group, disabling them or signing them out ends their access at once; the session is short.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, submitForm, submitPassword } from '../../helpers/browser.js';
import { addAdmin, agentFor, removeFromGroup, signInAgain, signInToConsole } from '../../helpers/console.js';
import { flavours } from '../../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../../helpers/gatehouse.js';
import { codeAt, currentStep } from '../../helpers/totp.js';

const env = { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_DELAY_STEP_MS: '0' };

describe.each(await flavours())('the console gate on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env })));
  afterAll(async () => server?.close());

  const events = (accountId: string, type: string) => server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId, type } });

  it('sends a visitor to sign in afresh as the console client, then shows the first page to an admin with TOTP', async () => {
    const browser = new Browser(server.issuer);
    const first = await browser.request('/console/people?q=x');
    expect(first.status).toBe(303);
    expect(first.headers.get('cache-control')).toBe('no-store');
    const authorize = new URL(first.headers.get('location') as string, server.issuer);
    expect(authorize.pathname).toBe('/authorize');
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ client_id: 'gatehouse-console', response_type: 'none', prompt: 'login', redirect_uri: `${server.issuer}/console/callback` });

    const admin = await addAdmin(server);
    const { page } = await signInToConsole(server, admin);
    expect(page.html).toContain('<h1>Overview</h1>');
    expect(page.html).toContain('href="/console/people"');
    expect(page.html).toContain('href="/console/audit"');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const [signedIn] = await events(admin.id, 'console.signed_in');
    expect(signedIn?.details).toMatchObject({ via: 'console', acr: 'urn:gatehouse:acr:mfa' });
  });

  it('comes back to the console page first asked for', async () => {
    const admin = await addAdmin(server);
    const page = await signInAgain(new Browser(server.issuer), admin, '/console/nowhere?x=1');
    expect(new URL(page.url).pathname + new URL(page.url).search).toBe('/console/nowhere?x=1');
    expect(page.status).toBe(404);
  });

  it('refuses someone outside the admin group with a 403 page that shows nothing of the console', async () => {
    const outsider = await addAdmin(server, { member: false });
    const browser = new Browser(server.issuer);
    const page = await signInAgain(browser, outsider);
    expect(page.status).toBe(403);
    expect(page.html).toContain('may not use the admin console');
    expect(page.html).not.toContain('/console/people');
    expect(page.html).not.toContain('csrf_token');
    const [refused] = await events(outsider.id, 'console.refused');
    expect(refused?.details).toMatchObject({ reason: 'not_in_admin_group', group: 'admins' });
    // No console session was made: every console page sends them to sign in again.
    expect((await browser.request('/console/groups')).status).toBe(303);
    expect((await browser.request('/console/sign-out', { form: { csrf_token: 'x' } })).status).toBe(401);
  });

  it('leads an admin without a second factor to set one up before the console opens', async () => {
    const admin = await addAdmin(server, { totp: false });
    const browser = new Browser(server.issuer);
    const enrol = await submitPassword(browser, await browser.visit('/console'), admin);
    expect(enrol.html).toContain('/enroll"');
    const secret = (/id="totp-secret">([^<]*)</.exec(enrol.html)?.[1] ?? '').replace(/\s+/g, '');
    const codes = await submitForm(browser, enrol, '/enroll', { code: await codeAt(secret, currentStep()) });
    expect(codes.html).toContain('/continue"');
    const page = await submitForm(browser, codes, '/continue');
    expect(page.status).toBe(200);
    expect(new URL(page.url).pathname).toBe('/console');
    expect(page.html).toContain('<h1>Overview</h1>');
  });

  it('starts a console session only from the sign-in the console asked for, not from an earlier one, even with a second factor', async () => {
    const skipTheSignIn = async (browser: Browser) => {
      // The console's own sign-in is skipped by going straight to its callback with its state.
      const start = await browser.request('/console');
      const state = new URL(start.headers.get('location') as string, server.issuer).searchParams.get('state') as string;
      return browser.visit(`/console/callback?state=${state}`);
    };
    // Signed in to the account page with a password only…
    const withoutTotp = await addAdmin(server, { totp: false });
    const first = new Browser(server.issuer);
    await submitPassword(first, await first.visit('/account'), withoutTotp);
    expect((await skipTheSignIn(first)).status).toBe(400);
    expect((await first.request('/console')).status).toBe(303);
    // …or with the second factor, a moment ago.
    const withTotp = await addAdmin(server);
    const second = new Browser(server.issuer);
    expect(new URL((await signInAgain(second, withTotp, '/account')).url).pathname).toBe('/account');
    expect((await skipTheSignIn(second)).status).toBe(400);
    expect((await second.request('/console')).status).toBe(303);
  });

  it('refuses a callback without the state the console started with', async () => {
    const browser = new Browser(server.issuer);
    expect((await browser.visit('/console/callback?state=forged')).status).toBe(400);
  });

  it('refuses a POST without the form token, or with another session’s, with 403', async () => {
    const admin = await addAdmin(server);
    const agent = await signInToConsole(server, admin);
    const other = await signInToConsole(server, await addAdmin(server));
    const none = await agent.browser.request('/console/sign-out', { form: {} });
    expect(none.status).toBe(403);
    expect(await none.text()).toContain('not sent from your console session');
    const foreign = await agent.browser.request('/console/sign-out', { form: { csrf_token: await other.csrfToken() } });
    expect(foreign.status).toBe(403);
    // Still signed in: the refused forms did nothing.
    expect((await agent.browser.request('/console')).status).toBe(200);
  });

  it('shuts out an admin removed from the group at their next request', async () => {
    const admin = await addAdmin(server);
    const agent = await signInToConsole(server, admin);
    const token = await agent.csrfToken();
    await removeFromGroup(server, admin.id);
    const page = await agent.browser.visit('/console');
    expect(page.status).toBe(403);
    expect(page.html).not.toContain('/console/people');
    expect((await agent.browser.request('/console/sign-out', { form: { csrf_token: token } })).status).not.toBe(303);
  });

  it('shuts out an admin who is disabled, or whose session was ended elsewhere', async () => {
    const admin = await addAdmin(server);
    const agent = await signInToConsole(server, admin);
    await server.gatehouse.db.prisma.oidcArtifact.deleteMany({ where: { model: 'Session', accountId: admin.id } });
    expect((await agent.browser.request('/console')).status).toBe(303);

    const other = await addAdmin(server);
    const second = await signInToConsole(server, other);
    await server.gatehouse.db.prisma.user.update({ where: { id: other.id }, data: { disabled: true } });
    expect((await second.browser.request('/console')).status).toBe(303);
  });

  it('signs out of the console and of the Gatehouse session behind it', async () => {
    const admin = await addAdmin(server);
    const agent = await signInToConsole(server, admin);
    const out = await agent.post('/console/sign-out');
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/console/signed-out');
    expect((await agent.browser.request('/console')).status).toBe(303);
    expect((await agent.browser.request('/account')).status).toBe(303);
    const [revoked] = await events(admin.id, 'session.revoked');
    expect(revoked?.details).toMatchObject({ via: 'console', by: admin.email, admin_id: admin.id });
  });

  it('answers malformed paths, queries and bodies with a 4xx page, never a failure', async () => {
    const agent = await signInToConsole(server, await addAdmin(server));
    for (const path of ['/console/people/%00', '/console/groups/%00', '/console/people?page=-3&q=%25_', `/console/groups/${'x'.repeat(300)}`, '/console/people/%E0%A4%A']) {
      const response = await agent.browser.request(path);
      expect(response.status, path).toBeGreaterThanOrEqual(200);
      expect(response.status, path).toBeLessThan(500);
    }
    const token = await agent.csrfToken();
    const huge = await agent.browser.request('/console/groups', { form: { csrf_token: token, name: 'x'.repeat(100_000) } });
    expect(huge.status).toBe(413);
    const odd = await agent.browser.request('/console/people/nobody/disabled', { form: { csrf_token: token, disabled: 'true' } });
    expect(odd.status).toBe(404);
  });

  it('speaks Korean when the browser asks for it', async () => {
    const admin = await addAdmin(server);
    const agent = await signInToConsole(server, admin, { headers: { 'accept-language': 'ko' } });
    expect(agent.page.html).toContain('<html lang="ko">');
    expect(agent.page.html).toContain('관리 콘솔');
  });
});

describe.each(await flavours())('short console sessions on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env: { ...env, CONSOLE_SESSION_TTL: '2s', CONSOLE_SESSION_ABSOLUTE_TTL: '4s', CONSOLE_REQUIRE_MFA: 'false', ADMIN_GROUP: 'operators' } })));
  afterAll(async () => server?.close());
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('lets an operator in with a password only when CONSOLE_REQUIRE_MFA=false, from the group ADMIN_GROUP names', async () => {
    const operator = await addAdmin(server, { totp: false, group: 'operators' });
    const agent = await signInToConsole(server, operator);
    expect(agent.page.html).toContain('<h1>Overview</h1>');
    const admin = await addAdmin(server, { totp: false, group: 'admins' });
    expect((await signInAgain(new Browser(server.issuer), admin)).status).toBe(403);
  });

  it('ends a console session left unused for CONSOLE_SESSION_TTL: signing in again asks for the password', async () => {
    const operator = await addAdmin(server, { totp: false, group: 'operators' });
    const agent = await signInToConsole(server, operator);
    await sleep(2500);
    const again = await agent.browser.visit('/console');
    expect(again.html).toContain('/login"');
  });

  it('ends a busy console session CONSOLE_SESSION_ABSOLUTE_TTL after it started', async () => {
    const operator = await addAdmin(server, { totp: false, group: 'operators' });
    const agent = await signInToConsole(server, operator);
    for (let i = 0; i < 2; i++) {
      await sleep(1500);
      expect((await agent.browser.request('/console')).status).toBe(200);
    }
    await sleep(1500);
    expect((await agent.browser.request('/console')).status).toBe(303);
    // The agent helper's pages still work with a fresh sign-in.
    const page = await signInAgain(agent.browser, operator);
    expect(agentFor(agent.browser, page).page.status).toBe(200);
  });
});

