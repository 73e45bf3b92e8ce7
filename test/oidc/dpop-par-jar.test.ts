// Sender-constrained tokens (DPoP, RFC 9449), pushed authorization requests (PAR, RFC 9126)
// and signed request objects (JAR, RFC 9101), driven over real HTTP on SQLite and PostgreSQL
// with openid-client as the relying party. Refusals are observed with raw requests, so each
// test pins the exact error the engine answers.
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, completeSignIn, type Page } from '../helpers/browser.js';
import { basicAuth } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, APP, credentialsOf } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { discover as discoverAt } from '../helpers/relying-party.js';

/** Every client here is registered with it (WEB also with ${APP}/other). */
const CALLBACK = `${APP}/cb`;

/** Confidential, client_secret_basic, two redirect URIs (so a bad request_uri cannot fall back to one). */
const WEB = credentialsOf('web');
/** Public (token_endpoint_auth_method none): its refresh tokens are bound to the DPoP key. */
const SPA = { id: 'spa' };
/** Confidential, registered with dpop_bound_access_tokens: true. */
const STRICT = credentialsOf('dpop-only');
/** Confidential, registered with require_pushed_authorization_requests: true. */
const PAR_ONLY = credentialsOf('par-only');
/** private_key_jwt with a registered ES256 key that also signs its request objects. */
const SIGNER = { id: 'signer' };
/** client_secret_basic with a registered key, registered with require_signed_request_object: true. */
const SIGNED_ONLY = credentialsOf('signed-only');

const DPOP_ALGS = ['ES256', 'Ed25519', 'EdDSA'];
const PAR_URN = 'urn:ietf:params:oauth:request_uri:';

type KeyPair = Awaited<ReturnType<typeof oidc.randomDPoPKeyPair>>;
type Json = Record<string, unknown>;

const epoch = () => Math.floor(Date.now() / 1000);
const ath = (accessToken: string) => createHash('sha256').update(accessToken).digest('base64url');
const basic = (id: string, secret: string) => basicAuth({ id, secret });

/** A DPoP proof JWT (RFC 9449 4.2) built by hand, so each test controls every claim. */
async function dpopProof(
  keys: KeyPair,
  htm: string,
  htu: string,
  { accessToken, nonce, iat = epoch(), jti = randomUUID() }: { accessToken?: string; nonce?: string; iat?: number; jti?: string } = {},
): Promise<string> {
  const jwk = await exportJWK(keys.publicKey);
  return new SignJWT({ htm, htu, jti, ...(accessToken ? { ath: ath(accessToken) } : {}), ...(nonce ? { nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .setIssuedAt(iat)
    .sign(keys.privateKey);
}

const thumbprint = async (keys: KeyPair) => calculateJwkThumbprint(await exportJWK(keys.publicKey));

const complete = (browser: Browser, page: Page & { redirectedTo?: URL }) => completeSignIn(browser, page, ALICE);

/** Fresh authorization parameters: PKCE, state, and offline_access (which needs prompt=consent). */
async function authorizationParams(extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const params = {
    redirect_uri: CALLBACK,
    scope: 'openid email offline_access',
    prompt: 'consent',
    state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  };
  return { params, checks: { pkceCodeVerifier: verifier, expectedState: params.state } };
}

/** Where the app's callback was sent an error instead of a code. */
function authorizationError(callback: URL | undefined) {
  return {
    at: callback && `${callback.origin}${callback.pathname}`,
    error: callback?.searchParams.get('error'),
    error_description: callback?.searchParams.get('error_description'),
  };
}

describe.each(await flavours())('DPoP, PAR and JAR on %s', (flavour) => {
  let server: TestGatehouse;
  let signerKeys: Awaited<ReturnType<typeof generateKeyPair>>;
  let signerJwks: { keys: JWK[] };
  let aliceId: string;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    const common = { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'openid email offline_access' };
    await server.addClient({ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [CALLBACK, `${APP}/other`], ...common });
    await server.addClient({ client_id: SPA.id, token_endpoint_auth_method: 'none', redirect_uris: [CALLBACK], ...common });
    await server.addClient({ client_id: STRICT.id, client_secret: STRICT.secret, dpop_bound_access_tokens: true, redirect_uris: [CALLBACK], ...common });
    await server.addClient({
      client_id: PAR_ONLY.id,
      client_secret: PAR_ONLY.secret,
      require_pushed_authorization_requests: true,
      redirect_uris: [CALLBACK],
      ...common,
    });
    signerKeys = await generateKeyPair('ES256');
    signerJwks = { keys: [{ ...(await exportJWK(signerKeys.publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' }] };
    await server.addClient({
      client_id: SIGNER.id,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      request_object_signing_alg: 'ES256',
      jwks: signerJwks,
      redirect_uris: [CALLBACK],
      ...common,
    });
    await server.addClient({
      client_id: SIGNED_ONLY.id,
      client_secret: SIGNED_ONLY.secret,
      request_object_signing_alg: 'ES256',
      require_signed_request_object: true,
      jwks: signerJwks,
      redirect_uris: [CALLBACK],
      ...common,
    });
    aliceId = await server.addUser(ALICE);
  });
  afterAll(async () => server?.close());

  const discover = (clientId: string, auth: oidc.ClientAuth) => discoverAt(server.issuer, { id: clientId }, auth);

  async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Json };
  }

  async function userinfo(authorization: string, proof?: string) {
    const response = await fetch(`${server.url}/userinfo`, { headers: { authorization, ...(proof ? { dpop: proof } : {}) } });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Json) : undefined };
  }

  /** Signs Alice in through `url` in a fresh browser and returns the app's callback URL. */
  async function signIn(url: URL): Promise<URL> {
    const browser = new Browser(server.issuer);
    return complete(browser, await browser.visit(url.href));
  }

  /** Signs Alice in through `url` and redeems the code with `checks`: her tokens. */
  async function signInAsAlice(config: oidc.Configuration, url: URL, checks: oidc.AuthorizationCodeGrantChecks) {
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(url), checks);
    expect(tokens.claims()?.sub).toBe(aliceId);
    return tokens;
  }

  /** A plain authorization request of `config`'s client is sent back with invalid_request and `description`; its parameters, to try them another way. */
  async function expectPlainRequestRefused(config: oidc.Configuration, description: string) {
    const { params, checks } = await authorizationParams();
    const plain = await new Browser(server.issuer).visit(oidc.buildAuthorizationUrl(config, params).href);
    expect(authorizationError(plain.redirectedTo)).toEqual({ at: CALLBACK, error: 'invalid_request', error_description: description });
    return { params, checks };
  }

  /** A complete code flow through openid-client, with or without a DPoP handle at the token endpoint. */
  async function codeFlow(config: oidc.Configuration, DPoP?: oidc.DPoPHandle) {
    const { params, checks } = await authorizationParams();
    const callback = await signIn(oidc.buildAuthorizationUrl(config, params));
    return oidc.authorizationCodeGrant(config, callback, checks, undefined, { DPoP });
  }

  /** A code for WEB, redeemed by hand (raw HTTP) so the test sees the token endpoint's exact answer. */
  async function webCode() {
    const { params, checks } = await authorizationParams();
    const callback = await signIn(oidc.buildAuthorizationUrl(await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret)), params));
    const code = callback.searchParams.get('code');
    if (!code) throw new Error(`no code in ${callback.href}`);
    return { grant_type: 'authorization_code', code, redirect_uri: params.redirect_uri, code_verifier: checks.pkceCodeVerifier };
  }

  const redeemAsWeb = (form: Record<string, string>, proof?: string) =>
    post('/token', form, { authorization: basic(WEB.id, WEB.secret), ...(proof ? { dpop: proof } : {}) });

  it('advertises DPoP, PAR and request objects in discovery', async () => {
    const metadata = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Json;
    expect(metadata.dpop_signing_alg_values_supported).toEqual(DPOP_ALGS);
    expect(new URL(metadata.pushed_authorization_request_endpoint as string).pathname).toBe('/par');
    // PAR is optional server-wide (required per client only), so the engine leaves the flag out,
    // which RFC 9126 5 reads as false; request_uri is accepted only as a PAR urn.
    expect(metadata).not.toHaveProperty('require_pushed_authorization_requests');
    expect(metadata.request_uri_parameter_supported).toBe(false);
    expect(metadata.request_parameter_supported).toBe(true);
    expect(metadata.request_object_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'RS256', 'PS256', 'EdDSA']));
    expect(metadata).not.toHaveProperty('require_signed_request_object');
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['private_key_jwt', 'client_secret_basic', 'none']));
  });

  describe('DPoP (RFC 9449)', () => {
    it('issues a DPoP access token bound to the key (cnf.jkt) that userinfo serves only with a proof from that key', async () => {
      const web = await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret));
      const keys = await oidc.randomDPoPKeyPair();
      const DPoP = oidc.getDPoPHandle(web, keys);
      const tokens = await codeFlow(web, DPoP);
      expect(tokens.token_type).toBe('dpop');
      expect(tokens.refresh_token).toBeTruthy();

      const introspected = await oidc.tokenIntrospection(web, tokens.access_token);
      expect(introspected).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await thumbprint(keys) } });

      // openid-client presents it as `Authorization: DPoP …` with a proof carrying ath.
      const info = await oidc.fetchUserInfo(web, tokens.access_token, aliceId, { DPoP });
      expect(info).toMatchObject({ sub: aliceId, email: ALICE.email });
    });

    it('refuses the DPoP token at userinfo as Bearer, with another key, with a proof without ath, and as DPoP without a proof', async () => {
      const web = await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret));
      const keys = await oidc.randomDPoPKeyPair();
      const { access_token: token } = await codeFlow(web, oidc.getDPoPHandle(web, keys));
      const url = `${server.url}/userinfo`;

      const good = await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url, { accessToken: token }));
      expect(good.status).toBe(200);
      expect(good.body).toMatchObject({ sub: aliceId });

      const asBearer = await userinfo(`Bearer ${token}`);
      expect(asBearer.status).toBe(401);
      expect(asBearer.body).toEqual({ error: 'invalid_token', error_description: 'invalid token provided' });
      // The engine answers with the DPoP scheme because the token it found is DPoP-bound.
      expect(asBearer.headers.get('www-authenticate')).toMatch(
        /^DPoP realm="[^"]+", error="invalid_token", error_description="invalid token provided", algs="ES256 Ed25519 EdDSA"$/,
      );

      const otherKeys = await oidc.randomDPoPKeyPair();
      const otherKey = await userinfo(`DPoP ${token}`, await dpopProof(otherKeys, 'GET', url, { accessToken: token }));
      expect(otherKey.status).toBe(401);
      expect(otherKey.body).toEqual({ error: 'invalid_token', error_description: 'invalid token provided' });
      expect(otherKey.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/);

      const noAth = await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url));
      expect(noAth.status).toBe(401);
      expect(noAth.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP proof ath mismatch' });
      expect(noAth.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_dpop_proof", error_description="DPoP proof ath mismatch"/);

      const noProof = await userinfo(`DPoP ${token}`);
      expect(noProof.status).toBe(400);
      expect(noProof.body).toEqual({ error: 'invalid_request', error_description: '`DPoP` header not provided' });
      expect(noProof.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_request"/);
    });

    it("binds a public client's refresh token to the key: the same key refreshes, another key or no proof gets invalid_grant", async () => {
      const spa = await discover(SPA.id, oidc.None());
      const keys = await oidc.randomDPoPKeyPair();
      const tokens = await codeFlow(spa, oidc.getDPoPHandle(spa, keys));
      expect(tokens.token_type).toBe('dpop');

      const otherKeys = await oidc.randomDPoPKeyPair();
      const refresh = (proof?: string) =>
        post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string, client_id: SPA.id }, proof ? { dpop: proof } : {});
      const invalidGrant = { error: 'invalid_grant', error_description: 'grant request is invalid' };
      expect(await refresh(await dpopProof(otherKeys, 'POST', `${server.url}/token`))).toMatchObject({ status: 400, body: invalidGrant });
      expect(await refresh()).toMatchObject({ status: 400, body: invalidGrant });

      // Neither refusal consumed the refresh token: the key holder still refreshes with it.
      const refreshed = await oidc.refreshTokenGrant(spa, tokens.refresh_token as string, undefined, { DPoP: oidc.getDPoPHandle(spa, keys) });
      expect(refreshed.token_type).toBe('dpop');
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      await expect(
        oidc.refreshTokenGrant(spa, refreshed.refresh_token as string, undefined, { DPoP: oidc.getDPoPHandle(spa, otherKeys) }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it("keeps a confidential client's refresh token bound to its client authentication, not to the key (RFC 9449 5)", async () => {
      const web = await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret));
      const keys = await oidc.randomDPoPKeyPair();
      const tokens = await codeFlow(web, oidc.getDPoPHandle(web, keys));

      const otherKeys = await oidc.randomDPoPKeyPair();
      const rekeyed = await oidc.refreshTokenGrant(web, tokens.refresh_token as string, undefined, { DPoP: oidc.getDPoPHandle(web, otherKeys) });
      expect(rekeyed.token_type).toBe('dpop');
      expect(await oidc.tokenIntrospection(web, rekeyed.access_token)).toMatchObject({ cnf: { jkt: await thumbprint(otherKeys) } });

      // Without a proof, the refresh succeeds and downgrades to a bearer token.
      const bearer = await oidc.refreshTokenGrant(web, rekeyed.refresh_token as string);
      expect(bearer.token_type).toBe('bearer');
      expect(await oidc.tokenIntrospection(web, bearer.access_token)).not.toHaveProperty('cnf');
    });

    it('holds a client registered with dpop_bound_access_tokens to DPoP at every token request', async () => {
      const strict = await discover(STRICT.id, oidc.ClientSecretBasic(STRICT.secret));
      const { params, checks } = await authorizationParams();
      const callback = await signIn(oidc.buildAuthorizationUrl(strict, params));
      const code = callback.searchParams.get('code') as string;
      const form = { grant_type: 'authorization_code', code, redirect_uri: params.redirect_uri, code_verifier: checks.pkceCodeVerifier };
      const auth = { authorization: basic(STRICT.id, STRICT.secret) };

      expect(await post('/token', form, auth)).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });

      const keys = await oidc.randomDPoPKeyPair();
      const issued = await post('/token', form, { ...auth, dpop: await dpopProof(keys, 'POST', `${server.url}/token`) });
      expect(issued.status).toBe(200);
      expect(issued.body.token_type).toBe('DPoP');
      const refreshWithout = await post('/token', { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token as string }, auth);
      expect(refreshWithout).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    });

    it('hands out a DPoP-Nonce at the token endpoint and userinfo, and accepts a proof carrying it', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const issued = await redeemAsWeb(await webCode(), await dpopProof(keys, 'POST', `${server.url}/token`));
      expect(issued.status).toBe(200);
      expect(issued.body.token_type).toBe('DPoP');
      const nonce = issued.headers.get('dpop-nonce');
      expect(nonce).toMatch(/^[\w-]{43}$/);

      const token = issued.body.access_token as string;
      const url = `${server.url}/userinfo`;
      const withoutNonce = await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url, { accessToken: token }));
      expect(withoutNonce.status).toBe(200);
      expect(withoutNonce.headers.get('dpop-nonce')).toMatch(/^[\w-]{43}$/);

      const withNonce = await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url, { accessToken: token, nonce: nonce as string }));
      expect(withNonce.status).toBe(200);
      expect(withNonce.body).toMatchObject({ sub: aliceId });

      const refreshed = await redeemAsWeb(
        { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token as string },
        await dpopProof(keys, 'POST', `${server.url}/token`, { nonce: nonce as string }),
      );
      expect(refreshed.status).toBe(200);
    });

    it('answers a wrong nonce with use_dpop_nonce and a fresh DPoP-Nonce, at the token endpoint and at userinfo', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const form = await webCode();
      const tokenUrl = `${server.url}/token`;
      const refused = await redeemAsWeb(form, await dpopProof(keys, 'POST', tokenUrl, { nonce: 'not-a-nonce-the-server-issued' }));
      expect(refused.status).toBe(400);
      expect(refused.body).toEqual({ error: 'use_dpop_nonce', error_description: 'invalid nonce in DPoP proof' });
      const nonce = refused.headers.get('dpop-nonce') as string;
      expect(nonce).toMatch(/^[\w-]{43}$/);

      // The refusal did not burn the code: a retry with the server's nonce redeems it.
      const issued = await redeemAsWeb(form, await dpopProof(keys, 'POST', tokenUrl, { nonce }));
      expect(issued.status).toBe(200);

      const token = issued.body.access_token as string;
      const url = `${server.url}/userinfo`;
      const wrong = await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url, { accessToken: token, nonce: 'stale' }));
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ error: 'use_dpop_nonce', error_description: 'invalid nonce in DPoP proof' });
      expect(wrong.headers.get('www-authenticate')).toMatch(/^DPoP .*error="use_dpop_nonce"/);
      const fresh = wrong.headers.get('dpop-nonce') as string;
      expect(fresh).toMatch(/^[\w-]{43}$/);
      expect((await userinfo(`DPoP ${token}`, await dpopProof(keys, 'GET', url, { accessToken: token, nonce: fresh }))).status).toBe(200);
    });

    it('asks for a nonce when a proof without one is not recent (iat ten minutes old)', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const form = await webCode();
      const stale = await redeemAsWeb(form, await dpopProof(keys, 'POST', `${server.url}/token`, { iat: epoch() - 600 }));
      expect(stale.status).toBe(400);
      expect(stale.body).toEqual({ error: 'use_dpop_nonce', error_description: 'DPoP proof iat is not recent enough, use a DPoP nonce instead' });
      expect(stale.headers.get('dpop-nonce')).toMatch(/^[\w-]{43}$/);
    });

    it('refuses a replayed proof (same jti) at userinfo and at the token endpoint', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const tokenUrl = `${server.url}/token`;
      const issued = await redeemAsWeb(await webCode(), await dpopProof(keys, 'POST', tokenUrl));
      const token = issued.body.access_token as string;

      const proof = await dpopProof(keys, 'GET', `${server.url}/userinfo`, { accessToken: token });
      expect((await userinfo(`DPoP ${token}`, proof)).status).toBe(200);
      const replayed = await userinfo(`DPoP ${token}`, proof);
      expect(replayed.status).toBe(401);
      expect(replayed.body).toEqual({ error: 'invalid_token', error_description: 'invalid token provided' });

      // A refresh proof carries no ath, so the same proof fits the next refresh: only its jti is spent.
      const refreshProof = await dpopProof(keys, 'POST', tokenUrl);
      const first = await redeemAsWeb({ grant_type: 'refresh_token', refresh_token: issued.body.refresh_token as string }, refreshProof);
      expect(first.status).toBe(200);
      const next = { grant_type: 'refresh_token', refresh_token: first.body.refresh_token as string };
      expect(await redeemAsWeb(next, refreshProof)).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
      expect((await redeemAsWeb(next, await dpopProof(keys, 'POST', tokenUrl))).status).toBe(200);
    });

    it('refuses a proof for another endpoint or method with invalid_dpop_proof', async () => {
      const keys = await oidc.randomDPoPKeyPair();
      const form = await webCode();
      const wrongUrl = await redeemAsWeb(form, await dpopProof(keys, 'POST', `${server.url}/userinfo`));
      expect(wrongUrl).toMatchObject({ status: 400, body: { error: 'invalid_dpop_proof', error_description: 'DPoP proof htu mismatch' } });
      const wrongMethod = await redeemAsWeb(form, await dpopProof(keys, 'GET', `${server.url}/token`));
      expect(wrongMethod).toMatchObject({ status: 400, body: { error: 'invalid_dpop_proof', error_description: 'DPoP proof htm mismatch' } });
    });
  });

  describe('pushed authorization requests (RFC 9126)', () => {
    it('returns a request_uri for an authenticated push, and signs in with only client_id and request_uri', async () => {
      const { params, checks } = await authorizationParams();
      // The pushed body is the authorization request itself, client_id included (RFC 9126 2.1).
      const pushed = await post('/par', { ...params, response_type: 'code', client_id: WEB.id }, { authorization: basic(WEB.id, WEB.secret) });
      expect(pushed.status).toBe(201);
      expect(pushed.body).toEqual({ request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:[\w-]+$/), expires_in: 60 });

      const url = new URL(`${server.url}/authorize`);
      url.search = new URLSearchParams({ client_id: WEB.id, request_uri: pushed.body.request_uri as string }).toString();
      const tokens = await signInAsAlice(await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret)), url, checks);
      expect(tokens.refresh_token).toBeTruthy();
    });

    it('takes each request_uri once: reused after sign-in, it is refused with invalid_request_uri', async () => {
      const parOnly = await discover(PAR_ONLY.id, oidc.ClientSecretBasic(PAR_ONLY.secret));
      const { params } = await authorizationParams();
      const url = await oidc.buildAuthorizationUrlWithPAR(parOnly, params);
      expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      const browser = new Browser(server.issuer);
      const first = await complete(browser, await browser.visit(url.href));
      expect(first.searchParams.get('code')).toBeTruthy();

      // Same browser, still signed in: the second use goes straight to the response. With a
      // single registered redirect_uri, the engine reports the error there (and nowhere else).
      const second = await browser.visit(url.href);
      expect(authorizationError(second.redirectedTo)).toEqual({
        at: CALLBACK,
        error: 'invalid_request_uri',
        error_description: 'request_uri is invalid, expired, or was already used',
      });
    });

    it('shows an error page, never a redirect, for an unknown request_uri', async () => {
      const authorize = (params: Record<string, string>) => new Browser(server.issuer).visit(`/authorize?${new URLSearchParams(params)}`);
      const unknown = await authorize({ client_id: WEB.id, request_uri: `${PAR_URN}no-such-request` });
      expect(unknown.redirectedTo).toBeUndefined();
      expect(unknown.status).toBe(400);
      expect(unknown.html).toContain('<code>invalid_request_uri</code>');

      // An unregistered redirect_uri beside it is reported as such, and not followed.
      const evil = await authorize({ client_id: WEB.id, request_uri: `${PAR_URN}no-such-request`, redirect_uri: 'https://evil.test/cb' });
      expect(evil.redirectedTo).toBeUndefined();
      expect(evil.status).toBe(400);
      expect(evil.html).toContain('<code>invalid_redirect_uri</code>');
    });

    it('refuses /authorize without PAR for a client registered with require_pushed_authorization_requests, and accepts it with PAR', async () => {
      const parOnly = await discover(PAR_ONLY.id, oidc.ClientSecretBasic(PAR_ONLY.secret));
      const { params, checks } = await expectPlainRequestRefused(parOnly, 'Pushed Authorization Request must be used');
      await signInAsAlice(parOnly, await oidc.buildAuthorizationUrlWithPAR(parOnly, params), checks);
    });

    it('authenticates every push: a wrong secret or none at all gets 401 invalid_client', async () => {
      const { params } = await authorizationParams();
      const form = { ...params, response_type: 'code', client_id: WEB.id };
      const wrong = await post('/par', form, { authorization: basic(WEB.id, 'not-the-secret') });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
      const none = await post('/par', form);
      expect(none.status).toBe(401);
      expect(none.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    });

    it('binds the code to the DPoP key pushed at /par (dpop_jkt): only that key redeems it', async () => {
      const web = await discover(WEB.id, oidc.ClientSecretBasic(WEB.secret));
      const keys = await oidc.randomDPoPKeyPair();
      async function pushWithKey() {
        const { params, checks } = await authorizationParams();
        const callback = await signIn(await oidc.buildAuthorizationUrlWithPAR(web, params, { DPoP: oidc.getDPoPHandle(web, keys) }));
        const code = callback.searchParams.get('code') as string;
        return { callback, checks, form: { grant_type: 'authorization_code', code, redirect_uri: params.redirect_uri, code_verifier: checks.pkceCodeVerifier } };
      }

      const honest = await pushWithKey();
      const tokens = await oidc.authorizationCodeGrant(web, honest.callback, honest.checks, undefined, { DPoP: oidc.getDPoPHandle(web, keys) });
      expect(await oidc.tokenIntrospection(web, tokens.access_token)).toMatchObject({ cnf: { jkt: await thumbprint(keys) } });

      const invalidGrant = { status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } };
      const withoutProof = await pushWithKey();
      expect(await redeemAsWeb(withoutProof.form)).toMatchObject(invalidGrant);

      const stolen = await pushWithKey();
      const otherKeys = await oidc.randomDPoPKeyPair();
      expect(await redeemAsWeb(stolen.form, await dpopProof(otherKeys, 'POST', `${server.url}/token`))).toMatchObject(invalidGrant);
      // The engine consumes the code before it compares thumbprints, so the attempt with the
      // wrong key also spends it: the key holder's own redemption then fails too (see the report).
      expect(await redeemAsWeb(stolen.form, await dpopProof(keys, 'POST', `${server.url}/token`))).toMatchObject(invalidGrant);
    });
  });

  describe('signed request objects (RFC 9101)', () => {
    const signer = () => discover(SIGNER.id, oidc.PrivateKeyJwt(signerKeys.privateKey));

    it('completes a flow whose authorization parameters travel only in a request object signed with the registered key', async () => {
      const config = await signer();
      const { params, checks } = await authorizationParams();
      const url = await oidc.buildAuthorizationUrlWithJAR(config, params, signerKeys.privateKey);
      expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request']);
      const tokens = await signInAsAlice(config, url, checks);
      expect(tokens.claims()?.aud).toBe(SIGNER.id);
    });

    it('accepts a request object built with jose (iss = client_id, aud = issuer) and pushed at /par', async () => {
      const config = await signer();
      const { params, checks } = await authorizationParams();
      const request = await new SignJWT({ ...params, response_type: 'code', client_id: SIGNER.id })
        .setProtectedHeader({ alg: 'ES256', kid: 'signer-1' })
        .setIssuer(SIGNER.id)
        .setAudience(server.issuer)
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(randomUUID())
        .sign(signerKeys.privateKey);
      await signInAsAlice(config, await oidc.buildAuthorizationUrlWithPAR(config, { request }), checks);
    });

    it('refuses a request object signed with another key with invalid_request_object', async () => {
      const config = await signer();
      const { params } = await authorizationParams();
      const intruder = await generateKeyPair('ES256');
      const url = await oidc.buildAuthorizationUrlWithJAR(config, params, intruder.privateKey);
      const page = await new Browser(server.issuer).visit(url.href);
      expect(authorizationError(page.redirectedTo)).toEqual({
        at: CALLBACK,
        error: 'invalid_request_object',
        error_description: 'could not validate Request Object',
      });
    });

    it('refuses a request object for another audience, and an unsigned one', async () => {
      const { params } = await authorizationParams();
      const claims = { ...params, response_type: 'code', client_id: SIGNER.id };
      const elsewhere = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(SIGNER.id)
        .setAudience('https://another-issuer.test')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signerKeys.privateKey);
      const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const unsigned = `${segment({ alg: 'none' })}.${segment({ ...claims, iss: SIGNER.id, aud: server.issuer })}.`;
      for (const [request, description] of [
        [elsewhere, 'Request Object claims are invalid'],
        [unsigned, 'unsupported signed request alg'],
      ] as const) {
        const url = new URL(`${server.url}/authorize`);
        url.search = new URLSearchParams({ client_id: SIGNER.id, request }).toString();
        const page = await new Browser(server.issuer).visit(url.href);
        expect(authorizationError(page.redirectedTo)).toEqual({ at: CALLBACK, error: 'invalid_request_object', error_description: description });
      }
    });

    it('refuses a plain request from a client registered with require_signed_request_object, and accepts a signed one', async () => {
      const config = await discover(SIGNED_ONLY.id, oidc.ClientSecretBasic(SIGNED_ONLY.secret));
      const { params, checks } = await expectPlainRequestRefused(config, 'Request Object must be used by this client');
      await signInAsAlice(config, await oidc.buildAuthorizationUrlWithJAR(config, params, signerKeys.privateKey), checks);
    });
  });

  describe('with FEATURE_DPOP=false', () => {
    let plain: TestGatehouse;

    beforeAll(async () => {
      const web = { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [CALLBACK], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] };
      plain = await startTestGatehouse(flavour, { env: { FEATURE_DPOP: 'false' }, clients: [web], people: [ALICE] });
    });
    afterAll(async () => plain?.close());

    it('does not advertise DPoP, ignores a proof at the token endpoint, and refuses the DPoP scheme at userinfo', async () => {
      const metadata = (await (await fetch(`${plain.url}/.well-known/openid-configuration`)).json()) as Json;
      expect(metadata).not.toHaveProperty('dpop_signing_alg_values_supported');

      const web = await discoverAt(plain.issuer, { id: WEB.id }, oidc.ClientSecretBasic(WEB.secret));
      const { params, checks } = await authorizationParams({ scope: 'openid email' });
      const browser = new Browser(plain.issuer);
      const callback = await complete(browser, await browser.visit(oidc.buildAuthorizationUrl(web, params).href));
      const keys = await oidc.randomDPoPKeyPair();
      const response = await fetch(`${plain.url}/token`, {
        method: 'POST',
        headers: {
          authorization: basic(WEB.id, WEB.secret),
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await dpopProof(keys, 'POST', `${plain.url}/token`),
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: callback.searchParams.get('code') as string,
          redirect_uri: params.redirect_uri,
          code_verifier: checks.pkceCodeVerifier,
        }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('dpop-nonce')).toBeNull();
      const tokens = (await response.json()) as Json;
      expect(tokens.token_type).toBe('Bearer');
      const token = tokens.access_token as string;
      expect(await oidc.tokenIntrospection(web, token)).not.toHaveProperty('cnf');

      const asBearer = await fetch(`${plain.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      expect(asBearer.status).toBe(200);
      const asDpop = await fetch(`${plain.url}/userinfo`, {
        headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(keys, 'GET', `${plain.url}/userinfo`, { accessToken: token }) },
      });
      expect(asDpop.status).toBe(400);
      expect(await asDpop.json()).toEqual({ error: 'invalid_request', error_description: '`DPoP` header not provided' });
      expect(asDpop.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_request"/);
    });
  });

  describe('with FEATURE_REQUEST_OBJECTS=false', () => {
    let plain: TestGatehouse;

    beforeAll(async () => {
      const signer = { client_id: SIGNER.id, token_endpoint_auth_method: 'private_key_jwt', jwks: signerJwks, redirect_uris: [CALLBACK], grant_types: ['authorization_code'], response_types: ['code'] };
      plain = await startTestGatehouse(flavour, { env: { FEATURE_REQUEST_OBJECTS: 'false' }, clients: [signer] });
    });
    afterAll(async () => plain?.close());

    it('does not advertise request objects and refuses a request parameter with request_not_supported', async () => {
      const metadata = (await (await fetch(`${plain.url}/.well-known/openid-configuration`)).json()) as Json;
      expect(metadata).not.toHaveProperty('request_parameter_supported');
      expect(metadata).not.toHaveProperty('request_object_signing_alg_values_supported');

      const config = await discoverAt(plain.issuer, SIGNER, oidc.PrivateKeyJwt(signerKeys.privateKey));
      const { params } = await authorizationParams();
      const url = await oidc.buildAuthorizationUrlWithJAR(config, params, signerKeys.privateKey);
      const page = await new Browser(plain.issuer).visit(url.href);
      expect(authorizationError(page.redirectedTo)).toEqual({ at: CALLBACK, error: 'request_not_supported', error_description: null });
    });
  });
});
