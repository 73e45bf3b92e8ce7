// A read-only copy of the database must give no working bearer token: the attack is to read the
// OidcArtifact table (a leaked backup, a read-only SQL injection) and present what is there.
// Secret ids are stored as SHA-256 hashes and the payloads keep secret values only encrypted;
// rows stored the old way are rewritten once, and the tokens they hold keep working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPayload, SEALED_KEY, sealStoredArtifacts } from '../../src/artifacts/at-rest.js';
import { RecordingBrowser, refreshTokens, signInForTokens } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

describe.each(await flavours())('artifacts at rest on %s', (flavour) => {
  let server: TestGatehouse;
  let tokens: { access_token: string; refresh_token: string };
  let browser: RecordingBrowser;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { clients: [webApp()], people: [ALICE] });
    browser = new RecordingBrowser(server.url, 'at-rest-test');
    const response = await signInForTokens(browser, server.issuer, WEB_APP, ALICE, 'openid email offline_access');
    expect(response.status).toBe(200);
    tokens = response.body as typeof tokens;
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });
  afterAll(async () => server?.close());

  const userinfo = (token: string) => fetch(`${server.url}/userinfo`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  const rows = () => server.gatehouse.db.prisma.oidcArtifact.findMany({ select: { model: true, id: true, payload: true, uid: true, userCode: true, grantId: true } });

  it('keeps no token, code or session cookie value anywhere in the table', async () => {
    expect(await userinfo(tokens.access_token)).toBe(200);
    const dump = JSON.stringify(await rows());
    const secrets = [tokens.access_token, tokens.refresh_token, ...browser.cookieValues].filter((value) => value.length >= 20);
    expect(secrets.length).toBeGreaterThanOrEqual(3);
    // A cookie value may carry its signature after a dot; the engine's part is what must not leak.
    for (const secret of secrets) expect(dump).not.toContain(secret.split('.')[0]);
  });

  it("stores no jti for what is only found by its id, and the session's sealed, since it is also found by uid", async () => {
    const stored = await rows();
    const tokenRows = stored.filter((row) => ['AccessToken', 'RefreshToken', 'AuthorizationCode'].includes(row.model));
    expect(tokenRows.length).toBeGreaterThanOrEqual(3);
    for (const row of tokenRows) expect(row.payload, row.model).not.toHaveProperty('jti');
    for (const row of tokenRows) expect(row.payload, row.model).not.toHaveProperty(SEALED_KEY);
    const [session] = stored.filter((row) => row.model === 'Session');
    expect(session?.payload).not.toHaveProperty('jti');
    expect((session?.payload as Record<string, unknown>)[SEALED_KEY]).toEqual(expect.any(String));
    expect(openPayload('Session', session?.payload as Record<string, unknown>, [TEST_SECRET]).jti).toEqual(expect.any(String));
  });

  it('opens a sealed value it opened before only with the secrets that sealed it, and only as the model it was sealed for', async () => {
    const [session] = (await rows()).filter((row) => row.model === 'Session');
    const payload = session?.payload as Record<string, unknown>;
    const secrets = [TEST_SECRET];
    const first = openPayload('Session', payload, secrets);
    // Opened again (remembered for these secrets): the same payload, not the same object.
    const again = openPayload('Session', payload, secrets);
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
    // Another SECRETS list without the sealing secret, or another model, opens nothing.
    expect(() => openPayload('Session', payload, ['another-secret-0123456789-abcdefghijklmnopqrstuv'])).toThrow(/no longer in SECRETS/);
    expect(() => openPayload('DeviceCode', payload, secrets)).toThrow(/does not decrypt/);
  });

  it('refuses, as a bearer token, every id and every string a reader of the table finds', async () => {
    const found = new Set<string>();
    const collect = (value: unknown) => {
      // Anything that could be sent as a bearer token (no spaces, 20 characters or more).
      if (typeof value === 'string' && /^[\x21-\x7e]{20,}$/.test(value)) found.add(value);
      else if (value && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect(await rows());
    expect(found.size).toBeGreaterThan(5);
    for (const value of found) expect(await userinfo(value), value).toBe(401);
    // While the real token, which no reader has, works.
    expect(await userinfo(tokens.access_token)).toBe(200);
  });

  it('rewrites rows stored the old way (raw id, jti in the clear) once; their tokens keep working', async () => {
    // Put the access token back as an earlier release stored it, and forget that the rewrite ran.
    const db = server.gatehouse.db;
    const [stored] = await db.prisma.oidcArtifact.findMany({ where: { model: 'AccessToken' } });
    const legacy = openPayload('AccessToken', stored?.payload as Record<string, unknown>, [TEST_SECRET], tokens.access_token);
    expect(legacy.jti).toBe(tokens.access_token);
    await db.prisma.oidcArtifact.update({ where: { model_id: { model: 'AccessToken', id: stored?.id as string } }, data: { id: tokens.access_token, payload: legacy as object } });
    await db.prisma.setting.deleteMany({ where: { key: 'artifacts.at_rest' } });
    expect(await userinfo(tokens.access_token)).toBe(401);

    expect(await sealStoredArtifacts(db, [TEST_SECRET])).toBe(1);
    expect(await userinfo(tokens.access_token)).toBe(200);
    const rewritten = await db.prisma.oidcArtifact.findMany({ where: { model: 'AccessToken' } });
    expect(rewritten.map((row) => row.id)).toEqual([expect.stringMatching(/^sha256:/)]);
    expect(rewritten[0]?.payload).not.toHaveProperty('jti');
    expect(JSON.stringify(rewritten)).not.toContain(tokens.access_token);
    // Recorded: a second start rewrites nothing and reads no rows.
    expect(await sealStoredArtifacts(db, [TEST_SECRET])).toBe(0);
  });

  it('redeems and rotates the refresh token as before (device codes by user code: test/oidc/device-flow.test.ts)', async () => {
    const refreshed = await refreshTokens(server.issuer, WEB_APP, tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(await userinfo(refreshed.body.access_token)).toBe(200);
    // The old refresh token was rotated and is refused.
    expect((await refreshTokens(server.issuer, WEB_APP, tokens.refresh_token)).status).toBe(400);
  });
});
