// Two Gatehouse instances on different ports sharing one database, behind one issuer, as behind a
// load balancer without sticky sessions: whichever instance a request reaches, the outcome is the
// same, because sessions, interactions, codes, tokens, brute-force counters and signing keys all
// live in the database. Run on PostgreSQL and on one SQLite file (WAL and a busy timeout let two
// connections share it).
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSigningKeys } from '../../src/keys/signing-keys.js';
import { SoftwareAuthenticator } from '../helpers/authenticator.js';
import { Browser, findForm, signOut, submitForm, submitPassword } from '../helpers/browser.js';
import { signInForCode, startAuthorization, tokenRequest, type TokenResponse } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { PASSWORD, WEB_APP, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTwoInstances, type TestGatehouse } from '../helpers/gatehouse.js';

/** The one public address both instances answer for. */
const ISSUER = 'http://gatehouse.test';
/** What the "load balancer" adds to each request it passes on. */
const FORWARDED = { 'x-forwarded-host': new URL(ISSUER).host, 'x-forwarded-proto': 'http' };
const ENV = {
  ISSUER,
  // The instances are reached through the "load balancer" below, which says which host was asked for.
  TRUST_PROXY: 'loopback',
  SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3',
  SIGN_IN_DELAY_STEP_MS: '0',
  KEY_REFRESH_INTERVAL: '1s',
};

type Route = 'A' | 'B' | 'alternate';

/**
 * A browser behind a load balancer: each request goes to the instance `route` names (or to the
 * other one than last time), with the X-Forwarded-* headers a proxy adds, so each instance
 * builds its URLs for the public issuer.
 */
class BalancedBrowser extends Browser {
  private turn = 0;
  /** Which instance answered each request, in order. */
  readonly served: string[] = [];
  /** Every cookie value the instances set, last one per name: to replay a session after logout. */
  readonly cookiesSet = new Map<string, string>();

  constructor(
    private readonly instances: { A: TestGatehouse; B: TestGatehouse },
    public route: Route,
  ) {
    super(ISSUER);
  }

  override async request(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    const target = new URL(url, ISSUER);
    const name = this.route === 'alternate' ? (this.turn++ % 2 === 0 ? 'A' : 'B') : this.route;
    this.served.push(name);
    const backend = this.instances[name];
    const response = await super.request(`${backend.url}${target.pathname}${target.search}`, {
      ...init,
      headers: { ...FORWARDED, ...init.headers },
    });
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0] ?? '';
      const value = pair.slice(pair.indexOf('=') + 1);
      if (value) this.cookiesSet.set(pair.slice(0, pair.indexOf('=')), value);
    }
    return response;
  }
}

/** A token request of the web app to one instance, as the balancer passes it on. */
const tokenOn = (instance: TestGatehouse, form: Record<string, string>): Promise<{ status: number; body: TokenResponse }> => tokenRequest(instance.url, WEB_APP, form, FORWARDED);

async function userinfoOn(instance: TestGatehouse, accessToken: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${instance.url}/userinfo`, { headers: { authorization: `Bearer ${accessToken}`, ...FORWARDED } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function jwksKidsOn(instance: TestGatehouse): Promise<string[]> {
  const response = await fetch(`${instance.url}/jwks`);
  const { keys } = (await response.json()) as { keys: { kid: string }[] };
  return keys.map((key) => key.kid);
}

const payloadOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;

describe.each(await flavours())('two instances sharing one %s database', (flavour) => {
  let A: TestGatehouse;
  let B: TestGatehouse;

  beforeAll(async () => ([A, B] = await startTwoInstances(flavour, { env: ENV, clients: [webApp()] })));
  afterAll(async () => A?.close());

  /** A new person, signed in through the balancer with `route`; returns the browser and the code's redemption form. */
  async function signIn(route: Route) {
    const person = await A.addPerson();
    const browser = new BalancedBrowser({ A, B }, route);
    const { code, verifier, callback } = await signInForCode(browser, ISSUER, WEB_APP, person);
    expect(callback.origin + callback.pathname).toBe(WEB_APP.redirectUri);
    const redemption = { grant_type: 'authorization_code', code, redirect_uri: WEB_APP.redirectUri, code_verifier: verifier };
    return { browser, accountId: person.id, redemption };
  }

  it('serves one issuer from both instances', async () => {
    for (const instance of [A, B]) {
      const response = await fetch(`${instance.url}/.well-known/openid-configuration`, { headers: FORWARDED });
      const discovery = (await response.json()) as { issuer: string; token_endpoint: string };
      expect(discovery).toMatchObject({ issuer: ISSUER, token_endpoint: `${ISSUER}/token` });
    }
  });

  it('signs in on A and redeems the code on B', async () => {
    const { accountId, redemption } = await signIn('A');
    const tokens = await tokenOn(B, redemption);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(payloadOf(tokens.body.id_token as string)).toMatchObject({ iss: ISSUER, sub: accountId, aud: WEB_APP.id });
    // And the access token B issued works on A.
    expect(await userinfoOn(A, tokens.body.access_token)).toMatchObject({ status: 200, body: { sub: accountId } });
  });

  it('completes a sign-in whose every request lands on the other instance than the one before', async () => {
    const { browser, redemption, accountId } = await signIn('alternate');
    expect(new Set(browser.served)).toStrictEqual(new Set(['A', 'B']));
    const tokens = await tokenOn(A, redemption);
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(payloadOf(tokens.body.id_token as string)).toMatchObject({ sub: accountId });
  });

  it('refreshes on B a token issued by A, and A then refuses the rotated-out refresh token', async () => {
    const { redemption, accountId } = await signIn('A');
    const issued = await tokenOn(A, redemption);
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    const first = issued.body.refresh_token as string;
    expect(first).toBeTruthy();

    const refreshed = await tokenOn(B, { grant_type: 'refresh_token', refresh_token: first });
    expect(refreshed.status, JSON.stringify(refreshed.body)).toBe(200);
    expect(refreshed.body.refresh_token).toBeTruthy();
    expect(refreshed.body.refresh_token).not.toBe(first);
    expect(payloadOf(refreshed.body.id_token as string)).toMatchObject({ sub: accountId });

    // Refresh tokens rotate: presenting the old one again, to the other instance, is reuse.
    const reused = await tokenOn(A, { grant_type: 'refresh_token', refresh_token: first });
    expect(reused).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('ends on A a session that was signed out on B, even for a copy of its cookies', async () => {
    const { browser, redemption } = await signIn('A');
    const tokens = await tokenOn(A, redemption);
    expect(tokens.status).toBe(200);
    const silentUrl = (state: string) => {
      const url = new URL(`${ISSUER}/authorize`);
      url.search = new URLSearchParams({ client_id: WEB_APP.id, response_type: 'code', redirect_uri: WEB_APP.redirectUri, scope: 'openid', prompt: 'none', state }).toString();
      return url;
    };
    // prompt=none on A with the session cookies as they were before the logout, sent by hand.
    const stolenCookies = [...browser.cookiesSet].map(([name, value]) => `${name}=${value}`).join('; ');
    const silentWithCopy = async (state: string) => {
      const url = silentUrl(state);
      const response = await fetch(`${A.url}${url.pathname}${url.search}`, {
        headers: { cookie: stolenCookies, 'x-forwarded-host': url.host, 'x-forwarded-proto': 'http' },
        redirect: 'manual',
      });
      return new URL(response.headers.get('location') ?? '', ISSUER);
    };
    expect((await silentWithCopy('before')).searchParams.get('code')).toBeTruthy();

    browser.route = 'B';
    const url = new URL(`${ISSUER}/logout`);
    url.search = new URLSearchParams({ id_token_hint: tokens.body.id_token as string, post_logout_redirect_uri: WEB_APP.postLogoutRedirectUri, client_id: WEB_APP.id }).toString();
    const done = await signOut(browser, url.href);
    expect(done.redirectedTo?.href.startsWith(WEB_APP.postLogoutRedirectUri)).toBe(true);

    // The session is gone from the database, not only from this browser.
    expect((await silentWithCopy('after')).searchParams.get('error')).toBe('login_required');
    browser.route = 'A';
    expect((await browser.visit(silentUrl('browser').href)).redirectedTo?.searchParams.get('error')).toBe('login_required');
  });

  it('finishes a passkey ceremony on the other instance than the one that began it (challenges live in the database)', async () => {
    const person = await A.addPerson();
    const browser = new BalancedBrowser({ A, B }, 'A');
    const authenticator = new SoftwareAuthenticator(ISSUER);
    const account = await submitPassword(browser, await browser.visit('/account'), person);
    const token = findForm(account.html, '/account/passkeys/add').fields.csrf_token ?? '';
    const creation = (await (await browser.request('/account/passkeys/options', { form: { csrf_token: token } })).json()) as PublicKeyCredentialCreationOptionsJSON;
    expect(creation.rp.id).toBe('gatehouse.test');
    browser.route = 'B';
    const added = await submitForm(browser, account, '/account/passkeys/add', { name: 'Laptop', response: JSON.stringify(authenticator.create(creation)) });
    expect(added.url).toContain('done=passkey_added');

    // A passwordless sign-in: options from B, the answer to A.
    const signIn = new BalancedBrowser({ A, B }, 'B');
    const { page } = await startAuthorization(signIn, ISSUER, WEB_APP);
    const loginToken = findForm(page.html, '/passkey').fields.csrf_token ?? '';
    const optionsPath = /data-options-url="([^"]+)"/.exec(page.html)?.[1] ?? '';
    const request = (await (await signIn.request(optionsPath, { form: { csrf_token: loginToken } })).json()) as PublicKeyCredentialRequestOptionsJSON;
    signIn.route = 'A';
    const consent = await submitForm(signIn, page, '/passkey', { response: JSON.stringify(authenticator.get(request)) });
    expect(consent.html).toContain('/confirm');
    expect(signIn.served).toEqual(expect.arrayContaining(['A', 'B']));
  });

  it('shares brute-force counters: failures on A lock the account on B', async () => {
    const { id: accountId, email } = await A.addPerson();
    const attempt = async (route: 'A' | 'B', password: string) => {
      const browser = new BalancedBrowser({ A, B }, route);
      const { page } = await startAuthorization(browser, ISSUER, WEB_APP);
      return (await submitPassword(browser, page, { email, password })).status;
    };
    for (let i = 0; i < 3; i++) expect(await attempt('A', WRONG_PASSWORD)).toBe(401);
    // The right password, on the other instance: locked, answered exactly like a wrong one.
    expect(await attempt('B', PASSWORD)).toBe(401);
    const locked = await B.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'sign_in.locked', accountId } });
    expect(locked).toHaveLength(1);
  });

  it('redeems a code sent to A and B at the same instant exactly once, and then revokes what it issued', async () => {
    for (let round = 0; round < 3; round++) {
      const { redemption } = await signIn('A');
      const answers = await Promise.all([tokenOn(A, redemption), tokenOn(B, redemption)]);
      const winners = answers.filter((answer) => answer.status === 200);
      const losers = answers.filter((answer) => answer.status !== 200);
      expect(winners, JSON.stringify(answers.map((a) => a.body))).toHaveLength(1);
      expect(losers).toHaveLength(1);
      expect(losers[0]).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

      // A second redemption is treated as replay (RFC 6749 4.1.2): the grant is ended, so the
      // winner's tokens stop working too, on either instance.
      const won = winners[0]!.body;
      expect(await tokenOn(B, { grant_type: 'refresh_token', refresh_token: won.refresh_token as string })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect((await userinfoOn(A, won.access_token)).status).toBe(401);
    }
  });

  it('serves on B, and signs with on B, a key rotated on A', async () => {
    const before = await jwksKidsOn(B);
    const rotation = await rotateSigningKeys(A.gatehouse.db, A.config, { immediate: true });
    const created = rotation.created.map((key) => key.kid);
    expect(created.length).toBeGreaterThan(0);
    for (const kid of created) expect(before).not.toContain(kid);

    // B re-reads the keys every KEY_REFRESH_INTERVAL (1 s here).
    let served: string[] = [];
    for (let waited = 0; waited < 15_000 && !created.every((kid) => served.includes(kid)); waited += 250) {
      served = await jwksKidsOn(B);
      if (!created.every((kid) => served.includes(kid))) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(served).toEqual(expect.arrayContaining(created));
    // The old keys stay published, for tokens they signed.
    expect(served).toEqual(expect.arrayContaining(before));

    // Rotated with `immediate`, the new key already signs: an ID token issued by B carries its kid.
    const { redemption } = await signIn('B');
    const tokens = await tokenOn(B, redemption);
    expect(tokens.status).toBe(200);
    expect(created).toContain(decodeProtectedHeader(tokens.body.id_token as string).kid);
  });
});
