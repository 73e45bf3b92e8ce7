// A person's linked upstream identities, on SQLite and PostgreSQL: the last way to sign in kept
// even when two unlinks race.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createIdp } from '../../src/federation/service.js';
import { createFederation } from '../../src/federation/sign-in.js';
import { createFederationStore } from '../../src/federation/store.js';
import { createUserStore, NO_PASSWORD } from '../../src/people/store.js';
import { flavours } from '../helpers/databases.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';

const PROVIDERS = ['alpha', 'beta', 'gamma'];

describe.each(await flavours())('linked identities on %s', (flavour) => {
  let server: TestGatehouse;
  const audit = () => createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' }));
  const store = () => createFederationStore(server.gatehouse.db);

  beforeAll(async () => {
    server = await startTestGatehouse(flavour);
    for (const id of PROVIDERS) {
      await createIdp({ db: server.gatehouse.db, audit: audit(), secrets: [TEST_SECRET], issuer: server.issuer }, { id, display_name: `Provider ${id}`, kind: 'oidc', issuer: `https://${id}.example`, client_id: 'gatehouse', client_secret: 's' }, { via: 'cli' });
    }
  });
  afterAll(async () => server?.close());

  /** A person created through a provider (no password), linked to `providers`. */
  async function passwordless(providers: string[]) {
    const id = randomUUID();
    const email = `nopw-${id.slice(0, 8)}@example.com`;
    const profile = { email, emailVerified: true, name: null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: null };
    await createUserStore(server.gatehouse.db).create(id, profile, NO_PASSWORD);
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

    it('three links, three unlinks at once: two succeed, the last way stays', async () => {
      const federation = createFederation({ db: server.gatehouse.db, config: server.config, audit: audit() });
      const person = await passwordless(PROVIDERS);
      const outcomes = await Promise.all(PROVIDERS.map((provider) => federation.unlink(person.id, provider, {})));
      expect(outcomes.sort()).toEqual(['last_way', 'unlinked', 'unlinked']);
      expect(await linksOf(person.id)).toHaveLength(1);
    });
  });
});
