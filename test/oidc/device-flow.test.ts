// The Device Authorization Grant (RFC 8628), driven by openid-client v6 as a TV app would,
// with a person finishing it in a browser at /device, on SQLite and on PostgreSQL.
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowAccess, Browser, findForm, submitForm, submitPassword, type Page } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, secretFor } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { discover } from '../helpers/relying-party.js';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { id: 'living-room-tv', name: 'Living Room TV' };
const CONSOLE = { id: 'game-console', name: 'Game Console', secret: secretFor('game-console') };
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A device client: the TV is public, the console authenticates with its secret. */
const deviceClient = (client: { id: string; name: string; secret?: string }) => ({
  client_id: client.id,
  client_name: client.name,
  ...(client.secret ? { client_secret: client.secret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
  grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
  response_types: [],
  redirect_uris: [],
  scope: 'openid profile email offline_access',
});
const DEVICE_CLIENTS = [deviceClient(TV), deviceClient(CONSOLE)];

/** One poll of the token endpoint, as the device sends it; rejects with the endpoint's error. */
const pollOnce = (config: oidc.Configuration, started: oidc.DeviceAuthorizationResponse) =>
  oidc.genericGrantRequest(config, DEVICE_CODE_GRANT, { device_code: started.device_code });

/** What a person does on their phone: open /device and type the code (as given) in. */
async function enterCode(browser: Browser, userCode: string): Promise<Page> {
  return submitForm(browser, await browser.visit('/device'), '/device', { user_code: userCode });
}

/** Confirms on the confirm page, signs in if asked, consents if asked; returns where it ends. */
async function approve(browser: Browser, confirmPage: Page): Promise<Page> {
  let page = await submitForm(browser, confirmPage, '/device');
  if (/action="\/interaction\/[^"]+\/login"/.test(page.html)) page = await submitPassword(browser, page, ALICE);
  if (/action="\/interaction\/[^"]+\/confirm"/.test(page.html)) page = await allowAccess(browser, page);
  return page;
}

/** Our pages, not the engine's built-in HTML: our stylesheet, no inline script or style. */
function expectOwnPage(page: Page) {
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
  expect(page.html).toContain('<link rel="stylesheet" href="/assets/gatehouse.css">');
  expect(page.html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
  expect(page.html).not.toMatch(/\bat [\w.<>]+ \(|Error:/);
}

describe.each(await flavours())('device authorization grant on %s', (flavour) => {
  describe('with the default device code lifetime', () => {
    let server: TestGatehouse;
    let aliceId: string;

    beforeAll(async () => {
      server = await startTestGatehouse(flavour, { clients: DEVICE_CLIENTS, people: [ALICE] });
      aliceId = server.idOf(ALICE);
    });
    afterAll(async () => server?.close());

    it('answers a device authorization request with both codes, where to go and how often to poll', async () => {
      const config = await discover(server.issuer, TV);
      expect(config.serverMetadata().device_authorization_endpoint).toBe(`${server.issuer}/device/auth`);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });

      expect(started.device_code).toMatch(/^[\w-]{32,}$/);
      expect(started.user_code).toMatch(USER_CODE);
      expect(new URL(started.verification_uri).pathname).toBe('/device');
      const complete = new URL(started.verification_uri_complete as string);
      expect(complete.pathname).toBe('/device');
      expect(complete.searchParams.get('user_code')).toBe(started.user_code);
      expect(started.expires_in).toBe(600);
      expect(started.interval).toBe(5);
    });

    it('tells a device that polls before the person acts to keep waiting, and one that polls too fast to slow down', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      await expect(pollOnce(config, started)).rejects.toMatchObject({ error: 'authorization_pending', status: 400 });
      await expect(pollOnce(config, started)).rejects.toMatchObject({ error: 'slow_down', status: 400 });
      // The throttle is per device code: another device is not slowed down by this one.
      const other = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      await expect(pollOnce(config, other)).rejects.toMatchObject({ error: 'authorization_pending' });
    });

    it('signs a person in on their phone with the code typed in lower case without the dash, then issues tokens', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile email offline_access' });
      const browser = new Browser(server.issuer);

      const codePage = await browser.visit(new URL(started.verification_uri).pathname);
      expect(codePage.status).toBe(200);
      expectOwnPage(codePage);
      expect(codePage.headers.get('cache-control')).toBe('no-store');
      expect(codePage.html).toMatch(/<label for="user_code">Code<\/label>/);
      const input = /<input id="user_code"[^>]*>/.exec(codePage.html)?.[0] ?? '';
      expect(input).toContain('name="user_code"');
      expect(input).toContain('autocomplete="one-time-code"');
      expect(input).toContain('autocapitalize="characters"');

      const typed = started.user_code.replace('-', '').toLowerCase();
      const form = findForm(codePage.html, '/device');
      expect(Object.keys(form.fields).sort()).toEqual(['user_code', 'xsrf']);
      const confirmPage = await browser.visit(form.action, { form: { ...form.fields, user_code: typed } });
      expect(confirmPage.status).toBe(200);
      expectOwnPage(confirmPage);
      expect(confirmPage.html).toContain(TV.name);
      expect(confirmPage.html).toContain(`<p class="user-code">${started.user_code}</p>`);
      expect(confirmPage.html).toMatch(/<button type="submit" name="abort" value="yes"[^>]*>Deny<\/button>/);

      // Confirming sends the person through Gatehouse's own sign-in and consent pages.
      const confirm = findForm(confirmPage.html, '/device');
      const loginPage = await browser.visit(confirm.action, { form: confirm.fields });
      expect(loginPage.url).toMatch(/\/interaction\/[\w-]+$/);
      expect(loginPage.html).toContain(TV.name);
      const consentPage = await submitPassword(browser, loginPage, ALICE);
      expect(consentPage.html).toContain('Stay connected');
      const done = await allowAccess(browser, consentPage);
      expect(done.status).toBe(200);
      expect(new URL(done.url).pathname).toMatch(/^\/device\/[\w-]+$/);
      expectOwnPage(done);
      expect(done.html).toContain('return to your device');
      expect(done.html).toContain(TV.name);

      // The device's next poll gets the tokens; no need to wait out the interval for that.
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 0 });
      expect(tokens.claims()?.sub).toBe(aliceId);
      expect(tokens.refresh_token).toBeTruthy();
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, aliceId);
      expect(userinfo).toMatchObject({ sub: aliceId, email: ALICE.email, name: ALICE.name });
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token as string);
      expect(refreshed.claims()?.sub).toBe(aliceId);
    });

    it('accepts the code exactly as shown (with the dash), or with spaces, for a confidential device client', async () => {
      const config = await discover(server.issuer, CONSOLE);
      const browser = new Browser(server.issuer);

      const first = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
      const confirmPage = await enterCode(browser, first.user_code);
      expect(confirmPage.status).toBe(200);
      expect(confirmPage.html).toContain(CONSOLE.name);
      const done = await approve(browser, confirmPage);
      expect(done.html).toContain('return to your device');
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...first, interval: 0 });
      expect(tokens.claims()?.sub).toBe(aliceId);
      expect(tokens.refresh_token).toBeUndefined();
      await expect(oidc.fetchUserInfo(config, tokens.access_token, aliceId)).resolves.toMatchObject({ email: ALICE.email });

      // Same browser, still signed in, consent remembered: confirm goes straight to success.
      const second = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
      const spaced = ` ${second.user_code.slice(0, 4)} ${second.user_code.slice(5).toLowerCase()} `;
      const again = await approve(browser, await enterCode(browser, spaced));
      expect(again.html).toContain('return to your device');
      await expect(oidc.pollDeviceAuthorizationGrant(config, { ...second, interval: 0 })).resolves.toHaveProperty('access_token');

      // The device must authenticate: the wrong secret gets nothing.
      const impostor = await discover(server.issuer, { id: CONSOLE.id, secret: 'not-the-secret-0123456789-0123456789-0123' });
      await expect(oidc.initiateDeviceAuthorization(impostor, { scope: 'openid' })).rejects.toMatchObject({
        status: 401,
        cause: [{ scheme: 'basic', parameters: { error: 'invalid_client' } }],
      });
    });

    it('opens the confirm page from verification_uri_complete, so the code need not be typed', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const browser = new Browser(server.issuer);
      // The engine answers with a self-submitting form (it adds its script's hash to our CSP);
      // without JavaScript the person presses its Continue button.
      const handoff = await browser.visit(started.verification_uri_complete as string);
      expect(handoff.status).toBe(200);
      const form = findForm(handoff.html, '/device');
      expect(form.fields.user_code).toBe(started.user_code);
      const confirmPage = await browser.visit(form.action, { form: form.fields });
      expect(confirmPage.html).toContain(`<p class="user-code">${started.user_code}</p>`);
    });

    it('tells the device access_denied when the person denies on the confirm page or cancels at sign-in', async () => {
      const config = await discover(server.issuer, TV);
      const browser = new Browser(server.issuer);

      const denied = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const confirmPage = await enterCode(browser, denied.user_code);
      const confirm = findForm(confirmPage.html, '/device');
      const afterDeny = await browser.visit(confirm.action, { form: { ...confirm.fields, abort: 'yes' } });
      expect(afterDeny.status).toBe(200);
      expectOwnPage(afterDeny);
      expect(afterDeny.html).toContain('You denied access');
      await expect(oidc.pollDeviceAuthorizationGrant(config, { ...denied, interval: 0 })).rejects.toMatchObject({ error: 'access_denied' });

      const cancelled = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const confirmAgain = findForm((await enterCode(browser, cancelled.user_code)).html, '/device');
      const loginPage = await browser.visit(confirmAgain.action, { form: confirmAgain.fields });
      const abort = findForm(loginPage.html, '/abort');
      const afterCancel = await browser.visit(abort.action, { form: abort.fields });
      expect(afterCancel.html).toContain('You denied access');
      await expect(pollOnce(config, cancelled)).rejects.toMatchObject({ error: 'access_denied' });
    });

    it('shows the code page again with a plain message, and a 4xx, for a wrong or missing code', async () => {
      const browser = new Browser(server.issuer);
      const wrong = await enterCode(browser, 'bbbb-bbbb');
      expect(wrong.status).toBe(400);
      expectOwnPage(wrong);
      expect(wrong.html).toContain('That code is not right.');
      expect(wrong.html).toMatch(/<input id="user_code"[^>]*value="bbbb-bbbb"/);
      expect(wrong.html).toMatch(/aria-invalid="true"/);
      // The page it came back with works: the next attempt can go on.
      const retry = findForm(wrong.html, '/device');
      const empty = await browser.visit(retry.action, { form: { ...retry.fields, user_code: '' } });
      expect(empty.status).toBe(400);
      expect(empty.html).toContain('Enter the code shown on your device.');

      // A form without its xsrf token (e.g. posted from elsewhere) is refused plainly.
      const forged = await browser.visit('/device', { form: { user_code: 'BBBB-BBBB', xsrf: 'forged' } });
      expect(forged.status).toBe(400);
      expectOwnPage(forged);
      expect(forged.html).toContain('This page had expired.');
    });

    it('does not let a user code or a device code be used twice', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const browser = new Browser(server.issuer);
      await approve(browser, await enterCode(browser, started.user_code));

      const reused = await enterCode(new Browser(server.issuer), started.user_code);
      expect(reused.status).toBe(400);
      expect(reused.html).toContain('That code has already been used.');

      const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 0 });
      await expect(pollOnce(config, started)).rejects.toMatchObject({ error: 'invalid_grant' });
      // A replayed device code ends what its first redemption issued (as for authorization codes).
      await expect(oidc.fetchUserInfo(config, tokens.access_token, aliceId)).rejects.toMatchObject({ status: 401 });
    });
  });

  describe('with small brute-force limits (3 wrong codes per session, 6 per address, 3 s lockout)', () => {
    let server: TestGatehouse;
    const LIMITS = {
      SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3',
      SIGN_IN_MAX_FAILURES_PER_IP: '6',
      SIGN_IN_FAILURE_WINDOW: '10m',
      SIGN_IN_LOCKOUT: '3s',
      SIGN_IN_DELAY_STEP_MS: '60',
      // One proxy in front: the address is the last X-Forwarded-For entry, whatever the client put before it.
      TRUST_PROXY: '1',
    };
    const LOCKED = 'Too many wrong codes were entered from this browser or network.';

    beforeAll(async () => {
      server = await startTestGatehouse(flavour, { env: LIMITS, clients: DEVICE_CLIENTS, people: [ALICE] });
    });
    afterAll(async () => server?.close());

    let spoofed = 0;
    /** A browser behind the proxy at `ip` (each request with a different spoofed first entry), at /device. */
    async function codeEntry(ip: string) {
      const browser = new Browser(server.issuer);
      let page = await browser.visit('/device');
      return async function enter(userCode: string) {
        const form = findForm(page.html, '/device');
        const started = performance.now();
        const response = await browser.request(form.action, { form: { ...form.fields, user_code: userCode }, headers: { 'x-forwarded-for': `203.0.${Math.floor(++spoofed / 250)}.${spoofed % 250}, ${ip}` } });
        page = { status: response.status, url: form.action, html: await response.text(), headers: response.headers };
        return { ...page, ms: performance.now() - started };
      };
    }

    it('slows down and then locks one session guessing codes, refusing even the right code with a clear message until the lockout ends', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const enter = await codeEntry('198.51.100.10');

      // The attack: codes as fast as the server answers, from one session.
      const answers = [];
      for (let i = 0; i < 8; i++) answers.push(await enter(`BBBB-BBB${'BCDFGHJK'[i]}`));
      const wrong = answers.filter((answer) => answer.status === 400);
      expect(wrong).toHaveLength(3);
      for (const answer of wrong) expect(answer.html).toContain('That code is not right.');
      // Each answer waits SIGN_IN_DELAY_STEP_MS longer for each earlier guess (at most the limit's worth).
      answers.forEach((answer, i) => expect(answer.ms).toBeGreaterThanOrEqual(Math.min(i, 6) * 60 - 5));
      for (const answer of answers.slice(3)) {
        expect(answer.status).toBe(429);
        expectOwnPage(answer);
        expect(answer.html).toContain(LOCKED);
        expect(answer.html).toContain('Enter the code again in 1 min.');
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(answer.html).toMatch(/aria-invalid="true"/);
      }
      // The right code is refused too, so a guess that hits it learns nothing.
      const right = await enter(started.user_code);
      expect(right.status).toBe(429);
      expect(right.html).not.toContain(TV.name);

      // Another address, another session: not affected.
      const elsewhere = await (await codeEntry('198.51.100.11'))(started.user_code);
      expect(elsewhere.status).toBe(200);
      expect(elsewhere.html).toContain(TV.name);

      const locks = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'user_code.locked' } });
      expect(locks.map((row) => [row.ip, (row.details as { scope: string }).scope])).toContainEqual(['198.51.100.10', 'session']);

      await sleep(3300);
      const again = await enter(started.user_code);
      expect(again.status).toBe(200);
      expect(again.html).toContain(TV.name);
    });

    it('locks an address whose fresh sessions guess codes in parallel, counting every guess before any lookup', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      // A new session for every guess (cookies dropped), all at once.
      const entries = await Promise.all(Array.from({ length: 12 }, () => codeEntry('198.51.100.20')));
      const answers = await Promise.all(entries.map((enter, i) => enter(`CCCC-CCC${'BCDFGHJKLMNP'[i]}`)));
      expect(answers.filter((answer) => answer.status === 400)).toHaveLength(6);
      expect(answers.filter((answer) => answer.status === 429)).toHaveLength(6);
      for (const answer of answers) expect(answer.html).toContain(answer.status === 400 ? 'That code is not right.' : LOCKED);

      const fresh = await (await codeEntry('198.51.100.20'))(started.user_code);
      expect(fresh.status).toBe(429);
      expect(fresh.html).toContain(LOCKED);
      const locks = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'user_code.locked', ip: '198.51.100.20' } });
      expect(locks.map((row) => (row.details as { scope: string }).scope)).toEqual(['ip']);

      await sleep(3300);
      const later = await (await codeEntry('198.51.100.20'))(started.user_code);
      expect(later.status).toBe(200);
      expect(later.html).toContain(TV.name);
    });

    it('does not count right codes against the session or the address: one browser connects many devices', async () => {
      const config = await discover(server.issuer, TV);
      const browser = new Browser(server.issuer, { 'x-forwarded-for': '198.51.100.30' });
      for (let i = 0; i < 8; i++) {
        const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
        const confirmPage = await enterCode(browser, started.user_code);
        expect(confirmPage.status).toBe(200);
        expect(confirmPage.html).toContain(TV.name);
      }
    });
  });

  describe('with a two-second device code lifetime', () => {
    let server: TestGatehouse;

    beforeAll(async () => (server = await startTestGatehouse(flavour, { env: { DEVICE_CODE_TTL: '2s' }, clients: DEVICE_CLIENTS })));
    afterAll(async () => server?.close());

    it('answers expired_token once the device code has expired, and says so on /device', async () => {
      const config = await discover(server.issuer, TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      expect(started.expires_in).toBe(2);
      await sleep(2500);
      await expect(pollOnce(config, started)).rejects.toMatchObject({ error: 'expired_token', status: 400 });
      const expired = await enterCode(new Browser(server.issuer), started.user_code);
      expect(expired.status).toBe(400);
      expect(expired.html).toContain('That code has expired.');
    });
  });
});
