// Client secrets at rest: the Client table never holds a clear secret (seeded, registered or
// demo clients); client_secret_basic/post verify against a keyed hash, client_secret_jwt against
// an encrypted secret; both survive SECRETS rotation; the seed stays idempotent.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applySeed, type SeedReport } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { decrypt, DecryptionError } from '../../src/core/secrets.js';
import { encryptV1 } from '../helpers/legacy-secrets.js';
import { basicAuth, postForm } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { machineClient, secretFor } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const NEW_SECRET = 'rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const SEED = {
  clients: [
    machineClient('basic'),
    machineClient('post', { token_endpoint_auth_method: 'client_secret_post' }),
    machineClient('jwt', { token_endpoint_auth_method: 'client_secret_jwt' }),
  ],
};

const basic = (id: string, secret: string) => basicAuth({ id, secret });

describe.each(await flavours())('client secrets at rest on %s', (flavour) => {
  let server: TestGatehouse;

  /** Every Client row as the database holds it, as text. */
  async function rawClientRows(): Promise<string> {
    const rows = await server.gatehouse.db.prisma.$queryRawUnsafe<Record<string, unknown>[]>('SELECT * FROM "Client"');
    return JSON.stringify(rows, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  }

  const storedMetadata = async (id: string) =>
    (await server.gatehouse.db.prisma.client.findUniqueOrThrow({ where: { id } })).metadata as Record<string, unknown>;

  async function seed(file: unknown = SEED, secrets: string[] = [TEST_SECRET]): Promise<SeedReport> {
    const parsed = parseSeedFile(file);
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    return applySeed(server.gatehouse.db, parsed.data, { bcryptCost: 4, clientSecrets: clientSecretSealing(secrets) });
  }

  async function token(target: TestGatehouse, auth: { basic?: [string, string]; post?: [string, string]; assertion?: string; clientId?: string }) {
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    if (auth.post) Object.assign(form, { client_id: auth.post[0], client_secret: auth.post[1] });
    if (auth.assertion) {
      Object.assign(form, { client_id: auth.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: auth.assertion });
    }
    const response = await postForm(`${target.url}/token`, form, auth.basic ? { authorization: basic(...auth.basic) } : {});
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, wwwAuthenticate: response.headers.get('www-authenticate') };
  }

  const assertion = (target: TestGatehouse, clientId: string, secret: string) =>
    new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(`${target.url}/token`)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(secret));

  async function register(body: Record<string, unknown>) {
    const iat = await new server.gatehouse.provider.InitialAccessToken({ expiresIn: 60 }).save();
    const response = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as Record<string, string>;
  }

  const expectInvalidClient = (result: { status: number; body: Record<string, unknown> }) => {
    expect(result.status).toBe(401);
    expect(result.body.error).toBe('invalid_client');
  };

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env: { FEATURE_REGISTRATION: 'true' } });
    await seed();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('stores seeded secrets hashed (basic, post) or encrypted (client_secret_jwt), never in clear', async () => {
    const raw = await rawClientRows();
    for (const client of SEED.clients) expect(raw).not.toContain(client.client_secret as string);
    for (const id of ['basic', 'post']) {
      const metadata = await storedMetadata(id);
      expect(metadata.client_secret).toBeUndefined();
      expect(metadata.client_secret_hash).toMatch(/^hmac-sha256:v1:[\w-]{11}:[\w-]{43}$/);
    }
    const jwt = await storedMetadata('jwt');
    expect(jwt.client_secret).toBeUndefined();
    expect(jwt.client_secret_encrypted).toMatch(/^v2\./);
  });

  it('authenticates client_secret_basic with the right secret and refuses a wrong, truncated or empty one', async () => {
    const ok = await token(server, { basic: ['basic', secretFor('basic')] });
    expect(ok.status).toBe(200);
    expect(ok.body.access_token).toBeTruthy();
    for (const wrong of [secretFor('post'), secretFor('basic').slice(0, -1), secretFor('basic').slice(0, 8), `${secretFor('basic')}x`, '']) {
      const result = await token(server, { basic: ['basic', wrong] });
      expectInvalidClient(result);
      expect(result.wwwAuthenticate).toMatch(/^Basic realm=".*", error="invalid_client"/);
    }
  });

  it('authenticates client_secret_post with the right secret and refuses a wrong, truncated or empty one', async () => {
    expect((await token(server, { post: ['post', secretFor('post')] })).status).toBe(200);
    for (const wrong of [secretFor('basic'), secretFor('post').slice(0, -1), secretFor('post').slice(0, 8), '']) {
      expectInvalidClient(await token(server, { post: ['post', wrong] }));
    }
  });

  it('never accepts the stored hash itself, nor what the engine holds in its place', async () => {
    const hash = (await storedMetadata('basic')).client_secret_hash as string;
    expectInvalidClient(await token(server, { basic: ['basic', hash] }));
    const held = (await server.gatehouse.provider.Client.find('basic'))?.clientSecret as string;
    expect(held).not.toContain(secretFor('basic'));
    expectInvalidClient(await token(server, { basic: ['basic', held] }));
  });

  it('authenticates a client_secret_jwt client with an HS256 assertion made with its secret', async () => {
    const ok = await token(server, { clientId: 'jwt', assertion: await assertion(server, 'jwt', secretFor('jwt')) });
    expect(ok.status).toBe(200);
    expectInvalidClient(await token(server, { clientId: 'jwt', assertion: await assertion(server, 'jwt', secretFor('basic')) }));
  });

  it('stores the demo client hashed', async () => {
    const demo = await startTestGatehouse(flavour, { env: { DEMO: 'true' }, shareWith: server });
    try {
      const { clientSecret, clientId } = demo.gatehouse.demo!;
      expect(await rawClientRows()).not.toContain(clientSecret);
      // Introspection authenticates the client whatever its grant types.
      const introspect = (secret: string) => postForm(`${demo.url}/token/introspection`, { token: 'unknown' }, { authorization: basic(clientId, secret) });
      expect((await introspect(clientSecret)).status).toBe(200);
      expect((await introspect(`${clientSecret}x`)).status).toBe(401);
    } finally {
      await demo.close();
    }
  });

  it('registers a client: the response shows its secret once, the database holds only a hash, reads show none', async () => {
    const registered = await register({ grant_types: ['client_credentials'], response_types: [], client_name: 'Registered' });
    const { client_id: id, client_secret: secret } = registered as { client_id: string; client_secret: string };
    expect(secret).toBeTruthy();
    expect(await rawClientRows()).not.toContain(secret);
    expect((await storedMetadata(id)).client_secret_hash).toMatch(/^hmac-sha256:v1:/);

    expect((await token(server, { basic: [id, secret] })).status).toBe(200);
    expectInvalidClient(await token(server, { basic: [id, secret.slice(0, -1)] }));

    // RFC 7592 read: no secret to return once it is hashed, and no stand-in for it either.
    const auth = { authorization: `Bearer ${registered.registration_access_token}` };
    const read = await fetch(registered.registration_client_uri as string, { headers: auth });
    expect(read.status).toBe(200);
    const current = (await read.json()) as Record<string, unknown>;
    expect(current.client_secret).toBeUndefined();
    expect(JSON.stringify(current)).not.toContain('hmac-sha256');

    // RFC 7592 update keeps the hash: the secret still works, and is still not stored in clear.
    const updated = await fetch(registered.registration_client_uri as string, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${current.registration_access_token as string}` },
      body: JSON.stringify({ client_id: id, grant_types: ['client_credentials'], response_types: [], client_name: 'Renamed' }),
    });
    expect(updated.status).toBe(200);
    const afterUpdate = (await updated.json()) as Record<string, unknown>;
    expect(afterUpdate.client_name).toBe('Renamed');
    expect(afterUpdate.client_secret).toBeUndefined();
    expect(await rawClientRows()).not.toContain(secret);
    expect((await token(server, { basic: [id, secret] })).status).toBe(200);
  });

  it('registers a client_secret_jwt client with its secret encrypted at rest', async () => {
    const registered = await register({ grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_jwt' });
    const { client_id: id, client_secret: secret } = registered as { client_id: string; client_secret: string };
    expect(await rawClientRows()).not.toContain(secret);
    expect((await storedMetadata(id)).client_secret_encrypted).toMatch(/^v2\./);
    expect((await token(server, { clientId: id, assertion: await assertion(server, id, secret) })).status).toBe(200);
  });

  it('reads a secret encrypted in the old format (v1) and seals it again bound to its client', async () => {
    const { client_secret: _clear, ...metadata } = machineClient('old-jwt', { token_endpoint_auth_method: 'client_secret_jwt' });
    const clear = secretFor('old-jwt');
    await server.addClient({ ...metadata, client_secret_encrypted: encryptV1(clear, TEST_SECRET) });
    expect((await token(server, { clientId: 'old-jwt', assertion: await assertion(server, 'old-jwt', clear) })).status).toBe(200);
    const sealed = (await storedMetadata('old-jwt')).client_secret_encrypted as string;
    expect(sealed).toMatch(/^v2\./);
    expect(decrypt(sealed, [TEST_SECRET], 'client-secret:old-jwt').plaintext).toBe(clear);
    expect(() => decrypt(sealed, [TEST_SECRET], 'client-secret:jwt')).toThrow(DecryptionError);
    expect((await token(server, { clientId: 'old-jwt', assertion: await assertion(server, 'old-jwt', clear) })).status).toBe(200);
  });

  it('keeps the seed idempotent, and rewrites a changed or clear secret', async () => {
    const before = await server.gatehouse.db.prisma.client.findMany({ orderBy: { id: 'asc' } });
    expect((await seed()).clients).toEqual({ created: [], updated: [], unchanged: ['basic', 'post', 'jwt'] });
    const after = await server.gatehouse.db.prisma.client.findMany({ orderBy: { id: 'asc' } });
    expect(after).toEqual(before);

    // A row written in clear before secrets were sealed is rewritten by the next seed run.
    await server.addClient(machineClient('legacy'));
    expect(await rawClientRows()).toContain(secretFor('legacy'));
    const file = { clients: [...SEED.clients, machineClient('legacy')] };
    expect((await seed(file)).clients).toEqual({ created: [], updated: ['legacy'], unchanged: ['basic', 'post', 'jwt'] });
    expect(await rawClientRows()).not.toContain(secretFor('legacy'));
    expect((await token(server, { basic: ['legacy', secretFor('legacy')] })).status).toBe(200);

    // A new secret in the file replaces the old one.
    const changed = { clients: [machineClient('legacy', { client_secret: secretFor('changed') })] };
    expect((await seed(changed)).clients).toEqual({ created: [], updated: ['legacy'], unchanged: [] });
    expect((await token(server, { basic: ['legacy', secretFor('changed')] })).status).toBe(200);
    expectInvalidClient(await token(server, { basic: ['legacy', secretFor('legacy')] }));
  });

  it('verifies across SECRETS rotation and moves hashes and encryptions to the newest secret', async () => {
    const rotated = await startTestGatehouse(flavour, { env: { SECRETS: `${NEW_SECRET},${TEST_SECRET}` }, shareWith: server });
    try {
      const oldHash = (await storedMetadata('post')).client_secret_hash as string;
      const oldSealed = (await storedMetadata('jwt')).client_secret_encrypted as string;

      expectInvalidClient(await token(rotated, { post: ['post', secretFor('basic')] }));
      expect((await storedMetadata('post')).client_secret_hash).toBe(oldHash); // a failure changes nothing
      expect((await token(rotated, { post: ['post', secretFor('post')] })).status).toBe(200);
      const newHash = (await storedMetadata('post')).client_secret_hash as string;
      expect(newHash).toMatch(/^hmac-sha256:v1:/);
      expect(newHash.split(':')[2]).not.toBe(oldHash.split(':')[2]); // another key fingerprint
      expect((await token(rotated, { post: ['post', secretFor('post')] })).status).toBe(200);
      expectInvalidClient(await token(rotated, { post: ['post', secretFor('post').slice(0, -1)] }));

      expect((await token(rotated, { clientId: 'jwt', assertion: await assertion(rotated, 'jwt', secretFor('jwt')) })).status).toBe(200);
      expect((await storedMetadata('jwt')).client_secret_encrypted).not.toBe(oldSealed);
      expect(await rawClientRows()).not.toContain(secretFor('jwt'));

      // The seed under the rotated SECRETS re-hashes what use has not (basic), then is idempotent.
      expect((await seed(SEED, [NEW_SECRET, TEST_SECRET])).clients).toEqual({ created: [], updated: ['basic'], unchanged: ['post', 'jwt'] });
      expect((await seed(SEED, [NEW_SECRET, TEST_SECRET])).clients.unchanged).toEqual(['basic', 'post', 'jwt']);
      expect((await token(rotated, { basic: ['basic', secretFor('basic')] })).status).toBe(200);
    } finally {
      await rotated.close();
    }
  });
});
