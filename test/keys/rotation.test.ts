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
import { Browser, findForm } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const APP = 'http://app.test';
const API = 'https://api.example.com';
const WEB = { id: 'web', secret: 'web-secret-0123456789-0123456789-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789-0123456789-012345' };
const USER = { email: 'erin@example.com', password: 'erin has a long password' };
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
  loadConfig({ NODE_ENV: 'test', SECRETS: TEST_SECRET, DATABASE_URL: server.database.config.url, ...env });

async function jwksOf(server: TestGatehouse): Promise<JSONWebKeySet> {
  const response = await fetch(`${server.url}/jwks`);
  expect(response.status).toBe(200);
  return (await response.json()) as JSONWebKeySet;
}

const kidsOf = (jwks: JSONWebKeySet) => jwks.keys.map((key) => key.kid);

async function prepare(server: TestGatehouse): Promise<void> {
  await server.addClient({ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [`${APP}/cb`], grant_types: ['authorization_code'], response_types: ['code'] });
  await server.addClient({ client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], response_types: [] });
  await createResourceStore(server.gatehouse.db).save({ id: API, name: 'API', scope: 'read', accessTokenFormat: 'jwt', accessTokenTtl: 600, introspectionClients: '' });
  await server.addUser(USER);
}

const basic = (client: { id: string; secret: string }) => `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`;

/** An RFC 9068 JWT access token for API (client credentials). */
async function jwtAccessToken(server: TestGatehouse): Promise<string> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
  });
  const body = (await response.json()) as { access_token?: string };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.access_token as string;
}

/** An ID token from a sign-in with the authorization code flow. */
async function idToken(server: TestGatehouse): Promise<string> {
  const authorize = new URL(`${server.issuer}/authorize`);
  authorize.search = new URLSearchParams({ client_id: WEB.id, response_type: 'code', redirect_uri: `${APP}/cb`, scope: 'openid', nonce: 'n-1', state: 's-1' }).toString();
  const browser = new Browser(server.issuer);
  let page = await browser.visit(authorize.href);
  // Sign in, then consent unless it was given before.
  for (let step = 0; step < 3 && !page.redirectedTo; step++) {
    const form = page.html.includes('/login"') ? findForm(page.html, '/login') : findForm(page.html, '/confirm');
    page = await browser.visit(form.action, { form: { ...form.fields, ...USER } });
  }
  const callback = page.redirectedTo as URL;
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code') as string, redirect_uri: `${APP}/cb` }),
  });
  const body = (await response.json()) as { id_token?: string };
  expect(response.status, JSON.stringify(body)).toBe(200);
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
  const start = async (...args: Parameters<typeof startTestGatehouse>) => {
    const server = await startTestGatehouse(...args);
    started.push(server);
    return server;
  };
  afterEach(async () => {
    // Instances sharing a database close before the one that owns (and drops) it.
    for (const server of started.reverse()) await server.close();
    started.length = 0;
  });

  it('publishes the new key first, signs with it once active, and keeps the old one until its tokens have expired', async () => {
    const clock = controlledClock();
    const env = { KEY_ACTIVATION_DELAY: '1h', KEY_REFRESH_INTERVAL: '0' };
    const server = await start(flavour, env, undefined, undefined, { now: clock.now });
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
    await expect(jwtVerify(oldIdToken, keySet, { issuer: server.issuer, audience: WEB.id })).resolves.toBeTruthy();
    await expect(jwtVerify(oldAccessToken, keySet, { issuer: server.issuer, audience: API })).resolves.toBeTruthy();
    await expect(jwtVerify(newIdToken, keySet, { issuer: server.issuer, audience: WEB.id })).resolves.toBeTruthy();
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
    await expect(jwtVerify(oldIdToken, createLocalJWKSet(afterRetirement), { issuer: server.issuer, audience: WEB.id, currentDate: new Date() })).rejects.toThrow();
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
    const server = await start(flavour, { KEY_REFRESH_INTERVAL: '0', ID_TOKEN_TTL: '10m', ACCESS_TOKEN_TTL: '10m' });
    await createResourceStore(server.gatehouse.db).save({ id: API, name: 'API', scope: 'read', accessTokenFormat: 'jwt', accessTokenTtl: 7200, introspectionClients: '' });
    const rotation = await rotateSigningKeys(server.gatehouse.db, keyConfigOf(server, { KEY_REFRESH_INTERVAL: '30s', ID_TOKEN_TTL: '10m', ACCESS_TOKEN_TTL: '10m' }), { alg: 'RS256', immediate: true });
    expect(rotation.created).toHaveLength(1);
    const created = rotation.created[0] as { activatesAt: Date };
    expect(rotation.retiring).toHaveLength(1);
    expect((rotation.retiring[0]?.retireAfter.getTime() as number) - created.activatesAt.getTime()).toBe((7200 + 30 + 60) * 1000);
  });

  it('reaches a second instance on the same database within its refresh interval, without a restart', async () => {
    const a = await start(flavour, { KEY_REFRESH_INTERVAL: '0' });
    const b = await start(flavour, { ISSUER: a.issuer, KEY_REFRESH_INTERVAL: '1s' }, a);
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
    const server = await start(flavour, { KEY_REFRESH_INTERVAL: '0' });
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
    const a = await start(flavour, { KEY_REFRESH_INTERVAL: '0' });
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
    const a = await start(flavour, env, undefined, undefined, { now: clock.now });
    const b = await start(flavour, { ...env, ISSUER: a.issuer }, a, undefined, { now: clock.now });
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
