// Signing keys: generated once, stored encrypted with SECRETS, shared by every instance on the
// same database, and still readable after SECRETS rotates.
import { generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { loadSigningKeys } from '../../src/keys/signing-keys.js';
import { decrypt, DecryptionError } from '../../src/core/secrets.js';
import { Browser } from '../helpers/browser.js';
import { redeemCode, signInForCode } from '../helpers/code-flow.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { BOB, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { encryptV1 } from '../helpers/legacy-secrets.js';

const OLD_SECRET = 'old-secret-0123456789-0123456789-0123456789';
const NEW_SECRET = 'new-secret-0123456789-0123456789-0123456789';

describe.each(await flavours())('signing keys on %s', (flavour) => {
  let db: MigratedDb;
  beforeEach(async () => (db = await migratedDb(flavour)));
  afterEach(async () => db?.drop());

  it('creates one RS256 and one ES256 key on first start, and reuses them afterwards', async () => {
    const first = await loadSigningKeys(db, [OLD_SECRET]);
    expect(first.jwks.keys.map((k) => k.alg)).toEqual(['RS256', 'ES256']);
    expect(first.created).toHaveLength(2);
    const second = await loadSigningKeys(db, [OLD_SECRET]);
    expect(second.created).toHaveLength(0);
    expect(second.jwks.keys.map((k) => k.kid)).toEqual(first.jwks.keys.map((k) => k.kid));
  });

  it('makes its keys as JWKs from the generation itself, never exporting a fresh KeyObject (on Node 20 that can deadlock against garbage collection)', async () => {
    const sample = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const exported = [vi.spyOn(Object.getPrototypeOf(sample.publicKey) as { export(): unknown }, 'export'), vi.spyOn(Object.getPrototypeOf(sample.privateKey) as { export(): unknown }, 'export')];
    try {
      const { jwks, created } = await loadSigningKeys(db, [OLD_SECRET]);
      expect(created).toHaveLength(2);
      for (const spy of exported) expect(spy).not.toHaveBeenCalled();
      const rs256 = jwks.keys.find((key) => key.alg === 'RS256');
      const es256 = jwks.keys.find((key) => key.alg === 'ES256');
      expect(rs256).toMatchObject({ kty: 'RSA', e: 'AQAB', use: 'sig', kid: expect.stringMatching(/^rs256-/) as string });
      expect(es256).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'sig', kid: expect.stringMatching(/^es256-/) as string });
      for (const key of [rs256, es256]) expect(key?.d).toBeTruthy();
    } finally {
      for (const spy of exported) spy.mockRestore();
    }
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
    const other = await createDb(db);
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
  afterAll(async () => a?.close());

  it('publish the same JWKS, and a sign-in on one is redeemed and verified on the other', async () => {
    a = await startTestGatehouse(flavour, { clients: [webApp()], people: [BOB] });
    // Both instances serve one issuer, as they would behind a load balancer.
    b = await startTestGatehouse(flavour, { env: { ISSUER: a.issuer }, shareWith: a });

    const jwksA = (await (await fetch(`${a.url}/jwks`)).json()) as JSONWebKeySet;
    const jwksB = (await (await fetch(`${b.url}/jwks`)).json()) as JSONWebKeySet;
    expect(jwksA).toEqual(jwksB);
    expect(jwksA.keys).toHaveLength(2);
    for (const key of jwksA.keys) expect(key).not.toHaveProperty('d');

    // Sign in on A, redeem the code on B.
    const { code, verifier } = await signInForCode(new Browser(a.issuer), a.issuer, WEB_APP, BOB, 'openid');
    const response = await redeemCode(b.url, WEB_APP, code, verifier);
    expect(response.status).toBe(200);
    const idToken = response.body.id_token as string;
    const { kid } = decodeProtectedHeader(idToken);
    expect(jwksA.keys.map((k) => k.kid)).toContain(kid);
    const { payload } = await jwtVerify(idToken, createLocalJWKSet(jwksB), { audience: WEB_APP.id, issuer: a.issuer });
    expect(payload.sub).toBe(a.idOf(BOB));
  });
});
