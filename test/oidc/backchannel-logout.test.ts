// OpenID Connect Back-Channel Logout 1.0: the logout token each relying party receives, the
// bounded retries through the outbox, and that a slow or dead relying party never holds up the
// person's logout.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, type JSONWebKeySet } from 'jose';
import Provider, { type Client } from 'oidc-provider';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deliverBackchannelLogoutsThroughOutbox } from '../../src/oidc/backchannel-logout.js';
import { createOutbox, type Outbox } from '../../src/mail/outbox.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { Browser, completeSignIn, findForm } from '../helpers/browser.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { ALICE, credentialsOf, secretFor, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { discover } from '../helpers/relying-party.js';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
// Short enough for tests; the attempt timeout is longer than the limit put on the logout response.
const RETRY_DELAYS_MS = [50, 100];
const ATTEMPTS = RETRY_DELAYS_MS.length + 1;
const TIMEOUT_MS = 1500;

interface Receiver {
  readonly uri: string;
  /** Every request received, in order. */
  readonly posts: { method?: string; contentType?: string; params: URLSearchParams; at: number }[];
  close(): Promise<void>;
}

/** A relying party's back-channel logout endpoint; `answer(n)` scripts its reply to the n-th request. */
async function startReceiver(answer: (n: number) => number | 'hang' = () => 200): Promise<Receiver> {
  const posts: Receiver['posts'] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    posts.push({ method: req.method, contentType: req.headers['content-type'], params: new URLSearchParams(body), at: performance.now() });
    const status = answer(posts.length);
    if (status === 'hang') return;
    res.writeHead(status, { 'cache-control': 'no-store' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    uri: `http://127.0.0.1:${port}/backchannel-logout`,
    posts,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe.each(await flavours())('back-channel logout on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;
  let jwks: ReturnType<typeof createLocalJWKSet>;
  let receivers: Receiver[] = [];
  let clients = 0;

  beforeAll(async () => {
    const env = { BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS: RETRY_DELAYS_MS.join(','), BACKCHANNEL_LOGOUT_TIMEOUT_MS: String(TIMEOUT_MS) };
    server = await startTestGatehouse(flavour, { env, people: [ALICE] });
    aliceId = server.idOf(ALICE);
    jwks = createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet);
  });
  afterEach(async () => {
    await server.gatehouse.outbox.drain();
    await Promise.all(receivers.map((r) => r.close()));
    receivers = [];
  });
  afterAll(async () => server?.close());

  /** A receiver, and a client registered to be told about logouts there. */
  async function clientWithReceiver(answer?: Parameters<typeof startReceiver>[0], metadata: Record<string, unknown> = {}) {
    const receiver = await startReceiver(answer);
    receivers.push(receiver);
    const clientId = `bc-rp-${++clients}`;
    await server.addClient(webApp({ client_id: clientId, client_secret: secretFor(clientId), backchannel_logout_uri: receiver.uri, backchannel_logout_session_required: true, ...metadata }));
    return { clientId, config: await discover(server.issuer, credentialsOf(clientId)), receiver };
  }

  /** A full code flow for `config`'s client in `browser`; returns the ID token and its claims. */
  async function signIn(browser: Browser, config: oidc.Configuration) {
    const authorize = oidc.buildAuthorizationUrl(config, { redirect_uri: WEB_APP.redirectUri, scope: 'openid', state: 'st' });
    const callback = await completeSignIn(browser, await browser.visit(authorize.href), ALICE);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { expectedState: 'st' });
    return { idToken: tokens.id_token as string, claims: tokens.claims() as oidc.IDToken };
  }

  /** RP-initiated logout with id_token_hint, confirmed; times the confirmation response alone. */
  async function logOut(browser: Browser, config: oidc.Configuration, idToken: string) {
    const page = await browser.visit(oidc.buildEndSessionUrl(config, { id_token_hint: idToken }).href);
    const form = findForm(page.html, '/logout');
    const started = performance.now();
    const response = await browser.request(form.action, { form: { ...form.fields, logout: 'yes' } });
    return { status: response.status, elapsedMs: performance.now() - started };
  }

  /**
   * A client told about logouts at a receiver that answers `answer`; Alice signs in to it in a
   * new browser and logs out. Returns once every delivery has settled.
   */
  async function signInThenLogOut(answer?: Parameters<typeof startReceiver>[0], metadata: Record<string, unknown> = {}) {
    const { clientId, config, receiver } = await clientWithReceiver(answer, metadata);
    const browser = new Browser(server.issuer);
    const { idToken, claims } = await signIn(browser, config);
    const loggedOutAt = Math.floor(Date.now() / 1000);
    const logout = await logOut(browser, config, idToken);
    await server.gatehouse.outbox.drain();
    return { clientId, config, receiver, browser, claims, loggedOutAt, logout };
  }

  it('POSTs one logout token, signed by the provider, naming the person and the session', async () => {
    const { clientId, receiver, claims, loggedOutAt, logout } = await signInThenLogOut();
    expect(claims.sid).toEqual(expect.any(String));
    expect(logout.status).toBe(303);

    expect(receiver.posts).toHaveLength(1);
    const [post] = receiver.posts;
    expect(post?.method).toBe('POST');
    expect(post?.contentType).toBe('application/x-www-form-urlencoded');
    expect([...(post?.params.keys() ?? [])]).toEqual(['logout_token']);
    const { payload, protectedHeader } = await jwtVerify(post?.params.get('logout_token') ?? '', jwks, { issuer: server.issuer, audience: clientId });
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(payload.events).toEqual({ [LOGOUT_EVENT]: {} });
    expect(payload.sub).toBe(aliceId);
    expect(payload.sid).toBe(claims.sid);
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload.iat).toBeGreaterThanOrEqual(loggedOutAt - 1);
    expect(payload.iat).toBeLessThanOrEqual(loggedOutAt + 2);
    expect(payload).not.toHaveProperty('nonce');
  });

  it('retries a failing relying party and stops once it answers 200', async () => {
    const { receiver } = await signInThenLogOut((n) => (n <= 2 ? 500 : 200));

    expect(receiver.posts).toHaveLength(3);
    // The same token each time: it was issued when the person logged out.
    expect(new Set(receiver.posts.map((p) => p.params.get('logout_token'))).size).toBe(1);
    const gaps = receiver.posts.slice(1).map((p, i) => p.at - (receiver.posts[i]?.at ?? 0));
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual((RETRY_DELAYS_MS[i] ?? 0) - 5));
  });

  it('makes exactly the configured number of attempts at a relying party that always fails, then no more', async () => {
    const { receiver } = await signInThenLogOut(() => 500);
    expect(receiver.posts).toHaveLength(ATTEMPTS);
    await new Promise((resolve) => setTimeout(resolve, 3 * Math.max(...RETRY_DELAYS_MS)));
    expect(receiver.posts).toHaveLength(ATTEMPTS);
    // Failed, and shown as failed in the outbox, with why.
    const [message] = await createOutboxStore(server.gatehouse.db, server.config.secrets).list({ state: 'failed', limit: 1 });
    expect(message).toMatchObject({ kind: 'backchannel_logout', attempts: ATTEMPTS, lastError: 'HTTP 500 Internal Server Error' });
  });

  it('does not retry a relying party that rejects the token (400)', async () => {
    const { receiver } = await signInThenLogOut(() => 400);
    expect(receiver.posts).toHaveLength(1);
  });

  it('answers the person at once while a relying party hangs, and gives up on it after the configured attempts', async () => {
    const { config, receiver, browser, logout } = await signInThenLogOut(() => 'hang');
    // Measured when the person's logout was answered, before any delivery had settled.
    expect(logout.status).toBe(303);
    expect(logout.elapsedMs).toBeLessThan(1000);
    expect(receiver.posts).toHaveLength(ATTEMPTS);
    // The session is over even though the relying party never answered.
    const silent = await browser.visit(oidc.buildAuthorizationUrl(config, { redirect_uri: WEB_APP.redirectUri, scope: 'openid', prompt: 'none' }).href);
    expect(silent.redirectedTo?.searchParams.get('error')).toBe('login_required');
  });

  it('gives a pairwise client the subject it knows the person by', async () => {
    const { clientId, receiver, claims } = await signInThenLogOut(undefined, { subject_type: 'pairwise' });
    expect(claims.sub).not.toBe(aliceId);
    const { payload } = await jwtVerify(receiver.posts[0]?.params.get('logout_token') ?? '', jwks, { issuer: server.issuer, audience: clientId });
    expect(payload.sub).toBe(claims.sub);
  });

  it('tells every client signed in within the session, each about its own sid', async () => {
    const first = await clientWithReceiver();
    const second = await clientWithReceiver();
    const browser = new Browser(server.issuer);
    const one = await signIn(browser, first.config);
    const two = await signIn(browser, second.config);

    await logOut(browser, first.config, one.idToken);
    await server.gatehouse.outbox.drain();

    for (const [{ clientId, receiver }, signedIn] of [
      [first, one],
      [second, two],
    ] as const) {
      expect(receiver.posts).toHaveLength(1);
      const { payload } = await jwtVerify(receiver.posts[0]?.params.get('logout_token') ?? '', jwks, { issuer: server.issuer, audience: clientId });
      expect(payload).toMatchObject({ sub: aliceId, sid: signedIn.claims.sid });
    }
  });
});

// A bare engine with an outbox on its own database: the method the engine calls, the events it
// used to emit, and the log lines.
describe('back-channel logout delivery', () => {
  type LogoutCapable = Client & { backchannelLogout(sub: string, sid: string): Promise<void> };
  let answer: (n: number) => number | 'hang';
  let receiver: Receiver;
  let provider: Provider;
  let guarded: Provider;
  let client: LogoutCapable;
  let lines: Record<string, unknown>[];
  let events: string[];
  // Each engine has its own database: a worker delivers whatever its database holds, so two
  // engines on one database would take each other's retries.
  const dbs: MigratedDb[] = [];
  const outboxes: Outbox[] = [];
  const settle = () => Promise.all(outboxes.map((outbox) => outbox.drain()));

  beforeAll(async () => {
    receiver = await startReceiver((n) => answer(n));
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'k1' };
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    /** A bare engine with one client to tell about logouts, delivering them as Gatehouse does. */
    const engine = async (allowPrivateNetworks: boolean) => {
      const db = await migratedDb('sqlite');
      dbs.push(db);
      const engine = new Provider('http://op.test', {
        jwks: { keys: [jwk] },
        features: { devInteractions: { enabled: false }, backchannelLogout: { enabled: true } },
        clients: [{ client_id: 'rp', client_secret: secretFor('rp'), redirect_uris: [WEB_APP.redirectUri], backchannel_logout_uri: receiver.uri }],
      });
      const outbox = createOutbox({ config: { secrets: [TEST_SECRET], issuer: 'http://op.test', mail: { smtpUrl: undefined, from: 'x@op.test', timeout: 1, allowPlaintext: false, dir: '/nonexistent', pollInterval: 3600, lease: 60, maxAttempts: 1, retryDelayMs: 10 } }, db, logger });
      deliverBackchannelLogoutsThroughOutbox(engine, { outbox, db, logger, options: { retryDelaysMs: [10, 10], timeoutMs: 500, allowPrivateNetworks } });
      outbox.start();
      outboxes.push(outbox);
      return engine;
    };
    provider = await engine(true);
    guarded = await engine(false);
    provider.on('backchannel.success', (_ctx, c, sub, sid) => events.push(`success ${c.clientId} ${sub} ${sid}`));
    provider.on('backchannel.error', (_ctx, err, c, sub, sid) => events.push(`error ${c.clientId} ${sub} ${sid} ${err.message}`));
    client = (await provider.Client.find('rp')) as LogoutCapable;
  });
  beforeEach(() => {
    receiver.posts.length = 0;
    lines = [];
    events = [];
  });
  afterEach(async () => settle());
  afterAll(async () => {
    await Promise.all(outboxes.map((outbox) => outbox.stop()));
    await Promise.all(dbs.map((db) => db.drop()));
    await receiver?.close();
  });

  it('resolves before the relying party answers, then emits backchannel.success once', async () => {
    answer = (n) => (n === 1 ? 503 : 200);
    await client.backchannelLogout('user-1', 'sid-1');
    expect(events).toEqual([]);

    await settle();
    expect(events).toEqual(['success rp user-1 sid-1']);
    const token = receiver.posts[0]?.params.get('logout_token') ?? '';
    // Not asked for by this client (backchannel_logout_session_required is false).
    expect(decodeJwt(token)).not.toHaveProperty('sid');
    expect(lines.map(({ level, attempt, reason }) => [level, attempt, reason])).toEqual([
      [40, 1, 'HTTP 503 Service Unavailable'],
      [30, 2, undefined],
    ]);
    expect(lines.every((line) => line.client_id === 'rp' && line.uri === receiver.uri)).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  it('logs every failed attempt, gives up with an error, then emits backchannel.error once', async () => {
    answer = () => 'hang';
    await client.backchannelLogout('user-2', 'sid-2');
    await settle();
    expect(events).toEqual([expect.stringMatching(/^error rp user-2 sid-2 /)]);
    expect(lines.map(({ level, attempt }) => [level, attempt])).toEqual([
      [40, 1],
      [40, 2],
      [50, 3],
    ]);
    expect(lines.at(-1)?.reason).toMatch(/timeout/i);
  });

  it('refuses a loopback or private address when private networks are not allowed (production default)', async () => {
    answer = () => 200;
    const guardedClient = (await guarded.Client.find('rp')) as LogoutCapable;
    await guardedClient.backchannelLogout('user-4', 'sid-4');
    await settle();
    expect(receiver.posts).toHaveLength(0);
    expect(lines.map(({ level, attempt }) => [level, attempt])).toEqual([[50, 1]]);
    expect(lines[0]?.reason).toMatch(/special-use address/);
  });

  it('drops the events end_session emits before delivery has happened', async () => {
    provider.emit('backchannel.success', undefined, client, 'user-3', 'sid-3');
    provider.emit('backchannel.error', undefined, new Error('x'), client, 'user-3', 'sid-3');
    expect(events).toEqual([]);
  });
});
