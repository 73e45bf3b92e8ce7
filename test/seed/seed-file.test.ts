// Seeding clients and users: validation names every problem, writes are idempotent and
// atomic, passwords are only ever bcrypt hashes, and the `prisma db seed` entry point answers
// with the documented exit codes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile, type SeedFile } from '../../src/seed/schema.js';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { runSeedScript } from '../helpers/commands.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { ALICE, BOB, webApp } from '../helpers/fixtures.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';

const BCRYPT_COST = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const BCRYPT_HASH = /^\$2[aby]\$04\$[./A-Za-z0-9]{53}$/;

/** The web app as an operator's seed file names it, every field spelled out. */
const WEB_CLIENT = webApp({ redirect_uris: ['http://localhost:8080/callback'], post_logout_redirect_uris: ['http://localhost:8080/'] });
const SPA_CLIENT = { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:5173/callback'] };
/** WEB_CLIENT as stored: its secret only as a keyed hash (client-secrets.test.ts proves the rest). */
const { client_secret: _webSecret, ...WEB_CLIENT_FIELDS } = WEB_CLIENT;
const STORED_WEB_CLIENT = { ...WEB_CLIENT_FIELDS, client_secret_hash: expect.stringMatching(/^hmac-sha256:v1:/) };
const CLIENT_SECRETS = clientSecretSealing(['seed-test-secret-0123456789-abcdefghijklmnop']);
/** Alice as a seed file names her: every profile field, and her email in another letter case. */
const ALICE_ENTRY = { ...ALICE, email: 'Alice@Example.com', given_name: 'Alice', family_name: 'Liddell', email_verified: true };

interface SeedJson {
  clients: Array<Record<string, unknown>>;
  users: Array<Record<string, unknown>>;
}

/** A fresh copy each time, so a test can change it freely. */
const validFile = (): SeedJson => structuredClone({ clients: [WEB_CLIENT, SPA_CLIENT], users: [ALICE_ENTRY, BOB] });

/** Several bad entries next to valid ones, and the problems they must produce, in order. */
const invalidFile = () =>
  structuredClone({
    clients: [
      WEB_CLIENT,
      { client_id: 'bad client', redirect_uris: ['https://app.example/cb#x'], token_endpoint_auth_method: 'none', client_secret: 'x'.repeat(40) },
      { client_id: 'other', redirect_uris: ['http://localhost:3000/cb'], colour: 'blue' },
      { client_id: 'web-app', token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:9/cb'], grant_types: ['password'] },
    ],
    users: [ALICE_ENTRY, { email: 'not-an-email', password: 'short' }, { email: 'ALICE@example.com', password: 'long enough', picture: 'ftp://x' }, { name: 'Nobody' }],
    extra: true,
  });
const INVALID_FILE_PROBLEMS = [
  'extra: unknown field (a seed file has only "clients", "groups", "users", "resources", "identity_providers" and "invitations")',
  'clients[1].client_id: must be 1–128 characters of A-Z a-z 0-9 . _ ~ -',
  'clients[1].redirect_uris[0]: must be an absolute http(s) URL without a fragment',
  'clients[1].client_secret: must be absent when token_endpoint_auth_method is none (a public client has no secret)',
  'clients[2].colour: unknown field',
  'clients[2].client_secret: is required when token_endpoint_auth_method is client_secret_basic (the default); use "none" for a public client',
  'clients[3].grant_types[0]: must be one of authorization_code, refresh_token, client_credentials, implicit, urn:ietf:params:oauth:grant-type:device_code',
  'clients[3].client_id: duplicates clients[0].client_id',
  'users[1].email: must be an email address',
  'users[1].password: must be at least 10 characters',
  'users[2].picture: must be an absolute http(s) URL',
  'users[2].email: duplicates users[0].email',
  'users[3].email: is required',
  'users[3].password: is required',
];

function parsed(json: unknown): SeedFile {
  const result = parseSeedFile(json);
  if (!result.ok) throw new Error(`expected a valid seed file:\n${result.problems.join('\n')}`);
  return result.data;
}

function problemsOf(json: unknown): string[] {
  const result = parseSeedFile(json);
  if (result.ok) throw new Error('expected the seed file to be rejected');
  return result.problems;
}

describe('parseSeedFile', () => {
  it('reports every problem at once, each by entry index and field', () => {
    expect(problemsOf(invalidFile())).toEqual(INVALID_FILE_PROBLEMS);
  });

  it('defaults both lists and email_verified, lower-cases emails and keeps only the client keys given', () => {
    expect(parsed({})).toEqual({ clients: [], groups: [], users: [], resources: [], identity_providers: [], invitations: [] });
    const data = parsed({ clients: [SPA_CLIENT], users: [{ email: ' Bob@Example.COM ', password: 'bobs other password' }] });
    expect(data.clients[0]).toStrictEqual(SPA_CLIENT);
    expect(data.users[0]).toStrictEqual({ email: 'bob@example.com', password: 'bobs other password', email_verified: false });
  });

  it('ties the client secret to the authentication method', () => {
    const client = (extra: object) => ({ clients: [{ client_id: 'c', redirect_uris: ['https://app.example/cb'], ...extra }] });
    const secret = 'y'.repeat(32);
    expect(parseSeedFile(client({ client_secret: secret })).ok).toBe(true);
    expect(parseSeedFile(client({ token_endpoint_auth_method: 'none' })).ok).toBe(true);
    expect(parseSeedFile(client({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example/jwks' })).ok).toBe(true);
    expect(problemsOf(client({ token_endpoint_auth_method: 'client_secret_post' }))).toEqual([
      'clients[0].client_secret: is required when token_endpoint_auth_method is client_secret_post; use "none" for a public client',
    ]);
    expect(problemsOf(client({ client_secret: 'y'.repeat(31) }))).toEqual(['clients[0].client_secret: must be at least 32 characters']);
    expect(problemsOf(client({ token_endpoint_auth_method: 'private_key_jwt' }))).toEqual([
      'clients[0].jwks_uri: is required (or jwks) when token_endpoint_auth_method is private_key_jwt',
    ]);
  });

  it('rejects what is not a seed file', () => {
    expect(problemsOf([])).toEqual(['(file): must be a JSON object with "clients", "groups", "users", "resources", "identity_providers" and/or "invitations"']);
    expect(problemsOf({ clients: {} })).toEqual(['clients: must be an array of clients']);
    expect(problemsOf({ clients: [{ client_id: 'c', redirect_uris: [], client_secret: 'y'.repeat(32) }] })).toEqual([
      'clients[0].redirect_uris: must list at least one absolute http(s) URL',
    ]);
  });
});

describe.each(await flavours())('applySeed on %s', (flavour) => {
  let db: MigratedDb;
  beforeEach(async () => (db = await migratedDb(flavour)));
  afterEach(async () => db?.drop());

  const seed = (file: unknown) => applySeed(db, parsed(file), { bcryptCost: BCRYPT_COST, clientSecrets: CLIENT_SECRETS });
  const user = (email: string) => db.prisma.user.findUniqueOrThrow({ where: { email } });
  const client = (id: string) => db.prisma.client.findUniqueOrThrow({ where: { id } });
  const counts = async () => ({ clients: await db.prisma.client.count(), users: await db.prisma.user.count() });

  it('creates every client and user from a valid file', async () => {
    const report = await seed(validFile());
    expect(report).toEqual({
      clients: { created: ['web-app', 'spa'], updated: [], unchanged: [] },
      groups: { created: [], updated: [], unchanged: [] },
      users: { created: ['alice@example.com', 'bob@example.com'], updated: [], unchanged: [] },
      resources: { created: [], updated: [], unchanged: [] },
      identityProviders: { created: [], updated: [], unchanged: [] },
      invitations: { created: [], updated: [], unchanged: [] },
      memberships: [],
    });
    expect((await client('web-app')).metadata).toEqual(STORED_WEB_CLIENT);
    expect((await client('spa')).metadata).toEqual(SPA_CLIENT);
    expect(await user('alice@example.com')).toMatchObject({
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Liddell',
      givenName: 'Alice',
      familyName: 'Liddell',
      preferredUsername: null,
      disabled: false,
    });
    expect(await user('bob@example.com')).toMatchObject({ emailVerified: false, name: null });
  });

  it('stores passwords only as bcrypt hashes', async () => {
    await seed(validFile());
    for (const { email, password } of [ALICE_ENTRY, BOB]) {
      const row = await user(email.toLowerCase());
      expect(row.passwordHash).toMatch(BCRYPT_HASH);
      expect(await bcrypt.compare(password, row.passwordHash ?? '')).toBe(true);
      // The clear text is in no column of the row.
      expect(Object.values(row).filter((value) => typeof value === 'string' && value.includes(password))).toEqual([]);
    }
  });

  it('gives users opaque ids that are not derived from the email', async () => {
    await seed(validFile());
    const first = await user('alice@example.com');
    expect(first.id).toMatch(UUID);
    expect(first.id).not.toContain('alice');
    // Same email, new user: a new id, so the id is not a function of the email.
    await db.prisma.user.delete({ where: { id: first.id } });
    await seed(validFile());
    expect((await user('alice@example.com')).id).not.toBe(first.id);
  });

  it('is idempotent: a second run changes nothing', async () => {
    await seed(validFile());
    const before = { alice: await user('alice@example.com'), bob: await user('bob@example.com'), web: await client('web-app') };
    const report = await seed(validFile());
    expect(report).toEqual({
      clients: { created: [], updated: [], unchanged: ['web-app', 'spa'] },
      groups: { created: [], updated: [], unchanged: [] },
      users: { created: [], updated: [], unchanged: ['alice@example.com', 'bob@example.com'] },
      resources: { created: [], updated: [], unchanged: [] },
      identityProviders: { created: [], updated: [], unchanged: [] },
      invitations: { created: [], updated: [], unchanged: [] },
      memberships: [],
    });
    expect(await counts()).toEqual({ clients: 2, users: 2 });
    // Not rewritten at all: same id, same hash, same updatedAt.
    expect(await user('alice@example.com')).toEqual(before.alice);
    expect(await user('bob@example.com')).toEqual(before.bob);
    expect(await client('web-app')).toEqual(before.web);
  });

  it('updates only the entries whose fields changed', async () => {
    await seed(validFile());
    const before = { alice: await user('alice@example.com'), bob: await user('bob@example.com'), spa: await client('spa') };
    const file = validFile();
    file.users[0]!.name = 'Alice Pleasance Liddell';
    file.clients[0]!.redirect_uris = ['http://localhost:8080/callback', 'http://localhost:8080/other'];
    const report = await seed(file);
    expect(report).toEqual({
      clients: { created: [], updated: ['web-app'], unchanged: ['spa'] },
      groups: { created: [], updated: [], unchanged: [] },
      users: { created: [], updated: ['alice@example.com'], unchanged: ['bob@example.com'] },
      resources: { created: [], updated: [], unchanged: [] },
      identityProviders: { created: [], updated: [], unchanged: [] },
      invitations: { created: [], updated: [], unchanged: [] },
      memberships: [],
    });
    const alice = await user('alice@example.com');
    expect(alice).toEqual({ ...before.alice, name: 'Alice Pleasance Liddell', updatedAt: alice.updatedAt });
    expect((await client('web-app')).metadata).toEqual({ ...STORED_WEB_CLIENT, redirect_uris: file.clients[0]!.redirect_uris });
    expect(await user('bob@example.com')).toEqual(before.bob);
    expect(await client('spa')).toEqual(before.spa);
    expect(await counts()).toEqual({ clients: 2, users: 2 });
  });

  it('replaces the hash when the password changed, and the new password verifies', async () => {
    await seed(validFile());
    const before = await user('alice@example.com');
    const file = validFile();
    file.users[0]!.password = 'a brand new password';
    const report = await seed(file);
    expect(report.users).toEqual({ created: [], updated: ['alice@example.com'], unchanged: ['bob@example.com'] });
    const after = await user('alice@example.com');
    expect(after.id).toBe(before.id);
    expect(after.passwordHash).toMatch(BCRYPT_HASH);
    expect(after.passwordHash).not.toBe(before.passwordHash);
    expect(await bcrypt.compare('a brand new password', after.passwordHash ?? '')).toBe(true);
    expect(await bcrypt.compare(ALICE_ENTRY.password, after.passwordHash ?? '')).toBe(false);
    // And the next run with the same new password leaves that hash alone.
    expect((await seed(file)).users.unchanged).toEqual(['alice@example.com', 'bob@example.com']);
    expect((await user('alice@example.com')).passwordHash).toBe(after.passwordHash);
  });

  it('writes nothing from an invalid file', async () => {
    await seed({ clients: [SPA_CLIENT], users: [BOB] });
    const before = await counts();
    const result = parseSeedFile(invalidFile());
    expect(result.ok).toBe(false);
    expect(await counts()).toEqual(before);
    await expect(db.prisma.client.findUnique({ where: { id: 'web-app' } })).resolves.toBeNull();
  });

  it('rolls back every write when one fails part-way', async () => {
    await seed({ clients: [SPA_CLIENT], users: [BOB] });
    const before = await counts();
    // Bypasses parseSeedFile's duplicate check, so the second create of "web-app" violates the
    // primary key after the first client and the changed SPA were already written.
    const data = parsed(validFile());
    data.clients[1] = { ...data.clients[1]!, client_name: 'Changed' };
    data.clients.push({ ...data.clients[0]! });
    await expect(applySeed(db, data, { bcryptCost: BCRYPT_COST, clientSecrets: CLIENT_SECRETS })).rejects.toThrow();
    expect(await counts()).toEqual(before);
    await expect(db.prisma.client.findUnique({ where: { id: 'web-app' } })).resolves.toBeNull();
    expect((await client('spa')).metadata).toEqual(SPA_CLIENT);
  });
});

describe('prisma/seed.ts, the `prisma db seed` entry point', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-seed-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function runSeed(file: unknown) {
    const seedFile = join(dir, 'seed.json');
    writeFileSync(seedFile, typeof file === 'string' ? file : JSON.stringify(file));
    return runSeedScript({ DATABASE_URL: `file:${join(dir, 'gatehouse.db')}`, SEED_FILE: seedFile, SECRETS: TEST_SECRET, BCRYPT_COST: String(BCRYPT_COST) });
  }

  it('exits 0 with a summary for a valid file, on a fresh database', async () => {
    const result = await runSeed(validFile());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('clients: 2 created (web-app, spa), 0 updated, 0 unchanged');
    expect(result.stdout).toContain('users: 2 created (alice@example.com, bob@example.com), 0 updated, 0 unchanged');
  });

  it('exits 1 listing every problem, and writes nothing, for an invalid file', async () => {
    expect((await runSeed({ clients: [SPA_CLIENT], users: [BOB] })).code).toBe(0);
    const result = await runSeed(invalidFile());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    for (const problem of INVALID_FILE_PROBLEMS) expect(result.stderr).toContain(`  - ${problem}\n`);
    // The valid entries of the invalid file were not written either.
    const db = await createDb({ flavour: 'sqlite', url: `file:${join(dir, 'gatehouse.db')}` });
    try {
      expect(await db.prisma.client.findMany({ select: { id: true } })).toEqual([{ id: 'spa' }]);
      expect(await db.prisma.user.findMany({ select: { email: true } })).toEqual([{ email: 'bob@example.com' }]);
    } finally {
      await db.close();
    }
  });

  it('exits 1 with a readable message for a file that is not JSON', async () => {
    const result = await runSeed('{ "clients": [');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Seed file .*seed\.json is not valid JSON: /);
  });
});
