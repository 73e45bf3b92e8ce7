// verifyPassword and passwords longer than bcrypt reads: bcrypt looks at the first 72 bytes only,
// so without a limit a password that starts with the right 72 bytes would sign in whatever
// follows. Sign-in refuses any password over 72 bytes exactly like a wrong one: same message,
// same status, same bcrypt work, counted by the brute-force limits.
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, findForm } from '../helpers/browser.js';
import { authorizePath } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const GENERIC = 'Incorrect email or password.';
/** Exactly 72 bytes: 70 ASCII characters and one two-byte one. */
const AT_THE_LIMIT = `${'correct horse battery staple '.repeat(3).slice(0, 70)}é`;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/** One browser at one sign-in form; each call posts credentials and says what came back. */
async function signInForm(server: TestGatehouse, ip: string) {
  const browser = new Browser(server.issuer, { 'x-forwarded-for': ip });
  const form = findForm((await browser.visit(authorizePath())).html, '/login');
  return async function attempt(email: string, password: string) {
    const started = performance.now();
    const response = await browser.request(form.action, { form: { ...form.fields, email, password } });
    const html = await response.text();
    return { status: response.status, message: /<p class="alert"[^>]*>([^<]*)<\/p>/.exec(html)?.[1], ms: performance.now() - started };
  };
}

describe.each(await flavours())('passwords longer than bcrypt reads, at sign-in on %s', (flavour) => {
  let server: TestGatehouse;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour, {
      clients: [webApp()],
      env: {
      BCRYPT_COST: '10',
      SIGN_IN_MAX_FAILURES_PER_ACCOUNT: '3',
      SIGN_IN_MAX_FAILURES_PER_IP: '1000',
      SIGN_IN_DELAY_STEP_MS: '0',
      SIGN_IN_LOCKOUT: '10m',
      TRUST_PROXY: 'true',
      },
    });
  });
  afterAll(async () => server?.close());

  async function personWithPassword(email: string, password: string) {
    const id = await server.addUser({ email, password });
    await server.gatehouse.db.prisma.user.update({ where: { id }, data: { passwordHash: await bcrypt.hash(password, 10) } });
    return id;
  }

  it('refuses the right 72 bytes followed by anything, with the wrong-password answer, and counts it', async () => {
    const id = await personWithPassword('alice@example.com', AT_THE_LIMIT);
    // bcrypt itself would say yes: this is the attack.
    expect(await bcrypt.compare(`${AT_THE_LIMIT}anything`, (await server.gatehouse.db.prisma.user.findUniqueOrThrow({ where: { id } })).passwordHash ?? '')).toBe(true);

    const attempt = await signInForm(server, '198.51.100.1');
    for (const suffix of ['anything', 'x', ' ', 'é'.repeat(400)]) {
      expect(await attempt('alice@example.com', `${AT_THE_LIMIT}${suffix}`)).toMatchObject({ status: 401, message: GENERIC });
    }
    const failures = await server.gatehouse.db.prisma.auditEvent.findMany({ where: { accountId: id, type: 'sign_in.failure' }, orderBy: { at: 'asc' } });
    expect(failures.map((row) => (row.details as { reason: string }).reason)).toEqual(['password_too_long', 'password_too_long', 'password_too_long', 'locked']);
    // Three of them locked the account, as three wrong passwords would: even the right one waits now.
    expect(await attempt('alice@example.com', AT_THE_LIMIT)).toMatchObject({ status: 401, message: GENERIC });
  });

  it('still signs in with a password of exactly 72 bytes', async () => {
    await personWithPassword('bob@example.com', AT_THE_LIMIT);
    const attempt = await signInForm(server, '198.51.100.2');
    expect((await attempt('bob@example.com', AT_THE_LIMIT)).status).toBe(303);
  });

  it('answers an over-long password as slowly as a wrong password (the same bcrypt work)', async () => {
    const tooLong: number[] = [];
    const wrong: number[] = [];
    // Another account each round (a lockout would skip bcrypt), each kind first every other round.
    // Each round's two answers are compared with each other: taken one after the other, they share
    // the machine's load (other test files run beside this one), which two medians would not.
    const ratios: number[] = [];
    for (let i = 0; i < 9; i++) {
      const email = `timing-${i}@example.com`;
      await personWithPassword(email, AT_THE_LIMIT);
      const attempt = await signInForm(server, `198.51.100.${10 + i}`);
      const kinds = [() => attempt(email, 'not the password at all').then(({ ms }) => wrong.push(ms)), () => attempt(email, `${AT_THE_LIMIT}!`).then(({ ms }) => tooLong.push(ms))];
      for (const kind of i % 2 ? kinds : kinds.reverse()) await kind();
      ratios.push(tooLong.at(-1)! / wrong.at(-1)!);
    }
    const ratio = median(ratios);
    const detail = `over-long ${tooLong.map((ms) => ms.toFixed(0)).join(' ')} ms, wrong ${wrong.map((ms) => ms.toFixed(0)).join(' ')} ms`;
    expect(ratio, detail).toBeGreaterThan(0.7);
    expect(ratio, detail).toBeLessThan(1.4);
  });
});
