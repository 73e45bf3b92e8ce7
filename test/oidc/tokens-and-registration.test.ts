// What APIs and serious relying parties need beyond sign-in: client credentials with resource
// indicators and RFC 9068 JWT access tokens, introspection, revocation, refresh-token
// lifetimes, pairwise subjects, dynamic registration and truthful discovery.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { Browser, completeSignIn } from '../helpers/browser.js';
import { basicAuth, postForm, revokeToken } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, credentialsOf, secretFor, WEB_APP } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { authorizationRequest, discover, redeemCallback } from '../helpers/relying-party.js';

const API = 'https://api.example.com';
const OPAQUE_API = 'https://ledger.example.com';

/** Through the seed file, as an operator sets them up: secrets sealed, resources registered. */
const SEED = {
  clients: [
    ...['machine', 'other-machine', 'ledger-rs'].map((id) => ({ client_id: id, client_secret: secretFor(id), grant_types: ['client_credentials'], response_types: [] })),
    {
      client_id: WEB_APP.id,
      client_secret: WEB_APP.secret,
      redirect_uris: [WEB_APP.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email offline_access',
    },
    ...['a', 'b'].map((sector) => ({ client_id: `pairwise-${sector}`, client_secret: secretFor(`pairwise-${sector}`), redirect_uris: [`http://${sector}.test/cb`], subject_type: 'pairwise' })),
  ],
  resources: [
    { identifier: API, name: 'Example API', scopes: ['read', 'write'], access_token_format: 'jwt', access_token_ttl: 600 },
    { identifier: OPAQUE_API, scopes: ['read'], access_token_format: 'opaque', introspection_clients: ['ledger-rs'] },
  ],
};

describe.each(await flavours())('protocol breadth on %s', (flavour) => {
  let server: TestGatehouse;
  let aliceId: string;
  let jwks: JSONWebKeySet;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env: { REFRESH_TOKEN_ABSOLUTE_TTL: '4s' }, people: [ALICE] });
    aliceId = server.idOf(ALICE);
    const parsed = parseSeedFile(SEED);
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    await applySeed(server.gatehouse.db, parsed.data, { bcryptCost: 4, clientSecrets: clientSecretSealing([TEST_SECRET]) });
    jwks = (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;
  });
  afterAll(async () => server?.close());

  const client = (id: string) => discover(server.issuer, credentialsOf(id));
  /** The machine client's configuration and an access token it got for itself (client credentials; `params` as the grant takes them). */
  async function machineToken(params?: Record<string, string>) {
    const machine = await client('machine');
    return { machine, token: (await oidc.clientCredentialsGrant(machine, params)).access_token };
  }
  /** A raw token request of a seeded client (with `secret` instead of its own when given). */
  const tokenRequest = (clientId: string, body: Record<string, string>, secret = credentialsOf(clientId).secret) =>
    postForm(`${server.url}/token`, body, { authorization: basicAuth({ id: clientId, secret }) });

  /** A whole code flow for Alice with `config`'s client, up to its tokens. */
  async function signIn(config: oidc.Configuration, params: Record<string, string>, redirectUri = WEB_APP.redirectUri) {
    const request = await authorizationRequest(config, { redirect_uri: redirectUri, ...params });
    const browser = new Browser(server.issuer);
    return redeemCallback(config, await completeSignIn(browser, await browser.visit(request.url.href), ALICE), request);
  }

  describe('client credentials with resource indicators', () => {
    it('issues an RFC 9068 JWT access token for a registered resource, verifiable offline', async () => {
      const tokens = await oidc.clientCredentialsGrant(await client('machine'), { resource: API, scope: 'read' });
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.expires_in).toBe(600);
      expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt');
      const { payload } = await jwtVerify(tokens.access_token, createLocalJWKSet(jwks), { issuer: server.issuer, audience: API, typ: 'at+jwt' });
      expect(payload).toMatchObject({ client_id: 'machine', sub: 'machine', scope: 'read' });
      expect(payload.jti).toBeTruthy();
      expect((payload.exp as number) - (payload.iat as number)).toBe(600);
    });

    it('issues an opaque access token when no resource is requested', async () => {
      const { token } = await machineToken();
      expect(token.split('.')).toHaveLength(1);
    });

    it('refuses an unknown resource with invalid_target', async () => {
      const response = await tokenRequest('machine', { grant_type: 'client_credentials', resource: 'https://unknown.example.com' });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_target' });
    });

    it('grants only scopes both the client and the resource allow', async () => {
      const response = await tokenRequest('machine', { grant_type: 'client_credentials', resource: API, scope: 'read delete' });
      const body = (await response.json()) as { access_token?: string; scope?: string; error?: string };
      if (response.status === 200) {
        expect(body.scope).toBe('read');
      } else {
        expect(body.error).toBe('invalid_scope');
      }
    });

    it('refuses the grant to a client not registered for it', async () => {
      const response = await tokenRequest(WEB_APP.id, { grant_type: 'client_credentials' });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'unauthorized_client' });
    });
  });

  describe('introspection (RFC 7662)', () => {
    it('tells a client about its own token', async () => {
      const { machine, token } = await machineToken();
      expect(await oidc.tokenIntrospection(machine, token)).toMatchObject({ active: true, client_id: 'machine', token_type: 'Bearer' });
    });

    it('says inactive to a client asking about another client’s token', async () => {
      const { token } = await machineToken();
      expect((await oidc.tokenIntrospection(await client('other-machine'), token)).active).toBe(false);
    });

    it('lets a resource server registered to introspect see tokens issued for its resource', async () => {
      const { token } = await machineToken({ resource: OPAQUE_API, scope: 'read' });
      expect(token.split('.')).toHaveLength(1);
      const byResourceServer = await oidc.tokenIntrospection(await client('ledger-rs'), token);
      expect(byResourceServer).toMatchObject({ active: true, aud: OPAQUE_API, client_id: 'machine', scope: 'read' });
      const byStranger = await oidc.tokenIntrospection(await client('other-machine'), token);
      expect(byStranger.active).toBe(false);
    });

    it('refuses an unauthenticated caller with 401 invalid_client', async () => {
      const response = await postForm(`${server.url}/token/introspection`, { token: 'anything' });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    });
  });

  describe('revocation (RFC 7009)', () => {
    it('revokes a client’s own access token', async () => {
      const { machine, token } = await machineToken();
      await oidc.tokenRevocation(machine, token);
      expect((await oidc.tokenIntrospection(machine, token)).active).toBe(false);
    });

    // RFC 7009 2.2 answers 200 whatever happened, so a client cannot probe for other tokens.
    it('does not let a client revoke another client’s token (answering 200 all the same)', async () => {
      const { machine, token } = await machineToken();
      expect(await revokeToken(server.url, credentialsOf('other-machine'), token)).toBe(200);
      expect((await oidc.tokenIntrospection(machine, token)).active).toBe(true);
    });

    it('ends the whole grant when a refresh token is revoked', async () => {
      const config = await client(WEB_APP.id);
      const tokens = await signIn(config, { scope: 'openid offline_access', prompt: 'consent' });
      await oidc.tokenRevocation(config, tokens.refresh_token as string);
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('refresh tokens', () => {
    it('are issued only for offline_access with consent', async () => {
      const config = await client(WEB_APP.id);
      const withoutConsentPrompt = await signIn(config, { scope: 'openid offline_access' });
      expect(withoutConsentPrompt.refresh_token).toBeUndefined();
      const withConsent = await signIn(config, { scope: 'openid offline_access', prompt: 'consent' });
      expect(withConsent.refresh_token).toBeTruthy();
    });

    it('never outlive the absolute lifetime, however often they rotate', async () => {
      const config = await client(WEB_APP.id);
      const first = await signIn(config, { scope: 'openid offline_access', prompt: 'consent' });
      const introspected = await oidc.tokenIntrospection(config, first.refresh_token as string);
      expect((introspected.exp as number) - (introspected.iat as number)).toBeLessThanOrEqual(4);
      const rotated = await oidc.refreshTokenGrant(config, first.refresh_token as string);
      const again = await oidc.tokenIntrospection(config, rotated.refresh_token as string);
      expect(again.exp as number).toBeLessThanOrEqual(introspected.exp as number);
      await new Promise((resolve) => setTimeout(resolve, 4500));
      await expect(oidc.refreshTokenGrant(config, rotated.refresh_token as string)).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('subjects', () => {
    it('give a pairwise client its own stable sub per sector, and a public client the account id', async () => {
      const a = await signIn(await client('pairwise-a'), { scope: 'openid' }, 'http://a.test/cb');
      const aAgain = await signIn(await client('pairwise-a'), { scope: 'openid' }, 'http://a.test/cb');
      const b = await signIn(await client('pairwise-b'), { scope: 'openid' }, 'http://b.test/cb');
      const pub = await signIn(await client(WEB_APP.id), { scope: 'openid' });
      expect(a.claims()?.sub).toBe(aAgain.claims()?.sub);
      expect(a.claims()?.sub).not.toBe(b.claims()?.sub);
      expect(a.claims()?.sub).not.toBe(aliceId);
      expect(pub.claims()?.sub).toBe(aliceId);
      expect((await client(WEB_APP.id)).serverMetadata().subject_types_supported).toEqual(['public', 'pairwise']);
    });
  });

  it('asserts the password acr when asked through acr_values', async () => {
    const tokens = await signIn(await client(WEB_APP.id), { scope: 'openid', acr_values: 'urn:gatehouse:acr:password' });
    expect(tokens.claims()?.acr).toBe('urn:gatehouse:acr:password');
    expect((await client(WEB_APP.id)).serverMetadata().acr_values_supported).toEqual(['urn:gatehouse:acr:password', 'urn:gatehouse:acr:mfa']);
  });

  it('answers a request without client authentication with 401 invalid_client (RFC 6749 5.2)', async () => {
    for (const path of ['/token', '/token/introspection', '/token/revocation']) {
      const response = await postForm(`${server.url}${path}`, { grant_type: 'client_credentials', token: 'x', client_id: 'machine' });
      expect(response.status, path).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    }
  });

  it('answers token errors with no-store and, for failed Basic authentication, WWW-Authenticate', async () => {
    const response = await tokenRequest('machine', { grant_type: 'client_credentials' }, 'wrong');
    expect(response.status).toBe(401);
    expect(response.headers.get('cache-control')).toContain('no-store');
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm=".*", error="invalid_client"/);
    expect(await response.json()).toMatchObject({ error: 'invalid_client', error_description: expect.any(String) });
  });

  it('advertises the endpoints it serves', async () => {
    const metadata = (await client(WEB_APP.id)).serverMetadata();
    const path = (url?: string) => (url ? new URL(url).pathname : undefined);
    expect(path(metadata.introspection_endpoint)).toBe('/token/introspection');
    expect(path(metadata.revocation_endpoint)).toBe('/token/revocation');
    expect(path(metadata.device_authorization_endpoint)).toBe('/device/auth');
    expect(path(metadata.pushed_authorization_request_endpoint)).toBe('/par');
    expect(metadata.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']));
    expect(metadata.backchannel_logout_supported).toBe(true);
    expect(metadata.registration_endpoint).toBeUndefined();
  });
});

describe.each(await flavours())('dynamic client registration on %s', (flavour) => {
  let server: TestGatehouse;

  beforeAll(async () => (server = await startTestGatehouse(flavour, { env: { FEATURE_REGISTRATION: 'true' } })));
  afterAll(async () => server?.close());

  const register = (body: object, token?: string) =>
    fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  async function initialAccessToken(): Promise<string> {
    return new server.gatehouse.provider.InitialAccessToken({ expiresIn: 60 }).save();
  }

  it('is advertised, and refuses a registration without an initial access token', async () => {
    const metadata = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { registration_endpoint?: string };
    expect(new URL(metadata.registration_endpoint as string).pathname).toBe('/register');
    const response = await register({ redirect_uris: [WEB_APP.redirectUri] });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('registers, reads, updates and deletes a client with an initial access token; the client persists', async () => {
    const response = await register({ redirect_uris: [WEB_APP.redirectUri], client_name: 'Registered App', grant_types: ['authorization_code', 'client_credentials'] }, await initialAccessToken());
    expect(response.status).toBe(201);
    const registered = (await response.json()) as Record<string, string>;
    expect(registered).toMatchObject({ client_name: 'Registered App' });
    expect(registered.client_id && registered.client_secret && registered.registration_access_token).toBeTruthy();
    const stored = await server.gatehouse.db.prisma.client.findUnique({ where: { id: registered.client_id as string } });
    expect(stored).not.toBeNull();

    const read = await fetch(registered.registration_client_uri as string, { headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    expect(read.status).toBe(200);
    const current = (await read.json()) as Record<string, unknown>;

    const config = await oidc.discovery(new URL(server.issuer), registered.client_id as string, registered.client_secret, oidc.ClientSecretBasic(registered.client_secret as string), {
      execute: [oidc.allowInsecureRequests],
    });
    expect((await oidc.clientCredentialsGrant(config)).access_token).toBeTruthy();

    const updated = await fetch(registered.registration_client_uri as string, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${current.registration_access_token}` },
      body: JSON.stringify({ ...current, client_name: 'Renamed App', registration_access_token: undefined, registration_client_uri: undefined, client_secret_expires_at: undefined, client_id_issued_at: undefined }),
    });
    expect(updated.status).toBe(200);
    const afterUpdate = (await updated.json()) as Record<string, string>;
    expect(afterUpdate.client_name).toBe('Renamed App');

    const deleted = await fetch(registered.registration_client_uri as string, { method: 'DELETE', headers: { authorization: `Bearer ${afterUpdate.registration_access_token}` } });
    expect(deleted.status).toBe(204);
    expect(await server.gatehouse.db.prisma.client.findUnique({ where: { id: registered.client_id as string } })).toBeNull();
  });

  it('keeps allowed_groups and a required second factor when a registered client updates itself without them', async () => {
    const response = await register({ redirect_uris: [WEB_APP.redirectUri], allowed_groups: ['staff'], gatehouse_require_mfa: true }, await initialAccessToken());
    expect(response.status).toBe(201);
    const registered = (await response.json()) as Record<string, unknown>;
    const uri = registered.registration_client_uri as string;
    const current = (await (await fetch(uri, { headers: { authorization: `Bearer ${registered.registration_access_token as string}` } })).json()) as Record<string, unknown>;
    const { allowed_groups: _groups, gatehouse_require_mfa: _mfa, registration_access_token: token, registration_client_uri: _uri, client_secret_expires_at: _a, client_id_issued_at: _b, ...rest } = current;
    const updated = await fetch(uri, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token as string}` }, body: JSON.stringify({ ...rest, client_name: 'Wants everything' }) });
    expect(updated.status, await updated.clone().text()).toBe(200);
    const after = (await updated.json()) as Record<string, unknown>;
    // The engine answers with what was sent; what it stores, and loads on the client's next use, keeps both.
    const reread = await fetch(uri, { headers: { authorization: `Bearer ${after.registration_access_token as string}` } });
    expect(await reread.json()).toMatchObject({ client_name: 'Wants everything', allowed_groups: ['staff'], gatehouse_require_mfa: true });
    const stored = await server.gatehouse.db.prisma.client.findUniqueOrThrow({ where: { id: registered.client_id as string } });
    expect(stored.metadata).toMatchObject({ allowed_groups: ['staff'], gatehouse_require_mfa: true });
  });

  it('accepts an initial access token made by the admin command `initial-access-token create`', async () => {
    const created = await runCli(['initial-access-token', 'create', '--expires-in', '5m'], { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET, ISSUER: server.issuer, FEATURE_REGISTRATION: 'true' });
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^[\w-]{20,}$/);
    const response = await register({ redirect_uris: [WEB_APP.redirectUri] }, token);
    expect(response.status).toBe(201);
  });

  it('rejects invalid client metadata with invalid_redirect_uri or invalid_client_metadata', async () => {
    const response = await register({ redirect_uris: ['not a url'] }, await initialAccessToken());
    expect(response.status).toBe(400);
    expect(['invalid_redirect_uri', 'invalid_client_metadata']).toContain(((await response.json()) as { error: string }).error);
  });
});
