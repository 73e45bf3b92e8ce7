// The admin API (/admin) on SQLite and PostgreSQL: who gets in, what every route does, the
// one error shape, and the OpenAPI document generated from the same route table.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxStore } from '../../src/mail/store.js';
import { adminRoutes, type AdminRoute } from '../../src/http/admin-routes.js';
import { scopeOfRequestObject } from '../../src/oidc/admin-access.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { createAuditLog } from '../../src/audit/log.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { ClientView, ClientWithSecret, createClient } from '../../src/clients/service.js';
import { GrantView, SessionView, UserPage, UserView } from '../../src/people/service.js';
import { createLogger } from '../../src/core/logger.js';
import { Browser, submitPassword } from '../helpers/browser.js';
import { authorizationUrl, authorizePath, basicAuth, postForm, revokeToken, signInForTokens, tokenRequest } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { APP, PASSWORD, WEB_APP } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

/** Where every app registered here sends the browser back to. */
const CALLBACK = WEB_APP.redirectUri;

interface Credentials {
  id: string;
  secret: string;
}

interface Reply {
  status: number;
  body: Record<string, unknown> & { error?: string; error_description?: string; issues?: { path: string; message: string }[] };
  headers: Headers;
}

describe.each(await flavours())('the admin API on %s', (flavour) => {
  let server: TestGatehouse;
  /** The same database behind an instance whose access tokens live one second. */
  let shortLived: TestGatehouse;
  let admin: Credentials;
  let adminToken: string;

  const silent = createLogger({ logLevel: 'silent' });

  /** Registers a client through the management layer, as the CLI or a seed would. */
  async function registerClient(metadata: Record<string, unknown>): Promise<Credentials> {
    const { client, client_secret } = await createClient({ db: server.gatehouse.db, secrets: [TEST_SECRET], audit: createAuditLog(server.gatehouse.db, silent) }, metadata, { via: 'cli' });
    return { id: client.client_id, secret: client_secret as string };
  }

  const tokenFor = (client: Credentials, form: Record<string, string>, at = server) => tokenRequest(at.url, client, form);

  async function clientCredentialsToken(client: Credentials, scope = 'admin', at = server): Promise<string> {
    const { status, body } = await tokenFor(client, { grant_type: 'client_credentials', scope }, at);
    expect(status, JSON.stringify(body)).toBe(200);
    return body.access_token as string;
  }

  async function call(method: string, path: string, token: string | undefined, body?: unknown): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${server.url}/admin${path}`, { method: method.toUpperCase(), headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : {}, headers: response.headers };
  }

  const as = (token: string) => ({
    get: (path: string) => call('get', path, token),
    post: (path: string, body: unknown = {}) => call('post', path, token, body),
    patch: (path: string, body: unknown) => call('patch', path, token, body),
    delete: (path: string) => call('delete', path, token),
  });
  let api: ReturnType<typeof as>;

  /** A code flow for `credentials` through `client`, up to tokens. */
  async function signIn(client: Credentials, credentials: { email: string; password: string }) {
    const tokens = await signInForTokens(new Browser(server.url), server.url, { ...client, redirectUri: CALLBACK }, credentials);
    expect(tokens.status).toBe(200);
    return tokens.body;
  }

  /** The sign-in page's error message after submitting these credentials. */
  async function signInError(client: Credentials, credentials: { email: string; password: string }): Promise<string> {
    const browser = new Browser(server.url);
    const signInPage = await browser.visit(authorizePath({ scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }, { id: client.id, redirectUri: CALLBACK }));
    const page = await submitPassword(browser, signInPage, credentials);
    expect(page.redirectedTo).toBeUndefined();
    return /id="form-error">([^<]*)</.exec(page.html)?.[1] ?? '(no error shown)';
  }

  let webApp: Credentials;

  beforeAll(async () => {
    // Several tests send wrong passwords from 127.0.0.1: keep the per-IP limit out of their way.
    server = await startTestGatehouse(flavour, { env: { SIGN_IN_MAX_FAILURES_PER_IP: '1000', FEATURE_REGISTRATION: 'true' } });
    shortLived = await startTestGatehouse(flavour, { env: { ACCESS_TOKEN_TTL: '3s' }, shareWith: server });
    admin = await registerClient({ client_id: 'ops-console', grant_types: ['client_credentials'], scope: 'admin', client_name: 'Ops console' });
    adminToken = await clientCredentialsToken(admin);
    api = as(adminToken);
    webApp = await registerClient({
      client_id: 'web-app',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email offline_access',
    });
  });
  afterAll(async () => server?.close());

  // ---------------------------------------------------------------------------------------------
  // Who gets in
  // ---------------------------------------------------------------------------------------------

  /** Every route of the table, with made-up ids: access is decided before anything is looked up. */
  const everyRoute = (): AdminRoute[] => adminRoutes({ config: server.config, provider: server.gatehouse.provider, db: server.gatehouse.db, audit: { record: async () => {} } });
  const concrete = (route: AdminRoute) => route.path.replace(/:(\w+)/g, 'some-$1');

  async function expectEveryRouteRefuses(token: string | undefined, status: 401 | 403, error: string) {
    for (const route of everyRoute()) {
      const reply = await call(route.method, concrete(route), token, route.body ? {} : undefined);
      expect({ route: `${route.method} ${route.path}`, status: reply.status, error: reply.body.error }).toEqual({ route: `${route.method} ${route.path}`, status, error });
      expect(reply.headers.get('www-authenticate')).toMatch(new RegExp(`^Bearer .*error="${error}"`));
      expect(reply.body.error_description).toEqual(expect.any(String));
    }
  }

  it('refuses every route without a token (401 invalid_token)', async () => {
    await expectEveryRouteRefuses(undefined, 401, 'invalid_token');
    const garbage = await call('get', '/clients', 'not-a-token');
    expect(garbage.status).toBe(401);
  });

  it('admits an admin client created by the seed file', async () => {
    const parsed = parseSeedFile({ clients: [{ client_id: 'seeded-admin', client_secret: 'seeded-admin-secret-0123456789-abcdef', grant_types: ['client_credentials'], response_types: [], scope: 'admin' }] });
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    await applySeed(server.gatehouse.db, parsed.data, { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]) });
    const token = await clientCredentialsToken({ id: 'seeded-admin', secret: 'seeded-admin-secret-0123456789-abcdef' });
    expect((await call('get', '/clients/seeded-admin', token)).body).toMatchObject({ client_id: 'seeded-admin', scope: 'admin' });
  });

  it('refuses every route with a token of a client not registered for admin (403 insufficient_scope)', async () => {
    const worker = await registerClient({ client_id: 'batch-worker', grant_types: ['client_credentials'], scope: 'openid' });
    // The engine itself will not hand this client the admin scope...
    const refused = await tokenFor(worker, { grant_type: 'client_credentials', scope: 'admin' });
    expect(refused.body.error).toBe('invalid_scope');
    // ...and the token it does get opens nothing here.
    await expectEveryRouteRefuses(await clientCredentialsToken(worker, ''), 403, 'insufficient_scope');
  });

  it('refuses admin at /token to a client registered without any scope: invalid_scope, and no token is stored', async () => {
    const scopeless = await registerClient({ client_id: 'scopeless-worker', grant_types: ['client_credentials'] });
    const stored = () => server.gatehouse.db.prisma.oidcArtifact.count({ where: { model: 'ClientCredentials', clientId: 'scopeless-worker' } });
    for (const scope of ['admin', 'openid admin', 'admin offline_access']) {
      const refused = await tokenFor(scopeless, { grant_type: 'client_credentials', scope });
      expect(refused.status, scope).toBe(400);
      expect(refused.body, scope).toMatchObject({ error: 'invalid_scope', scope: 'admin' });
    }
    expect(await stored()).toBe(0);
    // It still gets tokens without admin, which open nothing here.
    const plain = await tokenFor(scopeless, { grant_type: 'client_credentials' });
    expect(plain.status).toBe(200);
    expect(plain.body.scope).toBeUndefined();
    expect(await stored()).toBe(1);
    await expectEveryRouteRefuses(plain.body.access_token, 403, 'insufficient_scope');
  });

  it('refuses an admin client token that was asked without the admin scope (403)', async () => {
    const token = await clientCredentialsToken(admin, '');
    expect((await call('get', '/clients', token)).status).toBe(403);
  });

  it('never lets a person sign in to an app with the admin scope, whatever the app registered', async () => {
    const registered = await registerClient({ client_id: 'greedy-app', redirect_uris: [CALLBACK], grant_types: ['authorization_code'], scope: 'openid email admin' });
    // No registered scope: the engine would otherwise allow any of the provider's scopes.
    const unrestricted = await registerClient({ client_id: 'open-app', redirect_uris: [CALLBACK], grant_types: ['authorization_code'] });
    for (const app of [registered, unrestricted]) {
      const { url } = authorizationUrl(server.url, { id: app.id, redirectUri: CALLBACK }, { scope: 'openid admin', state: 'kept' });
      // Refused before any page is shown: straight back to the app with the OAuth error.
      const page = await new Browser(server.url).visit(url.href);
      expect(page.redirectedTo?.origin, page.html.slice(0, 300)).toBe(APP);
      expect(Object.fromEntries(page.redirectedTo?.searchParams ?? [])).toMatchObject({ error: 'invalid_scope', state: 'kept', scope: 'admin' });
    }
  });

  it('refuses the admin scope at /par, with prompt=none and at /device/auth as well', async () => {
    const app = await registerClient({ client_id: 'pushing-app', redirect_uris: [CALLBACK], grant_types: ['authorization_code'] });
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    const request = { client_id: app.id, response_type: 'code', redirect_uri: CALLBACK, scope: 'openid admin', state: 'kept', code_challenge: challenge, code_challenge_method: 'S256' };

    // A pushed request naming admin is refused at /par, plain or as a request object inside.
    const push = (body: Record<string, string>) => postForm(`${server.url}/par`, body, { authorization: basicAuth(app) });
    const pushed = await push(request);
    expect(pushed.status).toBe(400);
    expect(await pushed.json()).toMatchObject({ error: 'invalid_scope', scope: 'admin' });
    const unsecured = (payload: object) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;
    expect(scopeOfRequestObject(unsecured({ scope: 'openid admin' }))).toBe('openid admin');
    expect(scopeOfRequestObject('not.a-jwt')).toBeUndefined();
    expect((await push({ ...request, scope: 'openid' })).status).toBe(201);

    // prompt=none without a session: invalid_scope, not login_required.
    const silent = await new Browser(server.url).visit(`${server.url}/authorize?${new URLSearchParams({ ...request, prompt: 'none' })}`);
    expect(Object.fromEntries(silent.redirectedTo?.searchParams ?? [])).toMatchObject({ error: 'invalid_scope', state: 'kept' });

    // The device flow: no device code is issued for it.
    await server.addClient({ client_id: 'greedy-tv', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'none' });
    const deviceAuth = (scope: string) => postForm(`${server.url}/device/auth`, { client_id: 'greedy-tv', scope });
    const refused = await deviceAuth('openid admin');
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_scope', scope: 'admin' });
    expect((await deviceAuth('openid')).status).toBe(200);
  });

  it("refuses a person's access token even if one carried the admin scope (403)", async () => {
    await server.addUser({ email: 'greedy@example.com', password: PASSWORD });
    const { provider } = server.gatehouse;
    const client = await provider.Client.find(webApp.id);
    if (!client) throw new Error('web-app is missing');
    const forged = new provider.AccessToken({ accountId: 'greedy@example.com', client, scope: 'openid admin', grantId: 'no-grant', gty: 'authorization_code' });
    const reply = await call('get', '/clients', await forged.save());
    expect(reply.status).toBe(403);
    expect(reply.body.error).toBe('insufficient_scope');
  });

  it('refuses every route with a revoked token (401)', async () => {
    const token = await clientCredentialsToken(admin);
    expect((await call('get', '/clients', token)).status).toBe(200);
    expect(await revokeToken(server.url, admin, token)).toBe(200);
    await expectEveryRouteRefuses(token, 401, 'invalid_token');
  });

  it('refuses every route with an expired token (401)', async () => {
    const token = await clientCredentialsToken(admin, 'admin', shortLived);
    expect((await call('get', '/clients', token)).status).toBe(200);
    await sleep(3100);
    await expectEveryRouteRefuses(token, 401, 'invalid_token');
  });

  it('refuses a token issued for a registered resource, even one with an admin scope (401)', async () => {
    await server.gatehouse.db.prisma.resource.create({ data: { id: 'https://api.example.test', scope: 'admin read', accessTokenFormat: 'opaque' } });
    const { body } = await tokenFor(admin, { grant_type: 'client_credentials', scope: 'admin', resource: 'https://api.example.test' });
    expect(body.scope).toBe('admin');
    const reply = await call('get', '/clients', body.access_token);
    expect(reply.status).toBe(401);
    expect(reply.body.error_description).toMatch(/another resource/);
  });

  it('does not let dynamic registration hand out the admin scope', async () => {
    const initialAccessToken = await new server.gatehouse.provider.InitialAccessToken({}).save();
    const register = (scope: string) =>
      fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${initialAccessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope }),
      });
    const refused = await register('admin');
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client_metadata', error_description: 'the admin scope cannot be registered dynamically' });
    expect((await register('openid')).status).toBe(201);
  });

  // ---------------------------------------------------------------------------------------------
  // Clients
  // ---------------------------------------------------------------------------------------------

  it('creates, reads, lists, changes and deletes a client; the secret is shown once and never stored in clear', async () => {
    const created = await api.post('/clients', { client_id: 'reporting', client_name: 'Reporting', grant_types: ['client_credentials'], scope: 'openid' });
    expect(created.status).toBe(201);
    const { client, client_secret: secret } = ClientWithSecret.parse(created.body);
    expect(client).toMatchObject({ client_id: 'reporting', client_name: 'Reporting', client_secret_storage: 'hashed', response_types: [] });
    expect(secret).toMatch(/^[\w-]{43}$/);
    const row = await server.gatehouse.db.prisma.client.findUnique({ where: { id: 'reporting' } });
    expect(JSON.stringify(row?.metadata)).not.toContain(secret);
    expect((await tokenFor({ id: 'reporting', secret: secret as string }, { grant_type: 'client_credentials' })).status).toBe(200);

    const fetched = await api.get('/clients/reporting');
    expect(fetched.status).toBe(200);
    expect(ClientView.parse(fetched.body)).not.toHaveProperty('client_secret');
    expect(fetched.body).not.toHaveProperty('client_secret_hash');

    const listed = await api.get('/clients');
    expect((listed.body.clients as ClientView[]).map((c) => c.client_id)).toEqual(expect.arrayContaining(['ops-console', 'reporting', 'web-app']));

    const changed = await api.patch('/clients/reporting', { client_name: 'Monthly reporting', scope: null });
    expect(changed.status).toBe(200);
    expect((changed.body.client as ClientView).client_name).toBe('Monthly reporting');
    expect(changed.body.client).not.toHaveProperty('scope');
    expect(changed.body).not.toHaveProperty('client_secret'); // kept, not regenerated
    expect((await tokenFor({ id: 'reporting', secret: secret as string }, { grant_type: 'client_credentials' })).status).toBe(200);

    expect((await api.delete('/clients/reporting')).status).toBe(204);
    expect((await api.get('/clients/reporting')).status).toBe(404);
    expect((await api.delete('/clients/reporting')).status).toBe(404);
  });

  it('rotates a secret: the new one works at /token, the old one no longer does', async () => {
    const created = await api.post('/clients', { client_id: 'rotating', grant_types: ['client_credentials'] });
    const old = created.body.client_secret as string;
    const rotated = await api.post('/clients/rotating/secret');
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.client_secret as string;
    expect(fresh).not.toBe(old);
    expect((await tokenFor({ id: 'rotating', secret: fresh }, { grant_type: 'client_credentials' })).status).toBe(200);
    const stale = await tokenFor({ id: 'rotating', secret: old }, { grant_type: 'client_credentials' });
    expect(stale.body.error).toBe('invalid_client');
  });

  it('keeps, moves or regenerates the secret when a change alters how the client authenticates', async () => {
    const created = await api.post('/clients', { client_id: 'shifting', redirect_uris: [`${APP}/cb`], token_endpoint_auth_method: 'client_secret_post' });
    const first = created.body.client_secret as string;
    // Still a secret compared by hash: the same secret, nothing new to show.
    const post = await api.patch('/clients/shifting', { token_endpoint_auth_method: 'client_secret_basic' });
    expect(post.body).not.toHaveProperty('client_secret');
    expect((await tokenFor({ id: 'shifting', secret: first }, { grant_type: 'client_credentials' })).body.error).not.toBe('invalid_client');
    // client_secret_jwt needs the secret itself, which a hash cannot give back: a new one, shown once.
    const jwt = await api.patch('/clients/shifting', { token_endpoint_auth_method: 'client_secret_jwt' });
    expect(jwt.body.client).toMatchObject({ client_secret_storage: 'encrypted' });
    expect(jwt.body.client_secret).toEqual(expect.any(String));
    // A public client keeps no secret at all.
    const none = await api.patch('/clients/shifting', { token_endpoint_auth_method: 'none' });
    expect(none.body.client).toMatchObject({ client_secret_storage: 'none' });
    const stored = await server.gatehouse.db.prisma.client.findUnique({ where: { id: 'shifting' } });
    expect(Object.keys(stored?.metadata as object).filter((key) => key.startsWith('client_secret'))).toEqual([]);
  });

  it('refuses to rotate the secret of a public client (409) and reports unknown clients (404)', async () => {
    await api.post('/clients', { client_id: 'public-spa', redirect_uris: [`${APP}/spa`], token_endpoint_auth_method: 'none' });
    const conflict = await api.post('/clients/public-spa/secret');
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ error: 'conflict', error_description: expect.stringContaining('none') });
    expect((await api.post('/clients/nobody/secret')).body.error).toBe('not_found');
    expect((await api.post('/clients/public-spa/secret', { rotate: 'please' })).body.issues).toEqual([{ path: 'rotate', message: 'is not a known field' }]);
  });

  it('deleting a client ends the tokens issued to it', async () => {
    const created = await api.post('/clients', { client_id: 'second-admin', grant_types: ['client_credentials'], scope: 'admin' });
    const token = await clientCredentialsToken({ id: 'second-admin', secret: created.body.client_secret as string });
    expect((await call('get', '/clients', token)).status).toBe(200);
    expect((await api.delete('/clients/second-admin')).status).toBe(204);
    expect((await call('get', '/clients', token)).status).toBe(401);
  });

  it('names every field at fault in one JSON error', async () => {
    const reply = await api.post('/clients', { client_id: 'bad id!', redirect_uris: ['not a url'], grant_types: ['password'], surprise: 1 });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe('invalid_request');
    expect(reply.body.request_id).toEqual(expect.any(String));
    const paths = reply.body.issues?.map((issue) => issue.path);
    expect(paths).toEqual(expect.arrayContaining(['client_id', 'redirect_uris.0', 'grant_types.0']));
    expect(reply.body.issues).toContainEqual({ path: 'surprise', message: 'is not a known field' });
    expect(reply.body.issues?.find((issue) => issue.path === 'redirect_uris.0')?.message).toMatch(/absolute http\(s\) URL/);

    const taken = await api.post('/clients', { client_id: 'web-app', redirect_uris: [`${APP}/x`] });
    expect(taken.status).toBe(409);
    const notJson = await fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{oops' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: 'invalid_request', error_description: 'the body is not valid JSON' });
    // Metadata the engine itself refuses is refused here too, before it is stored.
    const engineRefuses = await api.post('/clients', { client_id: 'native', application_type: 'native', redirect_uris: [`${APP}/x`] });
    expect(engineRefuses.status).toBe(400);
    expect(engineRefuses.body.issues).toEqual([{ path: 'redirect_uris', message: expect.stringContaining('loopback') }]);
    expect((await api.get('/clients/native')).status).toBe(404);
  });

  // ---------------------------------------------------------------------------------------------
  // Users
  // ---------------------------------------------------------------------------------------------

  it('creates, finds, pages through and changes users', async () => {
    const weak = await api.post('/users', { email: 'carol@example.com', password: 'password' });
    expect(weak.status).toBe(400);
    expect(weak.body.issues).toEqual([{ path: 'password', message: expect.stringMatching(/at least|commonly used/) }]);

    const created = await api.post('/users', { email: 'Carol@Example.com', password: PASSWORD, name: 'Carol Danvers' });
    expect(created.status).toBe(201);
    const carol = UserView.parse(created.body);
    expect(carol).toMatchObject({ email: 'carol@example.com', name: 'Carol Danvers', disabled: false, mfa_enabled: false, email_verified: false });
    expect(created.body).not.toHaveProperty('passwordHash');
    expect((await api.post('/users', { email: 'carol@example.com', password: PASSWORD })).status).toBe(409);

    for (const n of [1, 2, 3]) await api.post('/users', { email: `pager${n}@example.com`, password: PASSWORD });
    const first = UserPage.parse((await api.get('/users?search=PAGER&limit=2')).body);
    expect(first.total).toBe(3);
    expect(first.users.map((u) => u.email)).toEqual(['pager1@example.com', 'pager2@example.com']);
    const second = UserPage.parse((await api.get('/users?search=pager&limit=2&offset=2')).body);
    expect(second.users.map((u) => u.email)).toEqual(['pager3@example.com']);
    expect((await api.get('/users?search=Danvers')).body.users).toEqual([expect.objectContaining({ id: carol.id })]);
    const badPage = await api.get('/users?limit=0&offset=x');
    expect(badPage.body.issues?.map((i) => i.path).sort()).toEqual(['limit', 'offset']);

    expect((await api.get(`/users/${carol.id}`)).body).toMatchObject({ id: carol.id });
    const changed = await api.patch(`/users/${carol.id}`, { name: null, given_name: 'Carol', email_verified: true });
    expect(changed.body).toMatchObject({ name: null, given_name: 'Carol', email_verified: true });
    expect((await api.patch(`/users/${carol.id}`, { email: 'pager1@example.com' })).status).toBe(409);
    expect((await api.patch(`/users/${carol.id}`, { email: 'nope' })).body.issues).toEqual([{ path: 'email', message: 'must be an email address' }]);
    expect((await api.get('/users/no-such-user')).status).toBe(404);
  });

  it('searches users for % and _ as the characters they are, not as wildcards', async () => {
    const people = { 'under_score@wild.test': null, 'underxscore@wild.test': null, 'plain@wild.test': '100% Plain_Name', 'other@wild.test': '100 percent!' };
    for (const [email, name] of Object.entries(people)) expect((await api.post('/users', { email, password: PASSWORD, ...(name ? { name } : {}) })).status).toBe(201);
    const found = async (search: string) => {
      const page = await api.get(`/users?${new URLSearchParams({ search })}`);
      expect(page.status).toBe(200);
      return UserPage.parse(page.body).users.map((u) => u.email).filter((email) => email.endsWith('@wild.test'));
    };
    // Unescaped, "%" and "_" matched every user, and "under_score" its look-alike too.
    expect(await found('%')).toEqual(['plain@wild.test']);
    expect(await found('_')).toEqual(['plain@wild.test', 'under_score@wild.test']);
    expect(await found('under_score')).toEqual(['under_score@wild.test']);
    expect(await found('100%')).toEqual(['plain@wild.test']);
    expect(await found('0% Plain_N')).toEqual(['plain@wild.test']);
    expect(await found('%@wild')).toEqual([]);
    expect(await found('!')).toEqual(['other@wild.test']);
    expect(await found('!%')).toEqual([]);
    expect(UserPage.parse((await api.get('/users?search=%25')).body).total).toBe(1);
    expect(await found('a\u0000b')).toEqual([]);
  });

  it('a disabled user cannot sign in (the same message as a wrong password) and loses sessions and grants', async () => {
    const created = await api.post('/users', { email: 'dora@example.com', password: PASSWORD });
    const dora = created.body.id as string;
    const tokens = await signIn(webApp, { email: 'dora@example.com', password: PASSWORD });
    expect((await api.get(`/users/${dora}/sessions`)).body.sessions).toHaveLength(1);

    const disabled = await api.post(`/users/${dora}/disabled`, { disabled: true });
    expect(disabled.body).toMatchObject({ disabled: true });
    expect((await api.get(`/users/${dora}/sessions`)).body.sessions).toEqual([]);
    expect((await api.get(`/users/${dora}/grants`)).body.grants).toEqual([]);
    expect((await tokenFor(webApp, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string })).body.error).toBe('invalid_grant');

    const wrongPassword = await signInError(webApp, { email: 'carol@example.com', password: 'not the password at all' });
    expect(await signInError(webApp, { email: 'dora@example.com', password: PASSWORD })).toBe(wrongPassword);

    expect((await api.post(`/users/${dora}/disabled`, { disabled: false })).body).toMatchObject({ disabled: false });
    await signIn(webApp, { email: 'dora@example.com', password: PASSWORD });
    expect((await api.post(`/users/${dora}/disabled`, {})).body.issues).toEqual([{ path: 'disabled', message: 'is required' }]);
  });

  it("lists a user's grants and sessions; revoking a grant ends its refresh token, revoking a session signs it out", async () => {
    const erin = (await api.post('/users', { email: 'erin@example.com', password: PASSWORD })).body.id as string;
    const tokens = await signIn(webApp, { email: 'erin@example.com', password: PASSWORD });

    const grants = (await api.get(`/users/${erin}/grants`)).body.grants as GrantView[];
    expect(grants).toEqual([expect.objectContaining({ client_id: 'web-app', scope: expect.stringContaining('offline_access') })]);
    const sessions = (await api.get(`/users/${erin}/sessions`)).body.sessions as SessionView[];
    expect(sessions).toEqual([expect.objectContaining({ amr: ['pwd'], client_ids: ['web-app'] })]);
    // Where it was last used: the sign-in's address and browser (Node's fetch says "node").
    expect(sessions[0]?.last_seen).toEqual({ at: expect.stringMatching(/^\d{4}-/), ip: expect.stringMatching(/127\.0\.0\.1$/), user_agent: 'node' });
    // Sessions are named by uid: the cookie value (the session's id) never leaves the database.
    const stored = await server.gatehouse.db.prisma.oidcArtifact.findFirst({ where: { model: 'Session', accountId: erin } });
    expect(sessions[0]?.id).not.toBe(stored?.id);

    expect((await api.delete(`/users/${erin}/grants/${grants[0]?.id}`)).status).toBe(204);
    expect((await tokenFor(webApp, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string })).body.error).toBe('invalid_grant');
    expect((await api.get(`/users/${erin}/grants`)).body.grants).toEqual([]);
    expect((await api.delete(`/users/${erin}/grants/${grants[0]?.id}`)).status).toBe(404);

    expect((await api.delete(`/users/${erin}/sessions/${sessions[0]?.id}`)).status).toBe(204);
    expect((await api.get(`/users/${erin}/sessions`)).body.sessions).toEqual([]);
    expect((await api.delete(`/users/${erin}/sessions/${sessions[0]?.id}`)).status).toBe(404);
  });

  it('sets a password (policy applies, sessions end) and resets MFA', async () => {
    const frank = (await api.post('/users', { email: 'frank@example.com', password: PASSWORD })).body.id as string;
    await signIn(webApp, { email: 'frank@example.com', password: PASSWORD });
    const weak = await api.post(`/users/${frank}/password`, { password: 'frank@example.com' });
    expect(weak.body.issues).toEqual([{ path: 'password', message: expect.any(String) }]);
    expect((await api.post(`/users/${frank}/password`, { password: 'an entirely new passphrase 7' })).status).toBe(204);
    expect((await api.get(`/users/${frank}/sessions`)).body.sessions).toEqual([]);
    await signIn(webApp, { email: 'frank@example.com', password: 'an entirely new passphrase 7' });

    await server.gatehouse.db.prisma.user.update({ where: { id: frank }, data: { totpSecretEncrypted: 'sealed', totpEnabledAt: new Date() } });
    expect((await api.get(`/users/${frank}`)).body.mfa_enabled).toBe(true);
    expect((await api.post(`/users/${frank}/mfa/reset`)).status).toBe(204);
    expect((await api.get(`/users/${frank}`)).body.mfa_enabled).toBe(false);
  });

  // ---------------------------------------------------------------------------------------------
  // Keys and the audit trail
  // ---------------------------------------------------------------------------------------------

  it('lists and rotates signing keys', async () => {
    const before = (await api.get('/keys')).body.keys as { kid: string; alg: string; state: string }[];
    expect(before.filter((key) => key.state === 'active').map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);
    const rotated = await api.post('/keys/rotate', { alg: 'ES256' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.created).toEqual([expect.objectContaining({ alg: 'ES256' })]);
    const after = (await api.get('/keys')).body.keys as { kid: string }[];
    expect(after.map((key) => key.kid)).toContain((rotated.body.created as { kid: string }[])[0]?.kid);
    expect((await api.post('/keys/rotate', { alg: 'HS256' })).body.issues?.[0]?.path).toBe('alg');
  });

  it('queries audit events by type, client, account and time', async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    await api.post('/clients', { client_id: 'audited', grant_types: ['client_credentials'] });
    const events = (await api.get(`/audit-events?type=client.created&client_id=audited&since=${since}`)).body.events as { type: string; client_id: string; details: Record<string, unknown> }[];
    expect(events).toEqual([expect.objectContaining({ type: 'client.created', client_id: 'audited', details: expect.objectContaining({ via: 'admin', by: 'ops-console' }) })]);
    expect((await api.get('/audit-events?until=2000-01-01T00:00:00Z')).body.events).toEqual([]);
    expect((await api.get('/audit-events?type=nonsense')).body.issues?.[0]?.path).toBe('type');
    // Paging: of two clients made, the second page of one event is the older one.
    await api.post('/clients', { client_id: 'audited-2', grant_types: ['client_credentials'] });
    const page = async (offset: number) => ((await api.get(`/audit-events?type=client.created&since=${since}&limit=1&offset=${offset}`)).body.events as { client_id: string }[]).map((e) => e.client_id);
    expect([...(await page(0)), ...(await page(1))]).toEqual(['audited-2', 'audited']);
    expect((await api.get('/audit-events?email=nobody%40example.com')).body.events).toEqual([]);
    expect((await api.get('/audit-events?offset=-1')).body.issues?.[0]?.path).toBe('offset');
  });

  // ---------------------------------------------------------------------------------------------
  // The OpenAPI document
  // ---------------------------------------------------------------------------------------------

  it('lists the outbox with its failed messages, and sends a test mail reporting the server’s answer', async () => {
    // Without SMTP_URL (tests), mails are written to MAIL_DIR: the "server" answer names the file.
    const sent = await api.post('/mail/test', { to: 'ops@example.com' });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ to: 'ops@example.com', via: server.config.mail.dir, response: expect.stringMatching(/^written to /) });
    expect((await api.post('/mail/test', { to: 'not-an-address' })).status).toBe(400);

    const store = createOutboxStore(server.gatehouse.db, server.config.secrets);
    // Due in an hour, so the server's own outbox worker (which takes what is due now) leaves it to
    // this test; anything claimed before it (due earlier) is passed over.
    const inAnHour = new Date(Date.now() + 3_600_000);
    const id = await store.enqueue({ kind: 'mail', topic: 'test', recipient: 'lost@example.com', payload: { to: 'lost@example.com', subject: 's', html: '', text: '' }, maxAttempts: 1 }, inAnHour);
    let claimed = await store.claimNext(inAnHour, 60);
    while (claimed && claimed.id !== id) claimed = await store.claimNext(inAnHour, 60);
    expect(claimed?.id).toBe(id);
    await store.markFailed(claimed!, '550 5.1.1 no such mailbox');
    const failed = await api.get('/outbox?state=failed');
    expect(failed.status).toBe(200);
    expect(failed.body.counts).toMatchObject({ failed: 1 });
    expect(failed.body.messages).toEqual([expect.objectContaining({ kind: 'mail', recipient: 'lost@example.com', state: 'failed', last_error: '550 5.1.1 no such mailbox' })]);
    expect(JSON.stringify(failed.body)).not.toContain('payload');
    expect((await api.get('/outbox?state=lost')).status).toBe(400);
    expect((await api.get('/outbox?limit=0')).status).toBe(400);
  });

  it('publishes an OpenAPI 3.1 document with every route the router serves', async () => {
    const response = await fetch(`${server.url}/admin/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(document.openapi).toBe('3.1.0');

    // What the router really answers, read from Express's own route stack.
    const stack = (server.gatehouse.app.express as unknown as { router: { stack: Layer[] } }).router.stack;
    // The admin router is made at its first request (the one above); its mount point holds it as `loaded`.
    const adminLayer = stack.find((layer) => layer.name === 'loadRouter' && layer.matchers?.[0]?.('/admin/clients'));
    const served = (adminLayer?.handle as { loaded: { stack: Layer[] } }).loaded.stack
      .filter((layer) => layer.route && layer.route.path !== '/openapi.json')
      .flatMap((layer) => Object.keys(layer.route?.methods ?? {}).map((method) => `${method} /admin${String(layer.route?.path).replace(/:(\w+)/g, '{$1}')}`));
    const documented = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`));
    expect(served.length).toBeGreaterThanOrEqual(20);
    expect(documented.sort()).toEqual(served.sort());

    // Every $ref points at a component that exists.
    const refs = [...JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(([, id]) => id as string);
    for (const id of refs) expect(document.components.schemas, id).toHaveProperty(id);
    expect(document.components.schemas).toHaveProperty('Error');
    const userQuery = (document.paths['/admin/users']?.get as { parameters: { name: string; in: string }[] }).parameters;
    expect(userQuery.map((p) => `${p.in}:${p.name}`)).toEqual(['query:search', 'query:offset', 'query:limit']);
    expect(document.paths['/admin/users']?.post).toMatchObject({ requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateUser' } } } } });
  });
});

interface Layer {
  name: string;
  handle: unknown;
  matchers?: ((path: string) => unknown)[];
  route?: { path: string; methods: Record<string, boolean> };
}
