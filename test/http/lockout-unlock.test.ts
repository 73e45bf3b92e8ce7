// Ending a brute-force lockout as an operator: people locked out by wrong passwords typed on the
// real sign-in page, and an address locked by them, unlocked through the admin API and through
// the `gatehouse` command; the person signs in right away, and the audit trail names who did it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm } from '../helpers/browser.js';
import { authorizePath, tokenRequest } from '../helpers/code-flow.js';
import { runCli, type Outcome } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { credentialsOf, machineClient, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const LIMITS = { SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3', SIGN_IN_MAX_FAILURES_PER_IP: '8', SIGN_IN_FAILURE_WINDOW: '10m', SIGN_IN_LOCKOUT: '10m', SIGN_IN_DELAY_STEP_MS: '0', TRUST_PROXY: 'true' };
const OPS = credentialsOf('ops-tool');

describe.each(await flavours())('unlocking lockouts on %s', (flavour) => {
  let server: TestGatehouse;
  let token: string;
  beforeAll(async () => {
    server = await startTestGatehouse(flavour, { env: LIMITS, clients: [webApp(), machineClient(OPS.id, { scope: 'admin' })] });
    const { status, body } = await tokenRequest(server.url, OPS, { grant_type: 'client_credentials', scope: 'admin' });
    expect(status).toBe(200);
    token = body.access_token as string;
  });
  afterAll(async () => server?.close());

  /** Submits the sign-in page from `ip`: 303 onwards when the password is taken, 401 with the form again when not. */
  async function signIn(email: string, password: string, ip: string): Promise<number> {
    const browser = new Browser(server.issuer);
    const form = findForm((await browser.visit(authorizePath())).html, '/login');
    const response = await browser.request(form.action, { form: { ...form.fields, email, password }, headers: { 'x-forwarded-for': ip, 'user-agent': 'lockout-test' } });
    await response.text();
    return response.status;
  }

  async function lockOut(email: string, ip: string) {
    for (let i = 0; i < 3; i++) expect(await signIn(email, WRONG_PASSWORD, ip)).toBe(401);
  }

  async function admin(method: 'GET' | 'POST', path: string, body?: unknown) {
    const response = await fetch(`${server.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  const cli = (args: string[]) => runCli(args, { DATABASE_URL: server.database.config.url, SECRETS: TEST_SECRET, AUTO_MIGRATE: 'false', ...LIMITS });
  const json = (outcome: Outcome) => {
    expect(outcome, outcome.stderr).toMatchObject({ code: 0 });
    return JSON.parse(outcome.stdout) as Record<string, unknown>;
  };
  const unlockEvents = async (accountId: string) => server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'user.unlocked', accountId } });

  it('unlocks through the admin API: the person signs in at once', async () => {
    const person = await server.addPerson();
    await lockOut(person.email, '198.51.100.10');
    expect(await signIn(person.email, person.password, '198.51.100.10')).toBe(401);

    const seen = await admin('GET', `/users/${person.id}/lockout`);
    expect(seen).toMatchObject({ status: 200, body: { user_id: person.id, email: person.email, password: { locked: true, failures: 3 }, second_factor: { locked: false } } });
    expect((await admin('GET', '/lockouts')).body.users).toContainEqual(expect.objectContaining({ user_id: person.id }));

    expect(await admin('POST', `/users/${person.id}/unlock`, {})).toEqual({ status: 200, body: { unlocked: true } });
    expect(await signIn(person.email, person.password, '198.51.100.10')).toBe(303);
    expect((await admin('GET', `/users/${person.id}/lockout`)).body.password).toEqual({ locked: false, until: null, failures: 0 });
    expect(await unlockEvents(person.id)).toEqual([expect.objectContaining({ details: expect.objectContaining({ via: 'admin', by: OPS.id, was_locked: { password: true, second_factor: false } }) })]);

    expect((await admin('POST', '/users/nobody/unlock', {})).status).toBe(404);
    expect(await admin('POST', `/users/${person.id}/unlock`, { now: true })).toMatchObject({ status: 400, body: { issues: [{ path: 'now' }] } });
  });

  it('unlocks through the command line, naming the person by email', async () => {
    const person = await server.addPerson();
    await lockOut(person.email, '198.51.100.11');
    expect(json(await cli(['users', 'lockout', person.email, '--json']))).toMatchObject({ password: { locked: true } });
    const table = await cli(['users', 'lockout', person.email]);
    expect(table.stdout).toMatch(/^password\s+locked until \d{4}-/m);

    expect(json(await cli(['users', 'unlock', person.email, '--json']))).toEqual({ id: person.id, unlocked: true });
    expect(await signIn(person.email, person.password, '198.51.100.11')).toBe(303);
    expect(await unlockEvents(person.id)).toEqual([expect.objectContaining({ details: expect.objectContaining({ via: 'cli', was_locked: { password: true, second_factor: false } }) })]);
    expect((await cli(['users', 'unlock', person.email])).stdout).toContain('was not locked');
    expect(await cli(['users', 'unlock', 'nobody@example.com'])).toMatchObject({ code: 1 });
  });

  it('unlocks an address through the admin API and the command line', async () => {
    const ip = '198.51.100.12';
    for (let i = 0; i < 8; i++) expect(await signIn(`stranger-${i}@example.com`, WRONG_PASSWORD, ip)).toBe(401);
    const person = await server.addPerson();
    expect(await signIn(person.email, person.password, ip)).toBe(401);
    expect((await admin('GET', '/lockouts')).body.addresses).toContainEqual({ address: ip, until: expect.any(String) });
    expect(json(await cli(['users', 'lockouts', '--json'])).addresses).toContainEqual({ address: ip, until: expect.any(String) });

    expect(await admin('POST', '/lockouts/ip/unlock', { ip: 'nonsense' })).toMatchObject({ status: 400, body: { issues: [{ path: 'ip' }] } });
    expect(await admin('POST', '/lockouts/ip/unlock', { ip })).toEqual({ status: 200, body: { address: ip, unlocked: true } });
    expect(await signIn(person.email, person.password, ip)).toBe(303);

    for (let i = 0; i < 8; i++) await signIn(`stranger-${i}@example.com`, WRONG_PASSWORD, ip);
    expect(json(await cli(['users', 'unlock-address', ip, '--json']))).toEqual({ address: ip, unlocked: true });
    expect(await signIn(person.email, person.password, ip)).toBe(303);
    const events = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { type: 'address.unlocked' }, orderBy: { at: 'asc' } });
    expect(events.map((event) => (event.details as { via: string }).via)).toEqual(['admin', 'cli']);
  });
});
