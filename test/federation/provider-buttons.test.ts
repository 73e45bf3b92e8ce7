// Every sign-in page shows a button per enabled upstream provider. Each instance reuses the list
// it read for CLIENT_CACHE_TTL, as it does clients (federation/sign-in.ts): a provider this
// process adds, edits or switches off shows at once, one changed elsewhere (another instance, the
// CLI) once the list expires, and with a TTL of 0 every page reads the list.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createDb } from '../../src/db/client.js';
import { createFederation } from '../../src/federation/sign-in.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const provider = (id: string, enabled = true) => ({
  id,
  displayName: `Name of ${id}`,
  kind: 'oidc',
  enabled,
  settings: { issuer: 'https://idp.example', client_id: 'c', trusted: false, create_accounts: false, link_by_verified_email: false },
  clientSecretEncrypted: 'sealed',
});

describe.each(await flavours())("the sign-in page's provider buttons on %s", (flavour) => {
  let db: MigratedDb;
  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.prisma.identityProvider.deleteMany();
  });

  const federationWith = (cacheSeconds: number) =>
    createFederation({
      db,
      config: { issuer: 'http://127.0.0.1:1', secrets: ['provider-buttons-test-secret-0123456789'], nodeEnv: 'test', clientCache: cacheSeconds },
      audit: createAuditLog(db, createLogger({ logLevel: 'silent' })),
    });
  /** The names on the buttons a sign-in page would show. */
  const buttonsWith = (cacheSeconds: number) => {
    const federation = federationWith(cacheSeconds);
    return async () => (await federation.enabledProviders()).map((button) => button.displayName);
  };

  /** Runs `change` through a second connection to the same database, as another instance would. */
  async function elsewhere(change: (other: Awaited<ReturnType<typeof createDb>>) => Promise<unknown>) {
    const other = await createDb(db);
    try {
      await change(other);
    } finally {
      await other.close();
    }
  }

  it("reuses the list until the time is up, then shows another instance's change", async () => {
    const buttons = buttonsWith(1);
    await db.prisma.identityProvider.create({ data: provider('corp') });
    expect(await buttons()).toEqual(['Name of corp']);

    await elsewhere((other) => other.prisma.identityProvider.create({ data: provider('partner') }));
    expect(await buttons()).toEqual(['Name of corp']);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await buttons()).toEqual(['Name of corp', 'Name of partner']);
  });

  it('shows what this process adds, edits, switches off or deletes at once', async () => {
    const buttons = buttonsWith(3600);
    expect(await buttons()).toEqual([]);
    await db.prisma.identityProvider.create({ data: provider('corp') });
    expect(await buttons()).toEqual(['Name of corp']);
    await db.prisma.identityProvider.update({ where: { id: 'corp' }, data: { displayName: 'Corporate sign-in' } });
    expect(await buttons()).toEqual(['Corporate sign-in']);
    await db.prisma.identityProvider.update({ where: { id: 'corp' }, data: { enabled: false } });
    expect(await buttons()).toEqual([]);
    await db.prisma.identityProvider.update({ where: { id: 'corp' }, data: { enabled: true } });
    // Deleted in a transaction, as the admin API deletes a provider with its links.
    await db.prisma.$transaction(async (tx) => tx.identityProvider.deleteMany({ where: { id: 'corp' } }));
    expect(await buttons()).toEqual([]);
  });

  it('reads the list for every page with a TTL of 0', async () => {
    const buttons = buttonsWith(0);
    expect(await buttons()).toEqual([]);
    await elsewhere((other) => other.prisma.identityProvider.create({ data: provider('corp') }));
    expect(await buttons()).toEqual(['Name of corp']);
  });

  it('shares one read among the pages that ask at once', async () => {
    const federation = federationWith(3600);
    await db.prisma.identityProvider.create({ data: provider('corp') });
    const pages = await Promise.all(Array.from({ length: 8 }, () => federation.enabledProviders()));
    expect(new Set(pages).size).toBe(1);
    expect(pages[0]?.map((button) => button.id)).toEqual(['corp']);
  });
});
