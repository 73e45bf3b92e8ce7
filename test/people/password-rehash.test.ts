// Raising BCRYPT_COST upgrades each stored hash at the person's next successful sign-in.
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore } from '../../src/people/store.js';
import { Browser, submitPassword } from '../helpers/browser.js';
import { authorizePath } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

describe.each(await flavours())('password rehash on %s', (flavour) => {
  let server: TestGatehouse;
  // The test helper stores hashes with cost 4; this server is configured for 5.
  beforeAll(async () => (server = await startTestGatehouse(flavour, { env: { BCRYPT_COST: '5' }, clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  const storedHash = async () => (await createUserStore(server.gatehouse.db).findById(server.idOf(ALICE)))?.passwordHash as string;

  async function signIn(password: string) {
    const browser = new Browser(server.issuer);
    return submitPassword(browser, await browser.visit(authorizePath()), { email: ALICE.email, password });
  }

  it('keeps the old hash after a failed sign-in and upgrades it after a successful one', async () => {
    expect(bcrypt.getRounds(await storedHash())).toBe(4);
    expect((await signIn(WRONG_PASSWORD)).status).toBe(401);
    expect(bcrypt.getRounds(await storedHash())).toBe(4);

    expect((await signIn(ALICE.password)).status).toBe(200);
    const upgraded = await storedHash();
    expect(bcrypt.getRounds(upgraded)).toBe(5);
    expect(await bcrypt.compare(ALICE.password, upgraded)).toBe(true);
  });
});
