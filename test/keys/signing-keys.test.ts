// Signing keys: generated once, stored encrypted with SECRETS, shared by every instance on the
// same database, and still readable after SECRETS rotates.
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { loadSigningKeys } from '../../src/keys/signing-keys.js';
import { decrypt, DecryptionError } from '../../src/core/secrets.js';
import { Browser, findForm } from '../helpers/browser.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { encryptV1 } from '../helpers/legacy-secrets.js';

const OLD_SECRET = 'old-secret-0123456789-0123456789-0123456789';
const NEW_SECRET = 'new-secret-0123456789-0123456789-0123456789';

describe.each(await flavours())('signing keys on %s', (flavour) => {
  let database: TestDatabase;
  let db: Db;

  beforeEach(async () => {
    database = await createTestDatabase(flavour);
    await migrate(database.config);
    db = await createDb(database.config);
  });
  afterEach(async () => {
    await db.close();
    await database.drop();
  });

  it('creates one RS256 and one ES256 key on first start, and reuses them afterwards', async () => {
    const first = await loadSigningKeys(db, [OLD_SECRET]);
    expect(first.jwks.keys.map((k) => k.alg)).toEqual(['RS256', 'ES256']);
    expect(first.created).toHaveLength(2);
    const second = await loadSigningKeys(db, [OLD_SECRET]);
    expect(second.created).toHaveLength(0);
    expect(second.jwks.keys.map((k) => k.kid)).toEqual(first.jwks.keys.map((k) => k.kid));
  });

  it('never stores a private key in clear', async () => {
    const { jwks } = await loadSigningKeys(db, [OLD_SECRET]);
    const rows = await db.prisma.signingKey.findMany();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.publicJwk).not.toHaveProperty('d');
      expect(row.privateJwkEncrypted).toMatch(/^v2\./);
      const privateKey = jwks.keys.find((k) => k.kid === row.id);
      expect(privateKey?.d).toBeTruthy();
      expect(row.privateJwkEncrypted).not.toContain(privateKey?.d as string);
    }
  });

  it('lets instances starting at the same moment agree on one key per algorithm', async () => {
    const other = await createDb(database.config);
    try {
      const [a, b] = await Promise.all([loadSigningKeys(db, [OLD_SECRET]), loadSigningKeys(other, [OLD_SECRET])]);
      expect(a.jwks.keys.map((k) => k.kid)).toEqual(b.jwks.keys.map((k) => k.kid));
      expect(await db.prisma.signingKey.count()).toBe(2);
    } finally {
      await other.close();
    }
  });

  it('refuses to start with secrets that cannot decrypt the keys, and says why', async () => {
    await loadSigningKeys(db, [OLD_SECRET]);
    await expect(loadSigningKeys(db, [NEW_SECRET])).rejects.toThrow(DecryptionError);
    await expect(loadSigningKeys(db, [NEW_SECRET])).rejects.toThrow(/no longer in SECRETS/);
  });

  it('refuses private keys swapped between rows: each is bound to its kid', async () => {
    await loadSigningKeys(db, [OLD_SECRET]);
    const [a, b] = await db.prisma.signingKey.findMany();
    await db.prisma.signingKey.update({ where: { id: a!.id }, data: { privateJwkEncrypted: b!.privateJwkEncrypted } });
    await db.prisma.signingKey.update({ where: { id: b!.id }, data: { privateJwkEncrypted: a!.privateJwkEncrypted } });
    await expect(loadSigningKeys(db, [OLD_SECRET])).rejects.toThrow(DecryptionError);
    await expect(loadSigningKeys(db, [OLD_SECRET])).rejects.toThrow(/copied from another row or purpose/);
  });

  it('reads private keys stored in the old format (v1) and seals them again bound to their kid', async () => {
    const before = await loadSigningKeys(db, [OLD_SECRET]);
    for (const row of await db.prisma.signingKey.findMany()) {
      const clear = decrypt(row.privateJwkEncrypted, [OLD_SECRET], `signing-key:${row.id}`).plaintext;
      await db.prisma.signingKey.update({ where: { id: row.id }, data: { privateJwkEncrypted: encryptV1(clear, OLD_SECRET) } });
    }
    const after = await loadSigningKeys(db, [OLD_SECRET]);
    expect(after.jwks.keys).toEqual(before.jwks.keys);
    for (const row of await db.prisma.signingKey.findMany()) {
      expect(row.privateJwkEncrypted).toMatch(/^v2\./);
      expect(decrypt(row.privateJwkEncrypted, [OLD_SECRET], `signing-key:${row.id}`).rotated).toBe(false);
    }
  });

  it('re-encrypts keys with the newest secret when SECRETS is rotated', async () => {
    const before = await loadSigningKeys(db, [OLD_SECRET]);
    const rotated = await loadSigningKeys(db, [NEW_SECRET, OLD_SECRET]);
    expect(rotated.jwks.keys).toEqual(before.jwks.keys);
    // The old secret can now be dropped.
    const after = await loadSigningKeys(db, [NEW_SECRET]);
    expect(after.jwks.keys).toEqual(before.jwks.keys);
  });
});

describe.each(await flavours())('two instances sharing one %s database', (flavour) => {
  let a: TestGatehouse;
  let b: TestGatehouse;
  const APP = 'http://app.test';
  const CLIENT = { id: 'web-app', secret: 'web-app-secret-0123456789-0123456789-abcdef' };

  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('publish the same JWKS, and a sign-in on one is redeemed and verified on the other', async () => {
    a = await startTestGatehouse(flavour);
    // Both instances serve one issuer, as they would behind a load balancer.
    b = await startTestGatehouse(flavour, { ISSUER: a.issuer }, a);
    await a.addClient({
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: [`${APP}/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    });
    const email = 'bob@example.com';
    const password = 'a long enough password';
    const sub = await a.addUser({ email, password });

    const jwksA = (await (await fetch(`${a.url}/jwks`)).json()) as JSONWebKeySet;
    const jwksB = (await (await fetch(`${b.url}/jwks`)).json()) as JSONWebKeySet;
    expect(jwksA).toEqual(jwksB);
    expect(jwksA.keys).toHaveLength(2);
    for (const key of jwksA.keys) expect(key).not.toHaveProperty('d');

    // Sign in on A.
    const configA = await oidc.discovery(new URL(a.issuer), CLIENT.id, CLIENT.secret, oidc.ClientSecretBasic(CLIENT.secret), {
      execute: [oidc.allowInsecureRequests],
    });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(configA, {
      redirect_uri: `${APP}/callback`,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser(a.issuer);
    const login = findForm((await browser.visit(url.href)).html, '/login');
    const consent = await browser.visit(login.action, { form: { ...login.fields, email, password } });
    const confirm = findForm(consent.html, '/confirm');
    const callback = (await browser.visit(confirm.action, { form: confirm.fields })).redirectedTo as URL;
    expect(callback.searchParams.get('code')).toBeTruthy();

    // Redeem the code on B.
    const response = await fetch(`${b.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: callback.searchParams.get('code') as string,
        redirect_uri: `${APP}/callback`,
        code_verifier: verifier,
      }),
    });
    expect(response.status).toBe(200);
    const tokens = (await response.json()) as { id_token: string };
    const { kid } = decodeProtectedHeader(tokens.id_token);
    expect(jwksA.keys.map((k) => k.kid)).toContain(kid);
    const { payload } = await jwtVerify(tokens.id_token, createLocalJWKSet(jwksB), { audience: CLIENT.id, issuer: a.issuer });
    expect(payload.sub).toBe(sub);
  });
});
