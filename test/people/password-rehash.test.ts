// Raising BCRYPT_COST upgrades each stored hash at the person's next successful sign-in.
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore } from '../../src/people/store.js';
import { Browser, findForm } from '../helpers/browser.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

const APP = 'http://app.test';
const LEO = { email: 'leo@example.com', password: 'leo has a long enough password' };

describe.each(await flavours())('password rehash on %s', (flavour) => {
  let server: TestGatehouse;
  let leoId: string;

  beforeAll(async () => {
    // The test helper stores hashes with cost 4; this server is configured for 5.
    server = await startTestGatehouse(flavour, { BCRYPT_COST: '5' });
    await server.addClient({ client_id: 'web', client_secret: 'web-secret-0123456789-0123456789-0123456789', redirect_uris: [`${APP}/cb`] });
    leoId = await server.addUser(LEO);
  });
  afterAll(async () => server?.close());

  const storedHash = async () => (await createUserStore(server.gatehouse.db).findById(leoId))?.passwordHash as string;

  async function signIn(password: string) {
    const browser = new Browser(server.issuer);
    const query = new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: `${APP}/cb`, state: 's' });
    const login = findForm((await browser.visit(`/authorize?${query}`)).html, '/login');
    return browser.visit(login.action, { form: { ...login.fields, email: LEO.email, password } });
  }

  it('keeps the old hash after a failed sign-in and upgrades it after a successful one', async () => {
    expect(bcrypt.getRounds(await storedHash())).toBe(4);
    expect((await signIn('not the password at all')).status).toBe(401);
    expect(bcrypt.getRounds(await storedHash())).toBe(4);

    expect((await signIn(LEO.password)).status).toBe(200);
    const upgraded = await storedHash();
    expect(bcrypt.getRounds(upgraded)).toBe(5);
    expect(await bcrypt.compare(LEO.password, upgraded)).toBe(true);
  });
});
