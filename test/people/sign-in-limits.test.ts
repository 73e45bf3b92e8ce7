// Brute-force limits: failed sign-ins per account and per IP (increasing delay, then a temporary
// lockout that looks exactly like a wrong password), failed client authentications per client and source address,
// counters shared by every instance on one database, and sign-in answers that take as long for
// an unknown email as for a wrong password.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcrypt';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipKey } from '../../src/core/counters.js';
import { Browser, findForm } from '../helpers/browser.js';
import { authorizePath, basicAuth, postForm } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { credentialsOf, machineClient, PASSWORD, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTestGatehouse, startTwoInstances, type TestGatehouse } from '../helpers/gatehouse.js';

const GENERIC = 'Incorrect email or password.';

/** Small limits; TRUST_PROXY lets each test come from its own X-Forwarded-For address. */
const LIMITS = {
  SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3',
  SIGN_IN_MAX_FAILURES_PER_IP: '1000',
  SIGN_IN_FAILURE_WINDOW: '10m',
  SIGN_IN_LOCKOUT: '2s',
  SIGN_IN_DELAY_STEP_MS: '50',
  CLIENT_AUTH_MAX_FAILURES: '3',
  TRUST_PROXY: 'true',
};

interface Answer {
  status: number;
  /** The alert shown on the sign-in page, when it was shown again. */
  message: string | undefined;
  ms: number;
}

/** One browser at one sign-in form, posting credentials as often as asked. */
async function signInForm(server: TestGatehouse, ip: string) {
  const browser = new Browser(server.issuer);
  const page = await browser.visit(authorizePath());
  expect(page.status).toBe(200);
  const form = findForm(page.html, '/login');
  return async function attempt(email: string, password: string): Promise<Answer> {
    const started = performance.now();
    const response = await browser.request(form.action, { form: { ...form.fields, email, password }, headers: { 'x-forwarded-for': ip, 'user-agent': 'brute-force-test' } });
    const html = await response.text();
    const ms = performance.now() - started;
    return { status: response.status, message: /<p class="alert"[^>]*>([^<]*)<\/p>/.exec(html)?.[1], ms };
  };
}

const refused = { status: 401, message: GENERIC };
/** A right password ends the login step with a redirect onwards. */
const accepted = (answer: Answer) => expect(answer.status).toBe(303);

async function auditRows(server: TestGatehouse, type: string) {
  return server.gatehouse.db.prisma.auditEvent.findMany({ where: { type }, orderBy: { at: 'asc' } });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

describe('the address a per-IP limit counts', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s counts as %s', (ip, key) => {
    expect(ipKey(ip)).toBe(key);
  });
});

describe.each(await flavours())('brute-force limits on %s', (flavour) => {
  let server: TestGatehouse;
  /** A second instance on the same database. */
  let twin: TestGatehouse;
  beforeAll(async () => ([server, twin] = await startTwoInstances(flavour, { env: LIMITS, clients: [webApp()] })));
  afterAll(async () => server?.close());

  describe('failed sign-ins per account', () => {
    it('locks the account after the configured failures, answering exactly like a wrong password, even to the right one', async () => {
      const id = await server.addUser({ email: 'alice@example.com', password: PASSWORD });
      const attempt = await signInForm(server, '198.51.100.1');
      for (let i = 0; i < 3; i++) expect(await attempt('alice@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      expect(await attempt('alice@example.com', PASSWORD)).toMatchObject(refused);
      // The email in another letter case is the same account.
      expect(await attempt(' ALICE@example.com', PASSWORD)).toMatchObject(refused);

      const locked = (await auditRows(server, 'sign_in.locked')).filter((row) => row.accountId === id);
      expect(locked).toHaveLength(1);
      expect(locked[0]).toMatchObject({ ip: '198.51.100.1', userAgent: 'brute-force-test', details: { scope: 'account' } });
      const failures = (await auditRows(server, 'sign_in.failure')).filter((row) => row.accountId === id);
      expect(failures.map((row) => (row.details as { reason: string }).reason)).toEqual(['wrong_password', 'wrong_password', 'wrong_password', 'locked', 'locked']);

      // Only that account: another one signs in from the same address.
      await server.addUser({ email: 'bob@example.com', password: PASSWORD });
      accepted(await (await signInForm(server, '198.51.100.1'))('bob@example.com', PASSWORD));
    });

    it('limits unknown emails the same way, and records the lockout without an account', async () => {
      const attempt = await signInForm(server, '198.51.100.2');
      for (let i = 0; i < 4; i++) expect(await attempt('nobody@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      const locked = (await auditRows(server, 'sign_in.locked')).filter((row) => row.ip === '198.51.100.2');
      expect(locked).toHaveLength(1);
      expect(locked[0]?.accountId).toBeNull();
    });

    it('ends the lockout after SIGN_IN_LOCKOUT', async () => {
      await server.addUser({ email: 'carol@example.com', password: PASSWORD });
      const attempt = await signInForm(server, '198.51.100.3');
      for (let i = 0; i < 3; i++) expect(await attempt('carol@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      expect(await attempt('carol@example.com', PASSWORD)).toMatchObject(refused);
      await sleep(2300);
      accepted(await attempt('carol@example.com', PASSWORD));
    });

    it('starts counting again after a successful sign-in', async () => {
      await server.addUser({ email: 'dave@example.com', password: PASSWORD });
      const attempt = await signInForm(server, '198.51.100.4');
      for (let i = 0; i < 2; i++) expect(await attempt('dave@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      accepted(await attempt('dave@example.com', PASSWORD));
      const again = await signInForm(server, '198.51.100.4');
      for (let i = 0; i < 2; i++) expect(await again('dave@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      accepted(await again('dave@example.com', PASSWORD));
    });

    it('shares the counters between instances on one database', async () => {
      await server.addUser({ email: 'erin@example.com', password: PASSWORD });
      const onServer = await signInForm(server, '198.51.100.5');
      for (let i = 0; i < 3; i++) expect(await onServer('erin@example.com', WRONG_PASSWORD)).toMatchObject(refused);
      const onTwin = await signInForm(twin, '198.51.100.5');
      expect(await onTwin('erin@example.com', PASSWORD)).toMatchObject(refused);
    });
  });

  describe('failed client authentications per client and address', () => {
    /** From the attacker's address unless another is given (TRUST_PROXY makes X-Forwarded-For the source). */
    async function token(target: TestGatehouse, form: Record<string, string>, authorization?: string, from = '192.0.2.9') {
      const response = await postForm(`${target.url}/token`, form, { 'x-forwarded-for': from, ...(authorization ? { authorization } : {}) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    }
    const credentials = (target: TestGatehouse, id: string, secret: string, from?: string) => token(target, { grant_type: 'client_credentials' }, basicAuth({ id, secret }), from);

    it('locks a client from the address that sent the wrong secrets, refuses its right secret there, and leaves the rightful caller elsewhere and other clients alone', async () => {
      const locked = credentialsOf('locked-app');
      const other = credentialsOf('other-app');
      await server.addClient(machineClient(locked.id));
      await server.addClient(machineClient(other.id));
      expect((await credentials(server, locked.id, locked.secret)).status).toBe(200);

      const wrong = await credentials(server, locked.id, 'wrong-secret');
      expect(wrong).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
      for (let i = 0; i < 2; i++) expect((await credentials(server, locked.id, 'wrong-secret')).status).toBe(401);

      // The right secret now gets exactly the answer a wrong one gets, on this and the other instance.
      expect(await credentials(server, locked.id, locked.secret)).toEqual(wrong);
      expect(await credentials(twin, locked.id, locked.secret)).toEqual(wrong);
      // Every endpoint that authenticates clients.
      const introspection = await postForm(`${server.url}/token/introspection`, { token: 'whatever' }, { authorization: basicAuth(locked), 'x-forwarded-for': '192.0.2.9' });
      expect(introspection.status).toBe(401);
      // The attack locked only the attacker's address: the client itself, calling from its own, is served on both instances.
      expect((await credentials(server, locked.id, locked.secret, '198.51.100.20')).status).toBe(200);
      expect((await credentials(twin, locked.id, locked.secret, '198.51.100.20')).status).toBe(200);

      expect((await credentials(server, other.id, other.secret)).status).toBe(200);
      const rows = await auditRows(server, 'client_auth.locked');
      expect(rows.filter((row) => row.clientId === locked.id)).toEqual([expect.objectContaining({ ip: '192.0.2.9' })]);
      expect(rows.filter((row) => row.clientId === other.id)).toEqual([]);

      await sleep(2300);
      expect((await credentials(server, locked.id, locked.secret)).status).toBe(200);
    });

    it('counts failed client_secret_jwt assertions too', async () => {
      const client = { client_id: 'jwt-app', client_secret: credentialsOf('jwt-app').secret };
      await server.addClient(machineClient(client.client_id, { token_endpoint_auth_method: 'client_secret_jwt' }));
      const assertion = (secret: string) =>
        new SignJWT({ jti: randomUUID() })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(client.client_id)
          .setSubject(client.client_id)
          .setAudience(`${server.url}/token`)
          .setIssuedAt()
          .setExpirationTime('1m')
          .sign(new TextEncoder().encode(secret));
      const withAssertion = async (secret: string) =>
        token(server, {
          grant_type: 'client_credentials',
          client_id: client.client_id,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(secret),
        });
      expect((await withAssertion(client.client_secret)).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await withAssertion(`${client.client_secret}-but-wrong`)).status).toBe(401);
      expect(await withAssertion(client.client_secret)).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    });
  });
});

describe.each(await flavours())('failed sign-ins per IP, and the increasing delay, on %s', (flavour) => {
  const STEP = 150;
  let server: TestGatehouse;

  const env = { ...LIMITS, SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '5', SIGN_IN_MAX_FAILURES_PER_IP: '4', SIGN_IN_DELAY_STEP_MS: String(STEP) };
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env, clients: [webApp()] })));
  afterAll(async () => server?.close());

  it('locks an address after the configured failures across accounts, and only that address', async () => {
    const id = await server.addUser({ email: 'frank@example.com', password: PASSWORD });
    const attempt = await signInForm(server, '203.0.113.7');
    for (let i = 0; i < 4; i++) expect(await attempt(`guess-${i}@example.com`, WRONG_PASSWORD)).toMatchObject(refused);
    // That address is locked, even for the right password of an account it never tried.
    expect(await attempt('frank@example.com', PASSWORD)).toMatchObject(refused);
    const locked = (await auditRows(server, 'sign_in.locked')).filter((row) => row.ip === '203.0.113.7');
    expect(locked).toEqual([expect.objectContaining({ details: expect.objectContaining({ scope: 'ip' }) })]);
    expect((await auditRows(server, 'sign_in.failure')).filter((row) => row.accountId === id)).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ reason: 'locked' }) }),
    ]);
    // Another address is not.
    accepted(await (await signInForm(server, '203.0.113.8'))('frank@example.com', PASSWORD));
  });

  it('makes each answer wait a step longer per earlier failure of the account', async () => {
    const attempt = await signInForm(server, '203.0.113.20');
    const answers: Answer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await attempt('grace@example.com', WRONG_PASSWORD));
    for (const [k, answer] of answers.entries()) {
      expect(answer).toMatchObject(refused);
      expect(answer.ms).toBeGreaterThanOrEqual(k * STEP);
    }
    // Loose: the first answer is quick, and the fourth waited three steps more.
    expect(answers[0]?.ms).toBeLessThan(3 * STEP);
    expect((answers[3]?.ms ?? 0) - (answers[0]?.ms ?? 0)).toBeGreaterThan(2 * STEP);
  });
});

describe.each(await flavours())('sign-in timing on %s', (flavour) => {
  let server: TestGatehouse;

  // Real bcrypt work, no delay and no lockout in the way.
  const env = { BCRYPT_COST: '8', SIGN_IN_DELAY_STEP_MS: '0', SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '1000', SIGN_IN_MAX_FAILURES_PER_IP: '100000' };
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env, clients: [webApp()] })));
  afterAll(async () => server?.close());

  it('answers an unknown email as slowly as a wrong password', async () => {
    const id = await server.addUser({ email: 'heidi@example.com', password: PASSWORD });
    // The same cost as the server's, as any password set on it would have.
    await server.gatehouse.db.prisma.user.update({ where: { id }, data: { passwordHash: await bcrypt.hash(PASSWORD, 8) } });
    const attempt = await signInForm(server, '127.0.0.1');
    const wrongPassword: number[] = [];
    const unknownEmail: number[] = [];
    for (let i = 0; i < 3; i++) await attempt(`warm-up-${i}@example.com`, WRONG_PASSWORD); // the dummy hash, JIT
    for (let i = 0; i < 30; i++) {
      const wrong = await attempt('heidi@example.com', WRONG_PASSWORD);
      const unknown = await attempt(`nobody-${i}@example.com`, WRONG_PASSWORD);
      expect(wrong).toMatchObject(refused);
      expect(unknown).toMatchObject(refused);
      wrongPassword.push(wrong.ms);
      unknownEmail.push(unknown.ms);
    }
    const ratio = median(unknownEmail) / median(wrongPassword);
    expect(ratio, `medians: unknown email ${median(unknownEmail).toFixed(1)} ms, wrong password ${median(wrongPassword).toFixed(1)} ms`).toBeGreaterThan(0.7);
    expect(ratio).toBeLessThan(1.4);
  });
});
