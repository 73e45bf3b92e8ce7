// The engine asks for the registered resource on every token request that names one; each
// instance reuses what it read for CLIENT_CACHE_TTL, as it does clients (resources/engine.ts).
// Edits made in this process apply at once, edits made elsewhere once the entry expires, and an
// unknown indicator is never remembered. Which resources a resource server may introspect tokens
// for is reused the same way (tokenPolicies).
import type { KoaContextWithOIDC } from 'oidc-provider';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { resourceIndicators, tokenPolicies } from '../../src/resources/engine.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const API = 'https://api.cache.example';
const resource = (scope: string) => ({ id: API, name: 'API', scope, accessTokenFormat: 'opaque', accessTokenTtl: 600, introspectionClients: '' });
const ctx = {} as KoaContextWithOIDC;

describe.each(await flavours())('the resource cache on %s', (flavour) => {
  let db: MigratedDb;
  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.prisma.resource.deleteMany();
  });

  const scopeOf = async (indicators: ReturnType<typeof resourceIndicators>) => (await indicators.getResourceServerInfo!(ctx, API, {} as never)).scope;

  it("reuses a resource read from the database until the time is up, then sees another instance's edit", async () => {
    const indicators = resourceIndicators(db, 1);
    await db.prisma.resource.create({ data: resource('read') });
    expect(await scopeOf(indicators)).toBe('read');

    const other = await createDb(db);
    try {
      await other.prisma.resource.update({ where: { id: API }, data: { scope: 'read write' } });
    } finally {
      await other.close();
    }
    expect(await scopeOf(indicators)).toBe('read');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await scopeOf(indicators)).toBe('read write');
  });

  it('drops its entries as soon as this process writes a resource, and reads every time with a TTL of 0', async () => {
    const cached = resourceIndicators(db, 3600);
    const uncached = resourceIndicators(db, 0);
    await db.prisma.resource.create({ data: resource('read') });
    expect(await scopeOf(cached)).toBe('read');

    await db.prisma.resource.update({ where: { id: API }, data: { scope: 'write' } });
    expect(await scopeOf(cached)).toBe('write');

    const other = await createDb(db);
    try {
      await other.prisma.resource.update({ where: { id: API }, data: { scope: 'admin-free' } });
    } finally {
      await other.close();
    }
    expect(await scopeOf(uncached)).toBe('admin-free');

    await db.prisma.resource.deleteMany({ where: { id: API } });
    await expect(scopeOf(cached)).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it("reuses which resources a client may introspect as it reuses the resources: this process's edits at once, another instance's when the time is up", async () => {
    const policies = tokenPolicies(db, 1);
    const uncached = tokenPolicies(db, 0);
    const token = { clientId: 'app', aud: API };
    await db.prisma.resource.create({ data: { ...resource('read'), introspectionClients: 'gateway' } });
    expect(await policies.introspectionAllowed('gateway', token)).toBe(true);
    expect(await policies.introspectionAllowed('billing', token)).toBe(false);
    // Its own tokens, whatever the resources say.
    expect(await policies.introspectionAllowed('app', token)).toBe(true);

    // Written in this process: seen at once.
    await db.prisma.resource.update({ where: { id: API }, data: { introspectionClients: 'billing' } });
    expect(await policies.introspectionAllowed('gateway', token)).toBe(false);
    expect(await policies.introspectionAllowed('billing', token)).toBe(true);

    // Written by another instance: seen once the entry expires, and at once without a cache.
    const other = await createDb(db);
    try {
      await other.prisma.resource.update({ where: { id: API }, data: { introspectionClients: 'gateway' } });
    } finally {
      await other.close();
    }
    expect(await policies.introspectionAllowed('gateway', token)).toBe(false);
    expect(await uncached.introspectionAllowed('gateway', token)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await policies.introspectionAllowed('gateway', token)).toBe(true);
    expect(await policies.introspectionAllowed('billing', token)).toBe(false);
  });

  it('does not remember an indicator that is not registered: registering it elsewhere takes effect at once', async () => {
    const indicators = resourceIndicators(db, 3600);
    await expect(scopeOf(indicators)).rejects.toMatchObject({ error: 'invalid_target' });
    const other = await createDb(db);
    try {
      await other.prisma.resource.create({ data: resource('read') });
    } finally {
      await other.close();
    }
    expect(await scopeOf(indicators)).toBe('read');
  });
});
