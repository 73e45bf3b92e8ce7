// Moving from another identity server: bcrypt and argon2id hashes made elsewhere (here, with other
// parameters than ours) are accepted by the admin API, the command line and the seed file, checked
// strictly, and replaced by our bcrypt at the person's next sign-in through the real sign-in page.
import { hash as argon2Hash } from '@node-rs/argon2';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientSecretSealing } from '../../src/clients/secrets.js';
import { passwordMatches } from '../../src/people/accounts.js';
import { lockoutOf } from '../../src/people/lockouts.js';
import { needsRehash, passwordHashProblem, PASSWORD_HASH, verifyPasswordHash } from '../../src/people/password-hashes.js';
import { createUserStore } from '../../src/people/store.js';
import { applySeed } from '../../src/seed/apply.js';
import { parseSeedFile } from '../../src/seed/schema.js';
import { Browser, findForm } from '../helpers/browser.js';
import { authorizePath, tokenRequest } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { credentialsOf, machineClient, newPerson, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { startServices, type Services } from '../helpers/services.js';

/** argon2id as another server might have made it: not our parameters, a 12-byte salt, a 24-byte output. */
const ARGON2ID_ELSEWHERE = { algorithm: 2, memoryCost: 8192, timeCost: 2, parallelism: 2, outputLen: 24, salt: Buffer.from('elsewhere-12') } as const;
const argon2id = (password: string) => argon2Hash(password, ARGON2ID_ELSEWHERE);
/** bcrypt as PHP writes it ($2y$), at another cost than ours. */
const bcryptElsewhere = async (password: string, cost = 6) => (await bcrypt.hash(password, cost)).replace(/^\$2b\$/, '$2y$');
const OUR_BCRYPT = /^\$2b\$05\$[./A-Za-z0-9]{53}$/;

describe('which imported hashes are accepted', () => {
  const salt = 'c29tZXNhbHRzb21lc2FsdA'; // 16 bytes
  const out = 'YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo'; // 26 bytes
  const phc = (params: string, version = 'v=19', kind = 'argon2id') => `$${kind}$${version}$${params}$${salt}$${out}`;

  it.each([
    ['bcrypt $2a$', async () => (await bcrypt.hash('x', 4)).replace('$2b$', '$2a$')],
    ['bcrypt $2b$ at cost 15', async () => `$2b$15$${(await bcrypt.hash('x', 4)).slice(7)}`],
    ['bcrypt $2y$', () => bcryptElsewhere('x', 4)],
    ['argon2id', () => argon2id('x')],
    ['argon2id at the caps', async () => phc('m=131072,t=10,p=16')],
  ])('accepts %s', async (_name, make) => {
    const hash = await make();
    expect(passwordHashProblem(hash)).toBeNull();
    expect(PASSWORD_HASH.safeParse(hash).success).toBe(true);
  });

  it.each([
    ['plain text', 'correct horse battery staple', /must be a bcrypt .* or argon2id/],
    ['md5-crypt', '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/', /must be a bcrypt .* or argon2id/],
    ['a truncated bcrypt hash', '$2b$10$abcdefghijklmnopqrstuv', /not a well-formed bcrypt hash/],
    ['bcrypt $2x$', `$2x$10$${'a'.repeat(53)}`, /not a well-formed bcrypt hash/],
    ['bcrypt at cost 16', `$2b$16$${'a'.repeat(53)}`, /cost must be from 4 to 15 \(this one is 16\)/],
    ['bcrypt at cost 31', `$2b$31$${'a'.repeat(53)}`, /cost must be from 4 to 15/],
    ['bcrypt at cost 3', `$2b$03$${'a'.repeat(53)}`, /cost must be from 4 to 15/],
    ['argon2i', phc('m=19456,t=2,p=1', 'v=19', 'argon2i'), /only argon2id/],
    ['argon2d', phc('m=19456,t=2,p=1', 'v=19', 'argon2d'), /only argon2id/],
    ['argon2id version 16', phc('m=19456,t=2,p=1', 'v=16'), /version must be 19/],
    ['argon2id without a version', `$argon2id$m=19456,t=2,p=1$${salt}$${out}`, /not a well-formed argon2id/],
    ['argon2id with parameters out of order', phc('t=2,m=19456,p=1'), /not a well-formed argon2id/],
    ['argon2id with 1 GiB of memory', phc('m=1048576,t=2,p=1'), /memory \(m\) must be from 8×p to 131072 KiB/],
    ['argon2id with less memory than 8×p', phc('m=16,t=1,p=4'), /memory \(m\)/],
    ['argon2id with 11 passes', phc('m=19456,t=11,p=1'), /passes \(t\) must be from 1 to 10/],
    ['argon2id with 0 passes', phc('m=19456,t=0,p=1'), /passes \(t\)/],
    ['argon2id with 17 lanes', phc('m=19456,t=2,p=17'), /parallelism \(p\) must be from 1 to 16/],
    ['argon2id with a 4-byte salt', `$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$${out}`, /salt must be 8 to 64 bytes/],
    ['argon2id with padded base64', `$argon2id$v=19$m=19456,t=2,p=1$${salt}==$${out}`, /not a well-formed argon2id/],
    ['argon2id with an 8-byte output', `$argon2id$v=19$m=19456,t=2,p=1$${salt}$YWJjZGVmZ2g`, /hash must be 16 to 64 bytes/],
    ['argon2id with a key id', `$argon2id$v=19$m=19456,t=2,p=1,keyid=abc$${salt}$${out}`, /not a well-formed argon2id/],
  ])('refuses %s, saying why', (_name, hash, why) => {
    expect(passwordHashProblem(hash)).toMatch(why);
    const parsed = PASSWORD_HASH.safeParse(hash);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(why);
  });

  it('checks passwords against both schemes, and never against a hash it would refuse', async () => {
    const [bcryptHash, argon2Hash_] = await Promise.all([bcryptElsewhere('the password'), argon2id('the password')]);
    for (const hash of [bcryptHash, argon2Hash_]) {
      expect(await verifyPasswordHash('the password', hash)).toBe(true);
      expect(await verifyPasswordHash('not the password', hash)).toBe(false);
      // The account page's "not the same password again" check understands them too.
      expect(await passwordMatches('the password', hash)).toBe(true);
      expect(needsRehash(hash, 5)).toBe(true);
    }
    const hostile = await argon2Hash('the password', { ...ARGON2ID_ELSEWHERE, timeCost: 11, memoryCost: 64 });
    expect(await verifyPasswordHash('the password', hostile)).toBe(false);
    expect(needsRehash(await bcrypt.hash('x', 5), 5)).toBe(false);
    expect(needsRehash(await bcrypt.hash('x', 6), 5)).toBe(true);
  });
});

const ADMIN = credentialsOf('migration-tool');

describe.each(await flavours())('imported password hashes on %s', (flavour) => {
  let server: TestGatehouse;
  let token: string;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, {
      env: { BCRYPT_COST: '5', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '5', SIGN_IN_DELAY_STEP_MS: '0' },
      clients: [webApp(), machineClient(ADMIN.id, { scope: 'admin' })],
    });
    token = (await tokenRequest(server.url, ADMIN, { grant_type: 'client_credentials', scope: 'admin' })).body.access_token as string;
  });
  afterAll(async () => server?.close());

  const storedHash = async (email: string) => (await createUserStore(server.gatehouse.db).findByEmail(email))?.passwordHash;
  const rehashEvents = (accountId: string) => server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId, type: 'user.password_rehashed' } });

  async function signIn(email: string, password: string): Promise<number> {
    const browser = new Browser(server.issuer);
    const form = findForm((await browser.visit(authorizePath())).html, '/login');
    const response = await browser.request(form.action, { form: { ...form.fields, email, password } });
    await response.text();
    return response.status;
  }

  async function admin(method: 'POST', path: string, body: unknown) {
    const response = await fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  /** The person signs in with their old password: accepted, and the stored hash becomes our bcrypt, audited. */
  async function expectUpgradeAtSignIn(id: string, email: string, password: string, from: string) {
    const imported = await storedHash(email);
    const failures = async () => (await lockoutOf({ db: server.gatehouse.db, bruteForce: server.config.bruteForce }, id)).password.failures;
    const counted = await failures();
    expect(await signIn(email, WRONG_PASSWORD)).toBe(401);
    expect(await storedHash(email)).toBe(imported);
    // Counted by the limiter like any wrong password.
    expect(await failures()).toBe(counted + 1);

    expect(await signIn(email, password)).toBe(303);
    const upgraded = (await storedHash(email)) as string;
    expect(upgraded).toMatch(OUR_BCRYPT);
    expect(await bcrypt.compare(password, upgraded)).toBe(true);
    expect(await rehashEvents(id)).toEqual([expect.objectContaining({ details: { from, to: 'bcrypt $2b$ cost 5' } })]);
    // Ours now: the next sign-in leaves it alone.
    expect(await signIn(email, password)).toBe(303);
    expect(await storedHash(email)).toBe(upgraded);
    expect(await rehashEvents(id)).toHaveLength(1);
  }

  it('creates a person with a bcrypt hash through the admin API; it is upgraded at sign-in', async () => {
    const person = newPerson();
    const created = await admin('POST', '/users', { email: person.email, password_hash: await bcryptElsewhere(person.password) });
    expect(created.status).toBe(201);
    expect(created.body.has_password).toBe(true);
    const id = created.body.id as string;
    const [event] = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: id, type: 'user.created' } });
    expect(event?.details).toMatchObject({ imported_hash: 'bcrypt $2y$ cost 6' });
    await expectUpgradeAtSignIn(id, person.email, person.password, 'bcrypt $2y$ cost 6');
  });

  it('sets an argon2id hash on an existing person through the admin API; it is upgraded at sign-in', async () => {
    const person = await server.addPerson();
    expect((await admin('POST', `/users/${person.id}/password`, { password_hash: await argon2id('a password from elsewhere') })).status).toBe(204);
    expect(await signIn(person.email, person.password)).toBe(401);
    await expectUpgradeAtSignIn(person.id, person.email, 'a password from elsewhere', 'argon2id m=8192,t=2,p=2');
  });

  it('lets in a passphrase longer than bcrypt reads against an imported argon2id hash, and keeps that hash', async () => {
    const person = newPerson();
    const passphrase = 'a passphrase from the old server that is much longer than bcrypt could ever read, all 100 bytes.';
    expect(Buffer.byteLength(passphrase)).toBeGreaterThan(72);
    const imported = await argon2id(passphrase);
    const created = await admin('POST', '/users', { email: person.email, password_hash: imported });
    expect(created.status).toBe(201);
    expect(await signIn(person.email, passphrase.slice(0, 72))).toBe(401);
    expect(await signIn(person.email, passphrase)).toBe(303);
    expect(await storedHash(person.email)).toBe(imported);
    expect(await rehashEvents(created.body.id as string)).toEqual([]);
  });

  it('refuses malformed hashes, naming the field', async () => {
    const person = newPerson();
    const argon2i = await argon2Hash('x', { ...ARGON2ID_ELSEWHERE, algorithm: 1 });
    expect(await admin('POST', '/users', { email: person.email, password_hash: argon2i })).toMatchObject({ status: 400, body: { issues: [{ path: 'password_hash', message: expect.stringMatching(/only argon2id/) }] } });
    expect(await admin('POST', '/users', { email: person.email, password_hash: 'hunter2' })).toMatchObject({ status: 400, body: { issues: [{ path: 'password_hash' }] } });
    expect(await admin('POST', '/users', { email: person.email, password: person.password, password_hash: await argon2id('x') })).toMatchObject({ status: 400, body: { issues: [{ path: 'password_hash', message: 'give either password or password_hash, not both' }] } });
    expect(await admin('POST', '/users', { email: person.email })).toMatchObject({ status: 400, body: { issues: [{ path: 'password', message: 'is required' }] } });
    expect(await admin('POST', '/users/nobody/password', { password_hash: `$2b$31$${'a'.repeat(53)}` })).toMatchObject({ status: 400, body: { issues: [{ path: 'password_hash', message: expect.stringMatching(/cost must be from 4 to 15/) }] } });
    expect(await storedHash(person.email)).toBeUndefined();
  });

  it('takes a hash on stdin from the command line, never as an argument', async () => {
    const env = { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET, BCRYPT_COST: '5', AUTO_MIGRATE: 'false' };
    const person = newPerson();
    const created = await runCli(['users', 'create', person.email, '--password-hash-stdin', '--json'], env, `${await argon2id(person.password)}\n`);
    expect(created, created.stderr).toMatchObject({ code: 0 });
    const id = (JSON.parse(created.stdout) as { id: string }).id;
    await expectUpgradeAtSignIn(id, person.email, person.password, 'argon2id m=8192,t=2,p=2');

    const set = await runCli(['users', 'set-password', person.email, '--password-hash-stdin'], env, await bcryptElsewhere('set from the command line', 7));
    expect(set, set.stderr).toMatchObject({ code: 0 });
    expect(await signIn(person.email, 'set from the command line')).toBe(303);
    expect(await storedHash(person.email)).toMatch(OUR_BCRYPT);

    const refused = await runCli(['users', 'set-password', person.email, '--password-hash-stdin'], env, '$argon2d$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('password_hash: argon2i and argon2d hashes are not accepted');
    const both = await runCli(['users', 'create', 'x@example.com', '--password-stdin', '--password-hash-stdin'], env, 'x');
    expect(both.code).toBe(2);
  });

  it('seeds a person with a hash, upgrades it at sign-in, and a second run does not undo the upgrade', async () => {
    const person = newPerson();
    const parsed = parseSeedFile({ users: [{ email: person.email, password_hash: (await bcrypt.hash(person.password, 7)).replace('$2b$', '$2a$'), name: 'Moved Over' }] });
    expect(parsed.ok).toBe(true);
    const seed = () => applySeed(server.gatehouse.db, parsed.ok ? parsed.data : (undefined as never), { bcryptCost: 5, clientSecrets: clientSecretSealing([TEST_SECRET]) });
    expect((await seed()).users.created).toEqual([person.email]);
    expect((await seed()).users.unchanged).toEqual([person.email]);
    const id = (await createUserStore(server.gatehouse.db).findByEmail(person.email))?.id as string;
    await expectUpgradeAtSignIn(id, person.email, person.password, 'bcrypt $2a$ cost 7');
    const upgraded = await storedHash(person.email);
    expect((await seed()).users.unchanged).toEqual([person.email]);
    expect(await storedHash(person.email)).toBe(upgraded);

    const bad = parseSeedFile({ users: [{ email: 'a@example.com', password_hash: '$argon2i$v=19$m=1,t=1,p=1$x$y' }, { email: 'b@example.com', password: 'long enough password here', password_hash: await argon2id('x') }] });
    expect(bad).toEqual({ ok: false, problems: ['users[0].password_hash: argon2i and argon2d hashes are not accepted: only argon2id', 'users[1].password_hash: give either password or password_hash, not both'] });
  });

  it('replaces a hash only if it is still the one checked', async () => {
    const person = await server.addPerson();
    const users = createUserStore(server.gatehouse.db);
    const checked = (await storedHash(person.email)) as string;
    expect(await users.replacePasswordHash(person.id, 'some other hash', 'new')).toBe(false);
    expect(await storedHash(person.email)).toBe(checked);
    expect(await users.replacePasswordHash(person.id, checked, await bcrypt.hash('x', 5))).toBe(true);
  });
});

describe.each(await flavours())('the account page with an imported hash on %s', (flavour) => {
  let services: Services;
  beforeAll(async () => (services = await startServices(flavour)));
  afterAll(async () => services?.close());

  it('checks the current password against an imported argon2id hash, and knows the same one again', async () => {
    const person = await services.addPerson();
    const old = 'the password from the old server';
    await createUserStore(services.db).update(person.id, { passwordHash: await argon2id(old) });
    const session = new services.provider.Session();
    const now = Math.floor(Date.now() / 1000);
    session.loginAccount({ accountId: person.id, amr: ['pwd'], loginTs: now });
    await session.save(3600);
    const signedIn = { sessionId: session.jti, sessionUid: session.uid, accountId: person.id, signedInAt: now };
    const origin = { ip: '192.0.2.40' };

    expect(await services.account.changePassword(signedIn, 'not the old one', 'a brand new passphrase', origin)).toEqual({ outcome: 'wrong_password' });
    expect(await services.account.changePassword(signedIn, old, old, origin)).toEqual({ outcome: 'rejected', problem: 'same' });
    expect(await services.account.changePassword(signedIn, old, 'a brand new passphrase', origin)).toEqual({ outcome: 'changed', otherSessionsEnded: 0 });
    expect(await services.passwords.verifyPassword(person.email, 'a brand new passphrase', origin)).toBe(person.id);
  });
});
