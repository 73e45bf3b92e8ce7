// Key rotation without downtime: a rotated-in key is published before it signs, tokens signed
// before a rotation keep verifying against /jwks until they have expired, then the old key
// leaves /jwks; every instance on the database follows without a restart; concurrent and
// scheduled rotations make exactly one new key per algorithm.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createDb } from '../../src/db/client.js';
import { createResourceStore } from '../../src/resources/store.js';
import { listSigningKeys, retireExpiredKeys, rotateSigningKeys } from '../../src/keys/signing-keys.js';
import { Browser } from '../helpers/browser.js';
import { basicAuth, postForm, redeemCode, signInForCode } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, credentialsOf, machineClient, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, testEnv, type TestGatehouse, type TestGatehouseOptions } from '../helpers/gatehouse.js';

const API = 'https://api.example.com';
const MACHINE = credentialsOf('machine');
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** A clock the test moves forward by hand. */
function controlledClock() {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    advance(ms: number) {
      offset += ms;
    },
  };
}

/** The key settings a server started with `env` uses (for calling rotateSigningKeys directly). */
const keyConfigOf = (server: TestGatehouse, env: Record<string, string> = {}): Config =>
  loadConfig(testEnv(server.database.config, env));

async function jwksOf(server: TestGatehouse): Promise<JSONWebKeySet> {
  const response = await fetch(`${server.url}/jwks`);
  expect(response.status).toBe(200);
  return (await response.json()) as JSONWebKeySet;
}

const kidsOf = (jwks: JSONWebKeySet) => jwks.keys.map((key) => key.kid);

/** API, whose access tokens are RFC 9068 JWTs that live `ttl` seconds. */
const registerApi = (server: TestGatehouse, ttl: number) =>
  createResourceStore(server.gatehouse.db).save({ id: API, name: 'API', scope: 'read', accessTokenFormat: 'jwt', accessTokenTtl: ttl, introspectionClients: '' });

/** What the tests sign with: the web app and Alice (ID tokens), a machine client and API (JWT access tokens). */
async function prepare(server: TestGatehouse): Promise<void> {
  for (const client of [webApp(), machineClient(MACHINE.id)]) await server.addClient(client);
  await registerApi(server, 600);
  await server.addUser(ALICE);
}

/** An RFC 9068 JWT access token for API (client credentials). */
async function jwtAccessToken(server: TestGatehouse): Promise<string> {
  const response = await postForm(`${server.url}/token`, { grant_type: 'client_credentials', resource: API, scope: 'read' }, { authorization: basicAuth(MACHINE) });
  const body = (await response.json()) as { access_token?: string };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.access_token as string;
}

/** An ID token from a sign-in with the authorization code flow. */
async function idToken(server: TestGatehouse): Promise<string> {
  const { code, verifier } = await signInForCode(new Browser(server.issuer), server.issuer, WEB_APP, ALICE, 'openid');
  const { status, body } = await redeemCode(server.url, WEB_APP, code, verifier);
  expect(status, JSON.stringify(body)).toBe(200);
  return body.id_token as string;
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return condition();
}

describe.each(await flavours())('signing key rotation on %s', (flavour) => {
  const started: TestGatehouse[] = [];
  const start = async (options: TestGatehouseOptions) => {
    const server = await startTestGatehouse(flavour, options);
    started.push(server);
    return server;
  };
  // An instance closes those that share its database before it drops the database.
  afterEach(async () => {
    for (const server of started.splice(0)) await server.close();
  });

  it('publishes the new key first, signs with it once active, and keeps the old one until its tokens have expired', async () => {
    const clock = controlledClock();
    const env = { KEY_ACTIVATION_DELAY: '1h', KEY_REFRESH_INTERVAL: '0' };
    const server = await start({ env, now: clock.now });
    await prepare(server);
    const [oldRsa, oldEc] = kidsOf(await jwksOf(server));
    const oldIdToken = await idToken(server);
    const oldAccessToken = await jwtAccessToken(server);
    expect(kidOf(oldIdToken)).toBe(oldRsa);
    expect(kidOf(oldAccessToken)).toBe(oldRsa);

    const rotation = await rotateSigningKeys(server.gatehouse.db, keyConfigOf(server, env), { now: clock.now() });
    expect(rotation.created.map((key) => key.alg)).toEqual(['RS256', 'ES256']);
    expect(rotation.alreadyRotated).toEqual([]);
    const newRsa = rotation.created[0]?.kid as string;
    const newEc = rotation.created[1]?.kid as string;
    const activatesAt = rotation.created[0]?.activatesAt as Date;
    expect(activatesAt.getTime() - clock.now().getTime()).toBeGreaterThan(HOUR - 5000);
    // The longest-lived signed token here is an ID or access token (1h), plus the refresh
    // interval (0) and a minute of clock leeway, counted from the new key's activation.
    expect(rotation.retiring.map((key) => key.kid).sort()).toEqual([oldRsa, oldEc].sort());
    for (const key of rotation.retiring) expect(key.retireAfter.getTime() - activatesAt.getTime()).toBe((3600 + 60) * 1000);

    // Published at once (this instance refreshes now instead of waiting), not yet signing.
    expect(await server.gatehouse.signingKeys.refresh()).toBe(true);
    const published = await jwksOf(server);
    expect(kidsOf(published)).toEqual([oldRsa, newRsa, oldEc, newEc]);
    for (const key of published.keys) expect(key).not.toHaveProperty('d');
    expect(kidOf(await jwtAccessToken(server))).toBe(oldRsa);
    const states = Object.fromEntries((await listSigningKeys(server.gatehouse.db, clock.now())).map((key) => [key.kid, key.state]));
    expect(states).toEqual({ [oldRsa as string]: 'active', [oldEc as string]: 'active', [newRsa]: 'published', [newEc]: 'published' });

    // Once active, new tokens carry the new kid; tokens from before still verify.
    clock.advance(HOUR + 1000);
    await server.gatehouse.signingKeys.refresh();
    const afterActivation = await jwksOf(server);
    expect(kidsOf(afterActivation)).toEqual([newRsa, oldRsa, newEc, oldEc]);
    const newAccessToken = await jwtAccessToken(server);
    const newIdToken = await idToken(server);
    expect(kidOf(newAccessToken)).toBe(newRsa);
    expect(kidOf(newIdToken)).toBe(newRsa);
    const keySet = createLocalJWKSet(afterActivation);
    await expect(jwtVerify(oldIdToken, keySet, { issuer: server.issuer, audience: WEB_APP.id })).resolves.toBeTruthy();
    await expect(jwtVerify(oldAccessToken, keySet, { issuer: server.issuer, audience: API })).resolves.toBeTruthy();
    await expect(jwtVerify(newIdToken, keySet, { issuer: server.issuer, audience: WEB_APP.id })).resolves.toBeTruthy();
    await expect(jwtVerify(newAccessToken, keySet, { issuer: server.issuer, audience: API })).resolves.toBeTruthy();

    // Still published one second before retirement; gone after it, and then old tokens fail.
    const retireAfter = rotation.retiring[0]?.retireAfter as Date;
    clock.advance(retireAfter.getTime() - clock.now().getTime() - 1000);
    await server.gatehouse.signingKeys.refresh();
    expect(kidsOf(await jwksOf(server))).toContain(oldRsa);
    clock.advance(2000);
    await server.gatehouse.signingKeys.refresh();
    const afterRetirement = await jwksOf(server);
    expect(kidsOf(afterRetirement)).toEqual([newRsa, newEc]);
    await expect(jwtVerify(oldIdToken, createLocalJWKSet(afterRetirement), { issuer: server.issuer, audience: WEB_APP.id, currentDate: new Date() })).rejects.toThrow();
    expect(kidOf(await jwtAccessToken(server))).toBe(newRsa);

    // The sweeper's step stamps the retirement in the table.
    expect((await retireExpiredKeys(server.gatehouse.db, keyConfigOf(server, env), clock.now())).sort()).toEqual([oldRsa, oldEc].sort());
    const listed = await listSigningKeys(server.gatehouse.db, clock.now());
    expect(listed.filter((key) => key.state === 'retired').map((key) => key.kid).sort()).toEqual([oldRsa, oldEc].sort());
    expect(listed.find((key) => key.kid === oldRsa)?.retiredAt).toBeInstanceOf(Date);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('counts a registered resource\'s longer token lifetime when scheduling retirement', async () => {
    const server = await start({ env: { KEY_REFRESH_INTERVAL: '0', ID_TOKEN_TTL: '10m', ACCESS_TOKEN_TTL: '10m' } });
    await registerApi(server, 7200);
    const rotation = await rotateSigningKeys(server.gatehouse.db, keyConfigOf(server, { KEY_REFRESH_INTERVAL: '30s', ID_TOKEN_TTL: '10m', ACCESS_TOKEN_TTL: '10m' }), { alg: 'RS256', immediate: true });
    expect(rotation.created).toHaveLength(1);
    const created = rotation.created[0] as { activatesAt: Date };
    expect(rotation.retiring).toHaveLength(1);
    expect((rotation.retiring[0]?.retireAfter.getTime() as number) - created.activatesAt.getTime()).toBe((7200 + 30 + 60) * 1000);
  });

  it('reaches a second instance on the same database within its refresh interval, without a restart', async () => {
    const a = await start({ env: { KEY_REFRESH_INTERVAL: '0' } });
    const b = await start({ env: { ISSUER: a.issuer, KEY_REFRESH_INTERVAL: '1s' }, shareWith: a });
    await prepare(a);
    const before = kidsOf(await jwksOf(b));
    expect(before).toEqual(kidsOf(await jwksOf(a)));

    const rotation = await rotateSigningKeys(a.gatehouse.db, keyConfigOf(a, { KEY_ACTIVATION_DELAY: '0' }));
    const newKids = rotation.created.map((key) => key.kid);
    expect(newKids).toHaveLength(2);
    const arrived = await waitFor(async () => {
      const kids = kidsOf(await jwksOf(b));
      return newKids.every((kid) => kids.includes(kid));
    }, 15_000);
    expect(arrived).toBe(true);
    const jwks = await jwksOf(b);
    expect(kidsOf(jwks)).toEqual([newKids[0], before[0], newKids[1], before[1]]);
    // B signs with the new key, and A (which has not refreshed) still publishes only the old ones.
    const token = await jwtAccessToken(b);
    expect(kidOf(token)).toBe(newKids[0]);
    await expect(jwtVerify(token, createLocalJWKSet(jwks), { issuer: a.issuer, audience: API })).resolves.toBeTruthy();
    expect(kidsOf(await jwksOf(a))).toEqual(before);
  });

  it('keeps serving the keys it has when a new key cannot be decrypted, and says why', async () => {
    const server = await start({ env: { KEY_REFRESH_INTERVAL: '0' } });
    await prepare(server);
    const before = kidsOf(await jwksOf(server));
    // Rotated by an instance whose SECRETS this one does not have.
    await rotateSigningKeys(server.gatehouse.db, keyConfigOf(server, { SECRETS: 'a-different-secret-0123456789-0123456789-xyz', KEY_ACTIVATION_DELAY: '0' }));
    await expect(server.gatehouse.signingKeys.refresh()).rejects.toThrow(/no longer in SECRETS/);
    expect(kidsOf(await jwksOf(server))).toEqual(before);
    expect(kidOf(await jwtAccessToken(server))).toBe(before[0]);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('lets concurrent rotations on two instances create exactly one new key per algorithm', async () => {
    const a = await start({ env: { KEY_REFRESH_INTERVAL: '0' } });
    const other = await createDb(a.database.config);
    try {
      const config = keyConfigOf(a);
      // Each rotates the generation it saw (1): whichever order the database sees them in,
      // one insert per algorithm wins (a later reader sees generation 2, a racing one hits the
      // unique (alg, generation) constraint).
      const saw = { expectedGeneration: { RS256: 1, ES256: 1 } };
      const results = await Promise.all([rotateSigningKeys(a.gatehouse.db, config, saw), rotateSigningKeys(other, config, saw), rotateSigningKeys(other, config, { ...saw, alg: 'ES256' })]);
      const created = results.flatMap((result) => result.created);
      expect(created.map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);
      expect(results.flatMap((result) => result.alreadyRotated).sort()).toEqual(['ES256', 'ES256', 'RS256']);
      const listed = await listSigningKeys(a.gatehouse.db);
      expect(listed.filter((key) => key.generation === 2)).toHaveLength(2);
      expect(listed).toHaveLength(4);
    } finally {
      await other.close();
    }
  });

  it('rotates on schedule when the newest key is old enough, once across instances', async () => {
    const clock = controlledClock();
    const env = { KEY_REFRESH_INTERVAL: '0', KEY_ROTATION_INTERVAL: '90d', KEY_ACTIVATION_DELAY: '1h' };
    const a = await start({ env, now: clock.now });
    const b = await start({ env: { ...env, ISSUER: a.issuer }, shareWith: a, now: clock.now });
    const first = kidsOf(await jwksOf(a));

    clock.advance(89 * DAY);
    await Promise.all([a.gatehouse.signingKeys.refresh(), b.gatehouse.signingKeys.refresh()]);
    expect(await listSigningKeys(a.gatehouse.db)).toHaveLength(2);

    clock.advance(DAY + 1000);
    await Promise.all([a.gatehouse.signingKeys.refresh(), b.gatehouse.signingKeys.refresh()]);
    const listed = await listSigningKeys(a.gatehouse.db, clock.now());
    expect(listed).toHaveLength(4);
    const fresh = listed.filter((key) => key.generation === 2);
    expect(fresh.map((key) => key.state)).toEqual(['published', 'published']);
    // Both instances publish the new keys, and still sign with the first ones until activation.
    await Promise.all([a.gatehouse.signingKeys.refresh(), b.gatehouse.signingKeys.refresh()]);
    for (const server of [a, b]) {
      const kids = kidsOf(await jwksOf(server));
      expect(kids).toHaveLength(4);
      expect([kids[0], kids[2]]).toEqual(first);
    }
  });
});
