// A person's linked upstream identities, on SQLite and PostgreSQL: listed and removed by an
// administrator (the management layer, the admin API and its OpenAPI document, `gatehouse users
// identities|unlink-identity`), audited with the administrator as actor; and the last way to sign
// in kept even when two removals race, whether of links, passkeys or the password.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createClient } from '../../src/clients/service.js';
import { ConflictError, NotFoundError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { createIdp, listLinkedIdentities, unlinkIdentity } from '../../src/federation/service.js';
import { createFederation } from '../../src/federation/sign-in.js';
import { createFederationStore } from '../../src/federation/store.js';
import { createPasskeyStore } from '../../src/people/passkey-store.js';
import { createUserStore } from '../../src/people/store.js';
import { tokenRequest } from '../helpers/code-flow.js';
import { runCli } from '../helpers/commands.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, testEnv, type TestGatehouse } from '../helpers/gatehouse.js';

const PROVIDERS = ['alpha', 'beta', 'gamma'];

describe.each(await flavours())('linked identities on %s', (flavour) => {
  let server: TestGatehouse;
  const audit = () => createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' }));
  const deps = () => ({ db: server.gatehouse.db, audit: audit() });
  const store = () => createFederationStore(server.gatehouse.db);
  const prisma = () => server.gatehouse.db.prisma;

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    for (const id of PROVIDERS) {
      await createIdp({ ...deps(), secrets: [TEST_SECRET], issuer: server.issuer }, { id, display_name: `Provider ${id}`, kind: 'oidc', issuer: `https://${id}.example`, client_id: 'gatehouse', client_secret: 's' }, { via: 'cli' });
    }
  });
  afterAll(async () => server?.close());

  /** A person created through a provider (no password), linked to `providers`. */
  async function passwordless(providers: string[]) {
    const id = randomUUID();
    const email = `nopw-${id.slice(0, 8)}@example.com`;
    const profile = { email, emailVerified: true, name: null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: null };
    await createUserStore(server.gatehouse.db).create(id, profile, null);
    for (const provider of providers) await store().link(provider, `${provider}-${id}`, id, email);
    return { id, email };
  }

  const linksOf = async (userId: string) => (await store().listLinks(userId)).map((l) => l.providerId).sort();

  describe('two unlinks at once of a password-less person’s last two links: exactly one succeeds', () => {
    it('through the account page (federation/sign-in.ts)', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      for (let round = 0; round < 8; round++) {
        const person = await passwordless(['alpha', 'beta']);
        const outcomes = await Promise.all(['alpha', 'beta'].map((provider) => federation.unlink(person.id, provider, {})));
        expect(outcomes.sort(), `round ${round}`).toEqual(['last_way', 'unlinked']);
        expect(await linksOf(person.id)).toHaveLength(1);
      }
    });

    it('through the admin API’s management layer, and mixed with the account page', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      for (let round = 0; round < 8; round++) {
        const person = await passwordless(['alpha', 'beta']);
        const settled = await Promise.allSettled([unlinkIdentity(deps(), person.id, 'alpha', { via: 'admin', clientId: 'ops' }), round % 2 ? federation.unlink(person.id, 'beta', {}) : unlinkIdentity(deps(), person.id, 'beta', { via: 'cli' })]);
        const succeeded = settled.filter((s) => s.status === 'fulfilled' && s.value !== 'last_way');
        const refused = settled.filter((s) => (s.status === 'rejected' && s.reason instanceof ConflictError) || (s.status === 'fulfilled' && s.value === 'last_way'));
        expect([succeeded.length, refused.length], `round ${round}: ${JSON.stringify(settled)}`).toEqual([1, 1]);
        expect(await linksOf(person.id)).toHaveLength(1);
      }
    });

    it('three links, three unlinks at once: two succeed, the last way stays', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      const person = await passwordless(PROVIDERS);
      const outcomes = await Promise.all(PROVIDERS.map((provider) => federation.unlink(person.id, provider, {})));
      expect(outcomes.sort()).toEqual(['last_way', 'unlinked', 'unlinked']);
      expect(await linksOf(person.id)).toHaveLength(1);
    });
  });

  describe('a passkey and a linked identity are both ways to sign in (people/sign-in-ways.ts)', () => {
    const passkeyStore = () => createPasskeyStore(server.gatehouse.db);
    const addPasskey = (userId: string) =>
      passkeyStore().create({ userId, credentialId: randomUUID(), publicKey: 'cose', counter: 0, transports: ['internal'], name: 'Laptop', deviceType: 'singleDevice', backedUp: false });

    it('without a password, a passkey lets the last link go, and then the passkey is the last way', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      const person = await passwordless(['alpha']);
      const passkey = await addPasskey(person.id);
      expect(await federation.unlink(person.id, 'alpha', {})).toBe('unlinked');
      expect(await passkeyStore().removeUnlessLast(person.id, passkey.id)).toBe('last_way');
      expect(await passkeyStore().countByUser(person.id)).toBe(1);
    });

    it('the last passkey and the last link removed at once: exactly one goes', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      for (let round = 0; round < 8; round++) {
        const person = await passwordless(['alpha']);
        const passkey = await addPasskey(person.id);
        const [unlinked, removed] = await Promise.all([federation.unlink(person.id, 'alpha', {}), passkeyStore().removeUnlessLast(person.id, passkey.id)]);
        expect([unlinked, removed].filter((outcome) => outcome === 'last_way'), `round ${round}: ${unlinked}, ${removed}`).toHaveLength(1);
        expect((await linksOf(person.id)).length + (await passkeyStore().countByUser(person.id))).toBe(1);
      }
    });

    it('the password and the last passkey removed at once: exactly one goes', async () => {
      for (let round = 0; round < 8; round++) {
        const person = await server.addPerson();
        const passkey = await addPasskey(person.id);
        const [password, removed] = await Promise.all([createUserStore(server.gatehouse.db).removePasswordUnlessLast(person.id), passkeyStore().removeUnlessLast(person.id, passkey.id)]);
        expect([password, removed].filter((outcome) => outcome === 'last_way'), `round ${round}: ${password}, ${removed}`).toHaveLength(1);
        const user = await createUserStore(server.gatehouse.db).findById(person.id);
        expect(Number(user?.passwordHash !== null) + (await passkeyStore().countByUser(person.id))).toBe(1);
      }
    });
  });

  it('lists and unlinks through the management layer: not found, last way, audited with the administrator as actor', async () => {
    const person = await passwordless(['alpha', 'beta']);
    await store().touchLink('beta', `beta-${person.id}`, new Date('2026-12-01T10:00:00Z'));
    const listed = await listLinkedIdentities(deps(), person.id);
    expect(listed).toEqual([
      expect.objectContaining({ provider: 'alpha', provider_name: 'Provider alpha', subject: `alpha-${person.id}`, email: person.email }),
      expect.objectContaining({ provider: 'beta', provider_name: 'Provider beta', subject: `beta-${person.id}`, last_used_at: '2026-12-01T10:00:00.000Z' }),
    ]);
    await expect(listLinkedIdentities(deps(), 'nobody')).rejects.toThrow(new NotFoundError('there is no user nobody'));
    await expect(unlinkIdentity(deps(), person.id, 'gamma', { via: 'cli' })).rejects.toThrow(NotFoundError);
    await expect(unlinkIdentity(deps(), 'nobody', 'alpha', { via: 'cli' })).rejects.toThrow(NotFoundError);

    await unlinkIdentity(deps(), person.id, 'alpha', { via: 'admin', clientId: 'ops', ip: '127.0.0.9' });
    await expect(unlinkIdentity(deps(), person.id, 'beta', { via: 'admin', clientId: 'ops' })).rejects.toThrow(ConflictError);
    expect(await linksOf(person.id)).toEqual(['beta']);
    const events = await prisma().auditEvent.findMany({ where: { accountId: person.id, type: 'federation.unlinked' } });
    expect(events).toEqual([expect.objectContaining({ ip: '127.0.0.9', details: { provider: 'alpha', via: 'admin', by: 'ops' } })]);

    // With a password, the last link may go.
    const withPassword = await server.addPerson();
    await store().link('gamma', `gamma-${withPassword.id}`, withPassword.id, withPassword.email);
    await unlinkIdentity(deps(), withPassword.id, 'gamma', { via: 'cli' });
    expect(await linksOf(withPassword.id)).toEqual([]);
  });

  it('is offered by the admin API and described in its OpenAPI document', async () => {
    const { client, client_secret } = await createClient({ ...deps(), secrets: [TEST_SECRET] }, { client_id: 'ops-identities', grant_types: ['client_credentials'], scope: 'admin' }, { via: 'cli' });
    const token = (await tokenRequest(server.url, { id: client.client_id, secret: client_secret as string }, { grant_type: 'client_credentials', scope: 'admin' })).body.access_token;
    const call = async (method: string, path: string) => {
      const response = await fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : {} };
    };
    const person = await passwordless(['alpha', 'beta']);
    const listed = await call('GET', `/users/${person.id}/identities`);
    expect(listed.status).toBe(200);
    expect(listed.body.identities.map((i: { provider: string }) => i.provider)).toEqual(['alpha', 'beta']);
    expect((await call('GET', '/users/nobody/identities')).status).toBe(404);
    expect((await call('DELETE', `/users/${person.id}/identities/gamma`)).status).toBe(404);
    expect((await call('DELETE', `/users/${person.id}/identities/alpha`)).status).toBe(204);
    const last = await call('DELETE', `/users/${person.id}/identities/beta`);
    expect(last).toMatchObject({ status: 409, body: { error: 'conflict' } });
    expect(last.body.error_description).toContain('last way');
    expect(await linksOf(person.id)).toEqual(['beta']);
    const event = await prisma().auditEvent.findFirstOrThrow({ where: { accountId: person.id, type: 'federation.unlinked' } });
    expect(event.details).toEqual({ provider: 'alpha', via: 'admin', by: 'ops-identities' });

    const openapi = (await (await fetch(`${server.url}/admin/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(openapi.paths['/admin/users/{userId}/identities'] ?? {})).toEqual(['get']);
    expect(Object.keys(openapi.paths['/admin/users/{userId}/identities/{idpId}']?.delete?.responses ?? {})).toEqual(expect.arrayContaining(['204', '404', '409']));
    expect(openapi.components.schemas).toHaveProperty('LinkedIdentityList');
  });

  it('is offered by `gatehouse users identities` and `users unlink-identity`', async () => {
    const env = testEnv(server.database.config, { ISSUER: server.issuer });
    const person = await passwordless(['alpha', 'beta']);
    const listed = await runCli(['users', 'identities', person.email], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`alpha\\s+alpha-${person.id}\\s+${person.email}`));
    expect(listed.stderr).toContain('2 linked identities.');
    const json = await runCli(['users', 'identities', person.id, '--json'], env);
    expect(JSON.parse(json.stdout).map((i: { provider: string }) => i.provider)).toEqual(['alpha', 'beta']);

    const unlinked = await runCli(['users', 'unlink-identity', person.email, 'alpha'], env);
    expect(unlinked).toMatchObject({ code: 0, stdout: `unlinked alpha from ${person.email}\n` });
    const last = await runCli(['users', 'unlink-identity', person.email, 'beta'], env);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('is the last way');
    expect((await runCli(['users', 'unlink-identity', person.email, 'gamma'], env)).code).toBe(1);
    expect((await runCli(['users', 'unlink-identity', person.email], env)).code).toBe(2);
    expect(await linksOf(person.id)).toEqual(['beta']);
    const event = await prisma().auditEvent.findFirstOrThrow({ where: { accountId: person.id, type: 'federation.unlinked' } });
    expect(event.details).toEqual({ provider: 'alpha', via: 'cli' });
  });
});
