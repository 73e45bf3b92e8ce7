// Response headers and cookies: a strict Content-Security-Policy and friends on every page,
// no-store on every page we render, HttpOnly/SameSite cookies, and Secure cookies and https
// URLs whenever the ISSUER is https (test/http/forwarded-headers.test.ts: what a caller forwards). Headers do not
// depend on the database, so SQLite is enough here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm, submitPassword } from '../helpers/browser.js';
import { authorizePath } from '../helpers/code-flow.js';
import { ALICE, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const HTTPS_ISSUER = 'https://id.example.test';

/** A Gatehouse with the web app and Alice, as each suite here needs; `env` as startTestGatehouse takes it. */
const startWithWebApp = (env: Record<string, string> = {}) => startTestGatehouse('sqlite', { env, clients: [webApp()], people: [ALICE] });

/** The Content-Security-Policy as a map of directive → sources. */
function csp(headers: Headers): Map<string, string> {
  const value = headers.get('content-security-policy') ?? '';
  return new Map(
    value
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => {
        const [name = '', ...sources] = d.split(/\s+/);
        return [name, sources.join(' ')];
      }),
  );
}

function expectBaseline(headers: Headers) {
  const policy = csp(headers);
  expect(policy.get('default-src')).toBe("'none'");
  expect(policy.get('script-src')).toBe("'self'");
  expect(policy.get('style-src')).toBe("'self'");
  // The passkey script asks this server, and only it, for WebAuthn options.
  expect(policy.get('connect-src')).toBe("'self'");
  expect(policy.get('img-src')).toBe("'self' https: data:");
  expect(policy.get('frame-ancestors')).toBe("'none'");
  expect(policy.get('base-uri')).toBe("'none'");
  // form-action would also govern the redirect to a native app's custom-scheme redirect_uri.
  expect(policy.has('form-action')).toBe(false);
  expect(policy.has('upgrade-insecure-requests')).toBe(false);
  expect(headers.get('referrer-policy')).toBe('no-referrer');
  expect(headers.get('x-content-type-options')).toBe('nosniff');
  expect(headers.get('x-frame-options')).toBe('DENY');
  expect(headers.get('x-powered-by')).toBeNull();
}

function expectPage(headers: Headers) {
  expectBaseline(headers);
  expect(headers.get('cache-control')).toBe('no-store');
  expect(headers.get('content-type')).toMatch(/^text\/html/);
  // Nothing may store it, so nothing needs a validator for it (http/app.ts).
  expect(headers.get('etag')).toBeNull();
}

describe('security headers on an http issuer', () => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startWithWebApp()));
  afterAll(async () => server?.close());

  it('sets them on the sign-in and consent pages, and no HSTS over http', async () => {
    const browser = new Browser(server.issuer);
    const signIn = await browser.visit(authorizePath());
    expect(signIn.url).toMatch(/\/interaction\//);
    expectPage(signIn.headers);
    expect(signIn.headers.get('strict-transport-security')).toBeNull();

    const consent = await submitPassword(browser, signIn, ALICE);
    expect(consent.html).toContain('/confirm');
    expectPage(consent.headers);
  });

  /** A page Gatehouse renders at `path` (for a new browser), answered with `status` and the page headers. */
  async function pageAt(path: string, status: number) {
    const page = await new Browser(server.issuer).visit(path);
    expect(page.status).toBe(status);
    expectPage(page.headers);
    return page;
  }

  it('sets them on our error pages and the engine error pages', async () => {
    // Ours: an interaction without its cookie.
    await pageAt('/interaction/no-such-interaction', 400);
    // The engine's (renderError): an unknown client at the authorization endpoint.
    expect((await pageAt(authorizePath({ client_id: 'who-is-this' }), 400)).html).toContain('invalid_client');
  });

  it("sets them on a 404, as a page and as JSON, also under the engine's paths (which the engine hands back to our pages)", async () => {
    await pageAt('/nope', 404);
    for (const path of ['/token/nope', '/.well-known/nope', '/jwks/nope']) {
      const page = await pageAt(path, 404);
      expect(page.headers.get('x-request-id'), path).toEqual(expect.any(String));
    }
    const json = await fetch(`${server.issuer}/nope`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(404);
    expectBaseline(json.headers);
    expect(json.headers.get('cache-control')).toBe('no-store');
  });

  it('sets them on discovery and the keys, which caches may keep for five minutes', async () => {
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      const response = await fetch(`${server.issuer}${path}`);
      expect(response.status).toBe(200);
      expectBaseline(response.headers);
      expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    }
  });

  it('marks every cookie set during sign-in HttpOnly and SameSite=Lax, and not Secure over http', async () => {
    const browser = new Browser(server.issuer);
    const cookies: string[] = [];
    const collect = (response: Response) => {
      cookies.push(...response.headers.getSetCookie());
      return response;
    };
    let response = collect(await browser.request(authorizePath()));
    while (response.status === 303 || response.status === 302) {
      const next = new URL(response.headers.get('location') as string, server.issuer);
      if (next.origin !== server.issuer) break;
      response = collect(await browser.request(next.href));
      if (response.status === 200) {
        const html = await response.text();
        const form = html.includes('/login"') ? findForm(html, '/login') : findForm(html, '/confirm');
        response = collect(await browser.request(form.action, { form: { ...form.fields, email: ALICE.email, password: ALICE.password } }));
      }
    }
    expect(response.headers.get('location')).toMatch(/^http:\/\/app\.test\/callback\?code=/);
    const names = new Set(cookies.map((c) => c.slice(0, c.indexOf('='))));
    for (const name of ['_interaction', '_interaction_resume', '_session']) expect(names.has(name)).toBe(true);
    for (const cookie of cookies) {
      expect(cookie).toMatch(/;\s*httponly/i);
      expect(cookie).toMatch(/;\s*samesite=lax/i);
      expect(cookie).not.toMatch(/;\s*secure/i);
    }
  });
});

describe('behind a TLS-terminating proxy (https ISSUER)', () => {
  const forwarded = { 'x-forwarded-proto': 'https' };

  /** An authorization request the proxy says came over https: its answer (to the sign-in page) and cookies. */
  async function authorizeThroughProxy(server: TestGatehouse) {
    // One request only: fetch would not send Secure cookies back over http.
    const response = await new Browser(server.url).request(authorizePath(), { headers: forwarded });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^\/interaction\//);
    const cookies = response.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    return { response, cookies };
  }

  describe('with TRUST_PROXY=true', () => {
    let server: TestGatehouse;
    beforeAll(async () => (server = await startWithWebApp({ ISSUER: HTTPS_ISSUER, TRUST_PROXY: 'true' })));
    afterAll(async () => server?.close());

    it('sets Secure cookies for a request the proxy says came over https', async () => {
      const { response, cookies } = await authorizeThroughProxy(server);
      for (const cookie of cookies) {
        expect(cookie).toMatch(/;\s*secure/i);
        expect(cookie).toMatch(/;\s*httponly/i);
      }
      expectBaseline(response.headers);
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    });

    it('builds https endpoint URLs in discovery', async () => {
      const response = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: forwarded });
      const discovery = (await response.json()) as Record<string, unknown>;
      expect(discovery.issuer).toBe(HTTPS_ISSUER);
      expect(discovery.authorization_endpoint).toMatch(/^https:\/\/.*\/authorize$/);
      expect(discovery.token_endpoint).toMatch(/^https:\/\/.*\/token$/);
      expect(discovery.jwks_uri).toMatch(/^https:\/\/.*\/jwks$/);
    });
  });

  describe('without TRUST_PROXY', () => {
    let server: TestGatehouse;
    beforeAll(async () => (server = await startWithWebApp({ ISSUER: HTTPS_ISSUER })));
    afterAll(async () => server?.close());

    it('marks cookies Secure because the ISSUER is https, whatever X-Forwarded-Proto says', async () => {
      const response = await new Browser(server.url).request(authorizePath(), { headers: { 'x-forwarded-proto': 'http' } });
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toMatch(/^\/interaction\//);
      const cookies = response.headers.getSetCookie();
      expect(cookies.length).toBeGreaterThan(0);
      for (const cookie of cookies) expect(cookie).toMatch(/;\s*secure/i);
      expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    });

    it('names https endpoints from the ISSUER in discovery, whatever X-Forwarded-Proto says', async () => {
      const response = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'http' } });
      const discovery = (await response.json()) as Record<string, unknown>;
      expect(discovery.authorization_endpoint).toBe(`${HTTPS_ISSUER}/authorize`);
      expect(discovery.token_endpoint).toBe(`${HTTPS_ISSUER}/token`);
    });
  });
});

describe('in production with an https ISSUER, a request that reached Gatehouse over plain http', () => {
  let server: TestGatehouse;
  beforeAll(async () => {
    server = await startWithWebApp({ NODE_ENV: 'production', ISSUER: HTTPS_ISSUER, TRUST_PROXY: '1' });
  });
  afterAll(async () => server?.close());

  /** Every Set-Cookie of a sign-in's first steps: /authorize, the interaction page, a wrong password. */
  async function cookiesOfASignIn(headers: Record<string, string>) {
    const browser = new Browser(server.url, headers);
    const cookies: string[] = [];
    const first = await browser.request(authorizePath());
    expect(first.status).toBe(303);
    cookies.push(...first.headers.getSetCookie());
    // The cookies do not come back over http (they are Secure): send them by hand, as an attacker on the path would see them.
    const jar = first.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
    const page = await browser.request(first.headers.get('location') as string, { headers: { cookie: jar } });
    cookies.push(...page.headers.getSetCookie());
    const account = await browser.request('/account');
    cookies.push(...account.headers.getSetCookie());
    return cookies;
  }

  it('still gets only Secure cookies, without X-Forwarded-Proto or with X-Forwarded-Proto: http', async () => {
    for (const headers of [{}, { 'x-forwarded-proto': 'http' }] as Record<string, string>[]) {
      const cookies = await cookiesOfASignIn(headers);
      const names = new Set(cookies.map((c) => c.slice(0, c.indexOf('='))));
      for (const name of ['_interaction', '_interaction_resume', 'gatehouse.account_state']) expect(names.has(name), name).toBe(true);
      for (const cookie of cookies) {
        expect(cookie, cookie).toMatch(/;\s*secure/i);
        expect(cookie, cookie).toMatch(/;\s*httponly/i);
      }
    }
  });
});
