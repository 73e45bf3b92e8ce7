// The statements written in SQL for speed (artifacts, a token with its session, grant and person, audit events, the user lookup,
// the settings and signing keys, the outbox, and a resource server's introspection; see
// src/db/dialect.ts) must read and write exactly what Prisma's query builder does, on SQLite and
// PostgreSQL alike: rows written one way are read back identically the other way (a person's groups too). They run three
// ways (src/db/executor.ts), each checked here: prepared once on the driver connection (the
// default), prepared on each use (DATABASE_PREPARED_STATEMENTS=false), and through a Prisma
// client (a transaction's handle, which has no executor of its own).
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientStore } from '../../src/clients/store.js';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { createAuditStore } from '../../src/audit/store.js';
import { createGroupStore } from '../../src/groups/store.js';
import { createFederationStore } from '../../src/federation/store.js';
import { createUserStore } from '../../src/people/store.js';
import { createResourceStore } from '../../src/resources/store.js';
import { createSettingStore } from '../../src/db/settings.js';
import { createSigningKeyStore } from '../../src/keys/store.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { counter, counterPair, counterRowKey } from '../../src/core/counters.js';
import { RateLimiterPrisma, RateLimiterRes } from 'rate-limiter-flexible';
import { createLogger } from '../../src/core/logger.js';
import { createAuditLog } from '../../src/audit/log.js';
import { createDb, type Db, type DbHandle } from '../../src/db/client.js';
import { sqliteExecutor } from '../../src/db/executor.js';
import { pgExecutor } from '../../src/db/pg-executor.js';
import { createTestDatabase, flavours, migratedDb, testPool, type MigratedDb } from '../helpers/databases.js';
import { TEST_SECRET } from '../helpers/gatehouse.js';

/** How the store under test runs its statements; the query builder always goes through `db.prisma`. */
const EXECUTORS: Record<string, (db: Db) => Promise<{ handle: DbHandle; close?: () => Promise<void> }>> = {
  'prepared on the driver': async (db) => ({ handle: db }),
  'prepared on each use': async (db) => {
    const unprepared = await createDb({ url: db.url, flavour: db.flavour, preparedStatements: false });
    return { handle: unprepared, close: () => unprepared.close() };
  },
  'through a Prisma client': async (db) => ({ handle: { prisma: db.prisma, flavour: db.flavour } }),
};

describe.each(
  (await flavours()).flatMap((flavour) => Object.keys(EXECUTORS).map((way) => [flavour, way] as const)),
)('hand-written SQL on %s, %s', (flavour, way) => {
  let db: MigratedDb;
  let handle: DbHandle;
  let closeHandle: (() => Promise<void>) | undefined;
  // Times must not depend on the process's time zone (pg reads and writes local time by default).
  const zone = process.env.TZ;
  beforeAll(async () => {
    process.env.TZ = 'Asia/Seoul';
    db = await migratedDb(flavour);
    ({ handle, close: closeHandle } = await EXECUTORS[way]!(db));
  });
  afterAll(async () => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
    await closeHandle?.();
    await db?.drop();
  });

  it('reads a person exactly as the query builder does, booleans, times and counters included', async () => {
    const users = createUserStore(handle);
    await users.create('u-plain', { email: 'Plain@Example.com', emailVerified: false, name: null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: null }, 'hash');
    await db.prisma.user.create({
      data: { id: 'u-full', email: 'full@example.com', emailVerified: true, passwordHash: 'hash', name: 'Full Name', locale: 'ko', disabled: true, totpSecretEncrypted: 'sealed', totpEnabledAt: new Date('2030-01-02T03:04:05.678Z'), totpLastStep: 123456789 },
    });
    for (const id of ['u-plain', 'u-full']) {
      expect(await users.findById(id)).toEqual(await db.prisma.user.findUnique({ where: { id } }));
    }
    // By email, as typed: normalized first.
    expect(await users.findByEmail(' PLAIN@example.COM ')).toEqual(await db.prisma.user.findUnique({ where: { email: 'plain@example.com' } }));
    expect(await users.findByEmail('full@example.com')).toEqual(await db.prisma.user.findUnique({ where: { id: 'u-full' } }));
    expect(await users.findByEmail('nobody@example.com')).toBeNull();
    expect(await users.findByEmail('nul\0@example.com')).toBeNull();
    expect(await users.findById('nobody')).toBeNull();
    expect(await users.findById('nul\0id')).toBeNull();
  });

  it("reads a person's group names (the groups claim) as the query builder finds them, sorted", async () => {
    const ops = await db.prisma.group.create({ data: { id: 'g-ops', name: 'ops' } });
    const admins = await db.prisma.group.create({ data: { id: 'g-admins', name: 'Admins' } });
    await db.prisma.groupMember.createMany({ data: [ops, admins].map((group) => ({ groupId: group.id, userId: 'u-grouped' })) });
    const groups = createGroupStore(handle);
    expect(await groups.namesOf('u-grouped')).toEqual(['Admins', 'ops']);
    expect(await groups.namesOf('u-nobody')).toEqual([]);
    expect(await groups.namesOf('nul\0id')).toEqual([]);
  });

  it("reads a client's metadata exactly as the query builder does, with its client_id", async () => {
    const metadata = { client_name: '앱 "quoted" \\ name', redirect_uris: ['https://rp.example/cb'], nested: { list: [1, true, null, { deep: 'ok' }] }, client_secret: 'gatehouse-hashed-secret~x' };
    await db.prisma.client.create({ data: { id: 'rp-raw', metadata } });
    const clients = createClientStore(handle);
    const built = await db.prisma.client.findUnique({ where: { id: 'rp-raw' }, select: { metadata: true } });
    expect(await clients.find('rp-raw')).toEqual({ ...(built?.metadata as object), client_id: 'rp-raw' });
    expect(await clients.find('rp-raw')).toEqual({ ...metadata, client_id: 'rp-raw' });
    expect(await clients.find('rp-nothing')).toBeNull();
    expect(await clients.find('rp-raw\0')).toBeNull();
    await db.prisma.client.delete({ where: { id: 'rp-raw' } });
  });

  it('reads a resource exactly as the query builder does', async () => {
    await db.prisma.resource.create({ data: { id: 'https://api.example', name: 'API', scope: 'read write', accessTokenFormat: 'opaque', accessTokenTtl: 600, introspectionClients: 'a b' } });
    await db.prisma.resource.create({ data: { id: 'https://jwt.example', scope: 'read' } });
    const resources = createResourceStore(handle);
    for (const id of ['https://api.example', 'https://jwt.example']) {
      expect(await resources.find(id)).toEqual(await db.prisma.resource.findUnique({ where: { id } }));
    }
    expect(await resources.find('https://nothing.example')).toBeNull();
    expect(await resources.find('nul\0id')).toBeNull();
  });

  it('finds the resources a client may introspect, and the longest JWT access token lifetime, as the query builder does', async () => {
    await db.prisma.resource.createMany({
      data: [
        { id: 'https://orders.example', scope: 'read', accessTokenFormat: 'opaque', introspectionClients: 'gateway billing' },
        { id: 'https://stock.example', scope: 'read', accessTokenTtl: 7200, introspectionClients: 'Gateway gateway-2' },
        { id: 'https://long.example', scope: 'read', accessTokenFormat: 'opaque', accessTokenTtl: 86_400, introspectionClients: 'gateway' },
      ],
    });
    const resources = createResourceStore(handle);
    // Only a whole name in the list counts: not another case, nor a longer name that holds it.
    const builder = async (clientId: string) =>
      (await db.prisma.resource.findMany({ where: { introspectionClients: { contains: clientId } } }))
        .filter((r) => r.introspectionClients.split(' ').includes(clientId))
        .map((r) => r.id)
        .sort();
    for (const clientId of ['gateway', 'Gateway', 'gateway-2', 'billing', 'bill', 'nobody', '%', '_']) {
      expect((await resources.introspectableBy(clientId)).sort(), clientId).toEqual(await builder(clientId));
    }
    expect((await resources.introspectableBy('gateway')).sort()).toEqual(['https://long.example', 'https://orders.example']);
    expect(await resources.introspectableBy('gateway\0')).toEqual([]);
    expect(await resources.introspectableBy('')).toEqual([]);
    // Opaque tokens are not signed: a day-long opaque lifetime does not count.
    const { _max } = await db.prisma.resource.aggregate({ _max: { accessTokenTtl: true }, where: { accessTokenFormat: { not: 'opaque' } } });
    expect(await resources.longestJwtAccessTokenTtl()).toBe(_max.accessTokenTtl);
    expect(await resources.longestJwtAccessTokenTtl()).toBeGreaterThanOrEqual(7200);
    expect(await resources.longestJwtAccessTokenTtl()).toBeLessThan(86_400);
  });

  it("lists the enabled identity providers (the sign-in page's buttons) as the query builder finds them, by id", async () => {
    const store = createFederationStore(handle);
    const provider = (id: string, enabled: boolean, settings: object) => ({ id, displayName: `Name of ${id}`, kind: 'oidc', enabled, settings: { issuer: 'https://idp.example', client_id: 'c', trusted: false, create_accounts: false, link_by_verified_email: false, ...settings }, clientSecretEncrypted: 'sealed' });
    await store.insertProvider(provider('b-idp', true, { icon_uri: 'https://idp.example/icon.png', scopes: ['openid', 'email'] }));
    await store.insertProvider(provider('a-idp', true, {}));
    await store.insertProvider(provider('c-off', false, { icon_uri: 'https://idp.example/off.png' }));
    await store.insertProvider(provider('Z-idp', true, { nested: { deep: [1, 'two', null] } }));
    const built = await db.prisma.identityProvider.findMany({ where: { enabled: true }, orderBy: { id: 'asc' }, select: { id: true, displayName: true, settings: true } });
    expect(built.map((row) => row.id)).toHaveLength(3);
    expect(await store.listEnabled()).toEqual(built);
    await db.prisma.identityProvider.deleteMany();
    expect(await store.listEnabled()).toEqual([]);
  });

  it("counts failures exactly as rate-limiter-flexible's Prisma store does, in the same rows", async () => {
    const options = { storeClient: db.prisma, tableName: 'rateLimiterFlexible', points: 3, duration: 60, clearExpiredByTimeout: false };
    const ours = counter(handle, 'ours', 3, 60);
    const theirs = new RateLimiterPrisma({ ...options, keyPrefix: 'theirs' });
    const answer = (res: RateLimiterRes) => ({ consumed: res.consumedPoints, remaining: res.remainingPoints, first: res.isFirstInDuration, windowLeft: Math.round(res.msBeforeNext / 1000) });
    const steps: [string, (limiter: RateLimiterPrisma) => Promise<unknown>][] = [
      ['first penalty', (l) => l.penalty('k')],
      ['second penalty', (l) => l.penalty('k', 2)],
      ['reward', (l) => l.reward('k')],
      ['get', (l) => l.get('k')],
      ['get nothing', (l) => l.get('nobody')],
      ['block', (l) => l.block('k', 300)],
      ['get blocked', (l) => l.get('k')],
      ['delete', (l) => l.delete('k')],
      ['delete nothing', (l) => l.delete('k')],
      ['after delete', (l) => l.penalty('k')],
    ];
    for (const [step, run] of steps) {
      const [mine, reference] = [await run(ours), await run(theirs)];
      const view = (value: unknown) => (value instanceof RateLimiterRes ? answer(value) : value);
      expect(view(mine), step).toEqual(view(reference));
    }
    // An expired window starts again at the new points, for both.
    for (const prefix of ['ours', 'theirs']) await db.prisma.rateLimiterFlexible.update({ where: { key: `${prefix}:k` }, data: { points: 7, expire: new Date(Date.now() - 1000) } });
    expect(answer(await ours.penalty('k'))).toEqual(answer(await theirs.penalty('k')));
    const rows = await db.prisma.rateLimiterFlexible.findMany({ where: { key: { in: ['ours:k', 'theirs:k'] } }, orderBy: { key: 'asc' } });
    expect(rows.map((r) => r.points)).toEqual([1, 1]);
    expect(Math.abs(rows[0]!.expire!.getTime() - rows[1]!.expire!.getTime())).toBeLessThan(5000);
  });

  it('counts, reads and clears a key holding a NUL character (which PostgreSQL refuses in text) like any other, in a row whose key has none', async () => {
    const limiter = counter(handle, 'nul', 3, 60);
    const key = 'client\0id 127.0.0.1';
    expect((await limiter.penalty(key)).consumedPoints).toBe(1);
    expect((await limiter.penalty(key)).consumedPoints).toBe(2);
    expect((await limiter.get(key))?.consumedPoints).toBe(2);
    const stored = counterRowKey('nul', key);
    expect(stored).not.toContain('\0');
    expect((await db.prisma.rateLimiterFlexible.findUnique({ where: { key: stored } }))?.points).toBe(2);
    // Another key with a NUL has its own row.
    expect((await limiter.penalty('client\0other 127.0.0.1')).consumedPoints).toBe(1);
    expect(await limiter.delete(key)).toBe(true);
    expect(await limiter.get(key)).toBeNull();

    const pair = counterPair(handle);
    const [first, second] = [counterRowKey('nul-a', 'a\0'), counterRowKey('nul-b', 'b\0')];
    expect(await pair.count(first, second, 60)).toEqual([1, 1]);
    expect(await pair.count(first, second, 60)).toEqual([2, 2]);
    await pair.clearAndTakeBack(first, second);
    expect(await counter(handle, 'nul-a', 3, 60).get('a\0')).toBeNull();
    expect((await counter(handle, 'nul-b', 3, 60).get('b\0'))?.consumedPoints).toBe(1);
  });

  it('counts two rows in one statement as two penalties do, and clears one and takes a point back from the other as delete and reward do', async () => {
    const pair = counterPair(handle);
    const theirs = (keyPrefix: string) => new RateLimiterPrisma({ storeClient: db.prisma, tableName: 'rateLimiterFlexible', keyPrefix, points: 3, duration: 60, clearExpiredByTimeout: false });
    const [theirA, theirB] = [theirs('theirs-a'), theirs('theirs-b')];
    const row = (key: string) => db.prisma.rateLimiterFlexible.findUnique({ where: { key } });
    const pointsOf = async (key: string) => (await row(key))?.points;
    // A first count opens both windows, later ones add to them.
    for (const expected of [1, 2, 3]) {
      const [a, b] = await pair.count('ours-a:k', 'ours-b:k', 60);
      const [refA, refB] = [await theirA.penalty('k'), await theirB.penalty('k')];
      expect([a, b]).toEqual([refA.consumedPoints, refB.consumedPoints]);
      expect([a, b]).toEqual([expected, expected]);
    }
    const window = (await row('ours-a:k'))!.expire!.getTime() - Date.now();
    expect(window).toBeGreaterThan(55_000);
    expect(Math.abs((await row('ours-a:k'))!.expire!.getTime() - (await row('theirs-a:k'))!.expire!.getTime())).toBeLessThan(5000);
    // A window that is over starts again at one point, the other row counts on.
    for (const key of ['ours-a:k', 'theirs-a:k']) await db.prisma.rateLimiterFlexible.update({ where: { key }, data: { points: 7, expire: new Date(Date.now() - 1000) } });
    expect(await pair.count('ours-a:k', 'ours-b:k', 60)).toEqual([(await theirA.penalty('k')).consumedPoints, (await theirB.penalty('k')).consumedPoints]);
    expect(await pointsOf('ours-a:k')).toBe(1);

    // Cleared: gone for every reader and for the next count; the other row gives one point back.
    await pair.clearAndTakeBack('ours-a:k', 'ours-b:k');
    await Promise.all([theirA.delete('k'), theirB.reward('k')]);
    const ourA = counter(handle, 'ours-a', 3, 60);
    const ourB = counter(handle, 'ours-b', 3, 60);
    expect(await ourA.get('k')).toBeNull();
    expect(await theirA.get('k')).toBeNull();
    expect((await ourB.get('k'))?.consumedPoints).toBe((await theirB.get('k'))?.consumedPoints);
    expect(await pointsOf('ours-b:k')).toBe(3);
    const [again] = await pair.count('ours-a:k', 'ours-b:k', 60);
    expect(again).toBe((await theirA.penalty('k')).consumedPoints);
    expect(again).toBe(1);
    expect((await row('ours-a:k'))!.expire!.getTime()).toBeGreaterThan(Date.now() + 55_000);
    // Rows that are not there stay not there.
    await pair.clearAndTakeBack('nobody-a:k', 'nobody-b:k');
    expect(await row('nobody-a:k')).toBeNull();
    expect(await row('nobody-b:k')).toBeNull();
  });

  it("finds an account's newest live grant for a client, as the query builder orders them", async () => {
    const artifacts = createArtifactStore(handle);
    const now = new Date('2030-05-06T07:08:09.123Z');
    const grant = (id: string, createdAt: Date, expiresAt: Date | null, accountId = 'acc-g', clientId = 'client-g') =>
      db.prisma.oidcArtifact.create({ data: { model: 'Grant', id, payload: { kind: 'Grant', jti: id, openid: { scope: 'openid email' } }, grantId: id, accountId, clientId, createdAt, expiresAt } });
    await grant('g-old', new Date('2030-01-01T00:00:00.000Z'), null);
    await grant('g-new', new Date('2030-02-01T00:00:00.000Z'), new Date(now.getTime() + 1));
    await grant('g-newest-expired', new Date('2030-03-01T00:00:00.000Z'), now);
    await grant('g-other-client', new Date('2030-04-01T00:00:00.000Z'), null, 'acc-g', 'client-other');
    const built = await db.prisma.oidcArtifact.findFirst({
      where: { model: 'Grant', accountId: 'acc-g', clientId: 'client-g', OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
      orderBy: { createdAt: 'desc' },
    });
    expect(built?.id).toBe('g-new');
    const latest = await artifacts.latestGrant('acc-g', 'client-g', now);
    expect(latest?.id).toBe(built?.id);
    // Its row as find reads it.
    expect(latest?.row).toEqual(await artifacts.find('Grant', 'g-new', now));
    expect((await artifacts.latestGrant('acc-g', 'client-g', new Date(now.getTime() + 1)))?.id).toBe('g-old');
    expect(await artifacts.latestGrant('acc-g', 'nobody', now)).toBeNull();
    expect(await artifacts.latestGrant('acc-g\0', 'client-g', now)).toBeNull();
  });

  it('reads a token with its session, its grant and its person in one statement, exactly as the four lookups read them', async () => {
    const artifacts = createArtifactStore(handle);
    const users = createUserStore(handle);
    const now = new Date('2030-05-06T07:08:09.123Z');
    const later = new Date(now.getTime() + 60_000);
    const row = (model: string, id: string, payload: Record<string, unknown>, extra: { grantId?: string; uid?: string; accountId?: string; expiresAt?: Date | null; consumedAt?: Date } = {}) =>
      db.prisma.oidcArtifact.create({
        data: { model, id, payload: payload as object, grantId: extra.grantId ?? null, uid: extra.uid ?? null, accountId: extra.accountId ?? null, expiresAt: extra.expiresAt ?? null, consumedAt: extra.consumedAt ?? null },
      });
    // Every kind of column a person has: booleans, times, a counter, nulls (the disabled flag is findAccount's to apply).
    await db.prisma.user.create({
      data: { id: 'u-bound', email: 'bound@example.com', emailVerified: true, passwordHash: null, name: '한 Bound', givenName: 'Bo', locale: 'ko', disabled: true, totpSecretEncrypted: 'sealed', totpEnabledAt: new Date('2030-01-02T03:04:05.678Z'), totpLastStep: 987654321 },
    });
    await db.prisma.user.create({ data: { id: 'u-plain-bound', email: 'plain-bound@example.com' } });
    await row('Session', 's-b', { uid: 'uid-b', accountId: 'acc', nested: { ok: [1, '한'] } }, { uid: 'uid-b', accountId: 'u-bound', expiresAt: later });
    await row('Grant', 'g-b', { accountId: 'acc', clientId: 'c' }, { grantId: 'g-b', accountId: 'u-bound', expiresAt: later });
    await row('AccessToken', 'at-both', { sessionUid: 'uid-b', grantId: 'g-b' }, { grantId: 'g-b', accountId: 'u-bound', expiresAt: later });
    await row('RefreshToken', 'rt-consumed', { grantId: 'g-b' }, { grantId: 'g-b', accountId: 'u-plain-bound', consumedAt: now });
    await row('AccessToken', 'at-session-gone', { sessionUid: 'uid-none', grantId: 'g-none' }, { grantId: 'g-none', accountId: 'u-gone' });
    await row('AccessToken', 'at-no-account', { grantId: 'g-b' }, { grantId: 'g-b' });
    await row('Session', 's-expired', { uid: 'uid-x' }, { uid: 'uid-x', expiresAt: now });
    await row('Grant', 'g-expired', {}, { grantId: 'g-expired', expiresAt: now });
    await row('AuthorizationCode', 'code-expired-bindings', { sessionUid: 'uid-x' }, { grantId: 'g-expired', accountId: 'u-bound' });

    const separately = async (model: string, id: string, at: Date) => {
      const token = await artifacts.find(model, id, at);
      if (!token) return null;
      const uid = token.payload.sessionUid;
      const accountId = (await db.prisma.oidcArtifact.findUnique({ where: { model_id: { model, id } } }))?.accountId ?? null;
      const person = accountId ? await db.prisma.user.findUnique({ where: { id: accountId } }) : null;
      // The people store's own lookup reads the same person.
      expect(person).toEqual(accountId ? await users.findById(accountId) : null);
      return {
        token,
        session: typeof uid === 'string' ? await artifacts.findBy('Session', 'uid', uid, at) : null,
        grant: token.grantId ? await artifacts.find('Grant', token.grantId, at) : null,
        accountId,
        person,
      };
    };
    for (const [model, id] of [['AccessToken', 'at-both'], ['RefreshToken', 'rt-consumed'], ['AccessToken', 'at-session-gone'], ['AccessToken', 'at-no-account'], ['AuthorizationCode', 'code-expired-bindings'], ['AccessToken', 'nothing']] as const) {
      expect(await artifacts.findWithBindings(model, id, now), `${model} ${id}`).toEqual(await separately(model, id, now));
    }
    expect((await artifacts.findWithBindings('AccessToken', 'at-both', now))?.session?.payload).toEqual({ uid: 'uid-b', accountId: 'acc', nested: { ok: [1, '한'] } });
    expect(await artifacts.findWithBindings('AccessToken', 'at-both', now)).toMatchObject({ accountId: 'u-bound', person: { id: 'u-bound', disabled: true, emailVerified: true, totpLastStep: 987654321, passwordHash: null } });
    expect(await artifacts.findWithBindings('RefreshToken', 'rt-consumed', now)).toMatchObject({ person: { id: 'u-plain-bound', disabled: false, emailVerified: false, totpEnabledAt: null, totpLastStep: null } });
    expect(await artifacts.findWithBindings('AccessToken', 'at-session-gone', now)).toMatchObject({ accountId: 'u-gone', person: null });
    // Each part expires by the time given, to the millisecond.
    expect(await artifacts.findWithBindings('AccessToken', 'at-both', new Date(later.getTime() - 1))).toMatchObject({ session: { payload: { uid: 'uid-b' } }, grant: { grantId: 'g-b' } });
    expect(await artifacts.findWithBindings('AccessToken', 'at-both', later)).toBeNull();
    expect(await artifacts.findWithBindings('AccessToken', 'at-both\0', now)).toBeNull();
    await db.prisma.oidcArtifact.deleteMany({ where: { id: { in: ['s-b', 'g-b', 'at-both', 'rt-consumed', 'at-session-gone', 'at-no-account', 's-expired', 'g-expired', 'code-expired-bindings'] } } });
    await db.prisma.user.deleteMany({ where: { id: { in: ['u-bound', 'u-plain-bound'] } } });
  });

  it("reads a session with its person and its grant for a client in one statement, exactly as the three lookups read them", async () => {
    const artifacts = createArtifactStore(handle);
    const users = createUserStore(handle);
    const now = new Date('2030-05-06T07:08:09.123Z');
    const later = new Date(now.getTime() + 60_000);
    const row = (model: string, id: string, payload: Record<string, unknown>, extra: { accountId?: string; expiresAt?: Date | null } = {}) =>
      db.prisma.oidcArtifact.create({ data: { model, id, payload: payload as object, grantId: model === 'Grant' ? id : null, accountId: extra.accountId ?? null, expiresAt: extra.expiresAt ?? null } });
    await db.prisma.user.create({ data: { id: 'u-session', email: 'session@example.com', emailVerified: true, name: '세션 Person', disabled: true, totpLastStep: 12345 } });
    // Client ids a JSON path would have to quote: a dot, quotes, a backslash, Hangul.
    const odd = 'odd.client "q" \\ \'s 한';
    const authorizations = { 'client-s': { sid: 'sid-1', grantId: 'g-s' }, [odd]: { grantId: 'g-odd' }, 'client-gone': { grantId: 'g-none' }, 'client-expired': { grantId: 'g-s-expired' }, 'client-no-grant': { sid: 'sid-2' } };
    await row('Session', 's-full', { uid: 'uid-s', accountId: 'u-session', authorizations, nested: { ok: [1, '한'] } }, { accountId: 'u-session', expiresAt: later });
    await row('Session', 's-anonymous', { uid: 'uid-anon' });
    await row('Session', 's-person-gone', { uid: 'uid-gone', authorizations }, { accountId: 'u-gone' });
    await row('Session', 's-expired', { uid: 'uid-x', authorizations }, { accountId: 'u-session', expiresAt: now });
    await row('Grant', 'g-s', { accountId: 'u-session', clientId: 'client-s' }, { expiresAt: later });
    await row('Grant', 'g-odd', { accountId: 'u-session', clientId: odd });
    await row('Grant', 'g-s-expired', {}, { expiresAt: now });
    // Not a session's: a session's id found under another model is not read as one.
    await row('AccessToken', 's-token', { uid: 'uid-t', authorizations }, { accountId: 'u-session' });

    const separately = async (id: string, clientId: string | null, at: Date) => {
      const session = await artifacts.find('Session', id, at);
      if (!session) return null;
      const accountId = (await db.prisma.oidcArtifact.findUnique({ where: { model_id: { model: 'Session', id } } }))?.accountId ?? null;
      const grantId = clientId === null ? undefined : (session.payload.authorizations as Record<string, { grantId?: string }> | undefined)?.[clientId]?.grantId;
      return {
        session,
        grant: grantId ? await artifacts.find('Grant', grantId, at) : null,
        accountId,
        person: accountId ? await users.findById(accountId) : null,
      };
    };
    for (const id of ['s-full', 's-anonymous', 's-person-gone', 's-expired', 's-token', 'nothing']) {
      for (const clientId of ['client-s', odd, 'client-gone', 'client-expired', 'client-no-grant', 'client-unknown', null]) {
        expect(await artifacts.findSessionWithBindings(id, clientId, now), `${id} ${clientId}`).toEqual(await separately(id, clientId, now));
      }
    }
    expect(await artifacts.findSessionWithBindings('s-full', 'client-s', now)).toMatchObject({
      session: { payload: { nested: { ok: [1, '한'] } } },
      grant: { grantId: 'g-s', payload: { clientId: 'client-s' } },
      accountId: 'u-session',
      person: { id: 'u-session', disabled: true, emailVerified: true, totpLastStep: 12345, passwordHash: null },
    });
    expect(await artifacts.findSessionWithBindings('s-full', odd, now)).toMatchObject({ grant: { grantId: 'g-odd' } });
    // Each part expires by the time given, to the millisecond; a NUL anywhere finds nothing.
    expect(await artifacts.findSessionWithBindings('s-full', 'client-s', new Date(later.getTime() - 1))).toMatchObject({ grant: { grantId: 'g-s' } });
    expect(await artifacts.findSessionWithBindings('s-full', 'client-s', later)).toBeNull();
    expect(await artifacts.findSessionWithBindings('s-full\0', 'client-s', now)).toBeNull();
    expect(await artifacts.findSessionWithBindings('s-full', 'client-s\0', now)).toMatchObject({ accountId: 'u-session', grant: null });
    await db.prisma.oidcArtifact.deleteMany({ where: { id: { in: ['s-full', 's-anonymous', 's-person-gone', 's-expired', 'g-s', 'g-odd', 'g-s-expired', 's-token'] } } });
    await db.prisma.user.deleteMany({ where: { id: 'u-session' } });
  });

  it("reads an interaction with its login's person and their newest grant for its client in one statement, exactly as the three lookups read them", async () => {
    const artifacts = createArtifactStore(handle);
    const users = createUserStore(handle);
    const now = new Date('2030-05-06T07:08:09.123Z');
    const later = new Date(now.getTime() + 60_000);
    const odd = 'odd.client "q" \\ \'s 한';
    await db.prisma.user.create({ data: { id: 'u-interaction', email: 'interaction@example.com', name: '로그인', emailVerified: true, totpLastStep: 7 } });
    const interaction = (id: string, payload: Record<string, unknown>, expiresAt: Date | null = later) =>
      db.prisma.oidcArtifact.create({ data: { model: 'Interaction', id, payload: payload as object, expiresAt } });
    const grant = (id: string, clientId: string, createdAt: Date, expiresAt: Date | null, accountId = 'u-interaction') =>
      db.prisma.oidcArtifact.create({ data: { model: 'Grant', id, payload: { accountId, clientId }, grantId: id, accountId, clientId, createdAt, expiresAt } });
    await interaction('i-signed-in', { params: { client_id: 'client-i' }, result: { login: { accountId: 'u-interaction' } }, nested: { ok: [1, '한'] } });
    await interaction('i-odd-client', { params: { client_id: odd }, result: { login: { accountId: 'u-interaction' } } });
    await interaction('i-no-grant', { params: { client_id: 'client-none' }, result: { login: { accountId: 'u-interaction' } } });
    await interaction('i-person-gone', { params: { client_id: 'client-i' }, result: { login: { accountId: 'u-gone' } } });
    await interaction('i-not-signed-in', { params: { client_id: 'client-i' } });
    await interaction('i-consented', { params: { client_id: 'client-i' }, result: { consent: { grantId: 'g-i-new' } } });
    await interaction('i-expired', { params: { client_id: 'client-i' }, result: { login: { accountId: 'u-interaction' } } }, now);
    await grant('g-i-old', 'client-i', new Date('2030-01-01T00:00:00.000Z'), null);
    await grant('g-i-new', 'client-i', new Date('2030-02-01T00:00:00.000Z'), later);
    await grant('g-i-newest-expired', 'client-i', new Date('2030-03-01T00:00:00.000Z'), now);
    await grant('g-i-odd', odd, new Date('2030-01-01T00:00:00.000Z'), null);
    await grant('g-i-gone', 'client-i', new Date('2030-04-01T00:00:00.000Z'), null, 'u-gone');

    const separately = async (id: string, at: Date) => {
      const found = await artifacts.find('Interaction', id, at);
      if (!found) return null;
      const accountId = (found.payload.result as { login?: { accountId?: string } } | undefined)?.login?.accountId;
      const clientId = (found.payload.params as { client_id?: string }).client_id;
      return {
        interaction: found,
        person: accountId ? await users.findById(accountId) : null,
        latestGrant: accountId && clientId ? await artifacts.latestGrant(accountId, clientId, at) : null,
      };
    };
    for (const id of ['i-signed-in', 'i-odd-client', 'i-no-grant', 'i-person-gone', 'i-not-signed-in', 'i-consented', 'i-expired', 'nothing']) {
      expect(await artifacts.findInteractionWithBindings(id, now), id).toEqual(await separately(id, now));
    }
    expect(await artifacts.findInteractionWithBindings('i-signed-in', now)).toMatchObject({
      interaction: { payload: { nested: { ok: [1, '한'] } } },
      person: { id: 'u-interaction', name: '로그인', emailVerified: true, totpLastStep: 7 },
      latestGrant: { id: 'g-i-new', row: { grantId: 'g-i-new', payload: { clientId: 'client-i' } } },
    });
    expect(await artifacts.findInteractionWithBindings('i-odd-client', now)).toMatchObject({ latestGrant: { id: 'g-i-odd' } });
    // A grant gone by that time gives way to the one before it; an interaction gone by then, to nothing.
    expect(await artifacts.findInteractionWithBindings('i-signed-in', later)).toBeNull();
    await db.prisma.oidcArtifact.update({ where: { model_id: { model: 'Interaction', id: 'i-signed-in' } }, data: { expiresAt: null } });
    expect(await artifacts.findInteractionWithBindings('i-signed-in', later)).toMatchObject({ latestGrant: { id: 'g-i-old' } });
    expect(await artifacts.findInteractionWithBindings('i-signed-in\0', now)).toBeNull();
    await db.prisma.oidcArtifact.deleteMany({ where: { id: { startsWith: 'i-' } } });
    await db.prisma.oidcArtifact.deleteMany({ where: { id: { startsWith: 'g-i-' } } });
    await db.prisma.user.deleteMany({ where: { id: 'u-interaction' } });
  });

  it('stores artifacts the query builder reads back, and reads what it stored', async () => {
    const artifacts = createArtifactStore(handle);
    const now = new Date('2030-05-06T07:08:09.123Z');
    const payload = { jti: 'at-1', nested: { list: [1, 'two', null], unicode: '한국어 ✓' }, exp: 1 };
    const lookups = { grantId: 'g-1', uid: 'uid-1', userCode: null, accountId: 'acc-1', clientId: 'client-1' };
    await artifacts.save('AccessToken', 'at-1', payload, lookups, new Date(now.getTime() + 60_000));
    const built = await db.prisma.oidcArtifact.findUnique({ where: { model_id: { model: 'AccessToken', id: 'at-1' } } });
    expect(built).toMatchObject({ payload, ...lookups, expiresAt: new Date(now.getTime() + 60_000), consumedAt: null });
    // createdAt is the time of the first save, as Prisma would store it.
    expect(Math.abs((built?.createdAt as Date).getTime() - Date.now())).toBeLessThan(60_000);

    await db.prisma.oidcArtifact.create({ data: { model: 'Session', id: 's-1', payload: { uid: 'uid-2' }, uid: 'uid-2', expiresAt: null } });
    expect(await artifacts.find('Session', 's-1', now)).toEqual({ payload: { uid: 'uid-2' }, grantId: null, consumedAt: null, expiresAt: null });
    expect(await artifacts.findBy('Session', 'uid', 'uid-2', now)).toMatchObject({ payload: { uid: 'uid-2' } });

    // Expiry is compared with the time given, to the millisecond.
    expect(await artifacts.find('AccessToken', 'at-1', new Date(now.getTime() + 59_999))).toMatchObject({ payload });
    expect(await artifacts.find('AccessToken', 'at-1', new Date(now.getTime() + 60_000))).toBeNull();

    // An upsert replaces the payload, lookups and expiry; consumption is one conditional update.
    await artifacts.save('AccessToken', 'at-1', { jti: 'at-1', v: 2 }, { ...lookups, grantId: 'g-2' }, null);
    expect(await artifacts.find('AccessToken', 'at-1', now)).toEqual({ payload: { jti: 'at-1', v: 2 }, grantId: 'g-2', consumedAt: null, expiresAt: null });
    expect(await artifacts.consume('AccessToken', 'at-1', now)).toBe(true);
    expect(await artifacts.consume('AccessToken', 'at-1', now)).toBe(false);
    expect((await db.prisma.oidcArtifact.findUnique({ where: { model_id: { model: 'AccessToken', id: 'at-1' } } }))?.consumedAt).toEqual(now);
    expect(await artifacts.grantIdOf('AccessToken', 'at-1')).toBe('g-2');

    // A later save may clear look-ups; it keeps when the row was made and whether it was consumed.
    await artifacts.save('AccessToken', 'at-1', { jti: 'at-1', v: 3 }, { grantId: null, uid: null, userCode: null, accountId: null, clientId: null }, null);
    const resaved = await db.prisma.oidcArtifact.findUnique({ where: { model_id: { model: 'AccessToken', id: 'at-1' } } });
    expect(resaved).toMatchObject({ grantId: null, uid: null, accountId: null, clientId: null, consumedAt: now, createdAt: built?.createdAt });

    await artifacts.destroy('AccessToken', 'at-1');
    expect(await db.prisma.oidcArtifact.count({ where: { model: 'AccessToken' } })).toBe(0);

    // A device code found by its user code; an expired code is neither found nor consumed.
    await artifacts.save('DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT' }, { ...lookups, userCode: 'WDJB-MJHT' }, new Date(now.getTime() + 1000));
    expect(await artifacts.findBy('DeviceCode', 'userCode', 'WDJB-MJHT', now)).toMatchObject({ payload: { userCode: 'WDJB-MJHT' } });
    expect(await artifacts.findBy('DeviceCode', 'userCode', 'WDJB-MJHT', new Date(now.getTime() + 1000))).toBeNull();
    expect(await artifacts.consume('DeviceCode', 'dc-1', new Date(now.getTime() + 1000))).toBe(false);

    // Ids with a NUL character (which PostgreSQL cannot store) match nothing and fail nothing.
    expect(await artifacts.find('DeviceCode', 'dc-1\0', now)).toBeNull();
    expect(await artifacts.findBy('DeviceCode', 'uid', 'x\0', now)).toBeNull();
    expect(await artifacts.consume('DeviceCode', 'dc-1\0', now)).toBe(false);
    expect(await artifacts.grantIdOf('DeviceCode', 'dc-1\0')).toBeNull();
    await artifacts.destroy('DeviceCode', 'dc-1\0');
    expect(await db.prisma.oidcArtifact.count({ where: { model: 'DeviceCode' } })).toBe(1);
  });

  it("deletes a grant's artifacts, of one model or of all, exactly those the query builder finds by the grant", async () => {
    const artifacts = createArtifactStore(handle);
    const row = (model: string, id: string, grantId: string | null) => ({ model, id, payload: { jti: id }, grantId, expiresAt: null });
    await db.prisma.oidcArtifact.createMany({
      data: [
        row('AccessToken', 'dg-at-1', 'dg-1'),
        row('AccessToken', 'dg-at-2', 'dg-1'),
        row('RefreshToken', 'dg-rt-1', 'dg-1'),
        row('Grant', 'dg-1', 'dg-1'),
        row('AccessToken', 'dg-at-3', 'dg-2'),
        row('AccessToken', 'dg-at-4', null),
      ],
    });
    const left = async () => (await db.prisma.oidcArtifact.findMany({ where: { id: { startsWith: 'dg-' } }, select: { id: true } })).map((r) => r.id).sort();
    // The engine's revocation, model by model.
    const found = await db.prisma.oidcArtifact.count({ where: { model: 'AccessToken', grantId: 'dg-1' } });
    expect(await artifacts.destroyByGrantId('dg-1', 'AccessToken')).toBe(found);
    expect(found).toBe(2);
    expect(await left()).toEqual(['dg-1', 'dg-at-3', 'dg-at-4', 'dg-rt-1']);
    expect(await artifacts.destroyByGrantId('dg-1', 'AuthorizationCode')).toBe(0);
    // All of a grant at once; another grant's and grantless artifacts stay.
    expect(await artifacts.destroyByGrantId('dg-1')).toBe(2);
    expect(await left()).toEqual(['dg-at-3', 'dg-at-4']);
    expect(await artifacts.destroyByGrantId('dg-2\0')).toBe(0);
    expect(await left()).toEqual(['dg-at-3', 'dg-at-4']);
  });

  it('writes audit events, one or many in a statement, that the query builder lists', async () => {
    const audit = createAuditStore(handle);
    const at = new Date('2030-07-08T09:10:11.012Z');
    await audit.record({ type: 'token.issued', clientId: 'c', details: { grant_type: 'client_credentials' } }, at);
    await audit.recordMany([
      { event: { type: 'sign_in.failure', accountId: 'a', ip: '127.0.0.1', userAgent: 'x'.repeat(600) }, at: new Date(at.getTime() + 1) },
      { event: { type: 'logout', accountId: 'a' }, at: new Date(at.getTime() + 2) },
    ]);
    const rows = await db.prisma.auditEvent.findMany({ where: { at: { gte: at } }, orderBy: { at: 'asc' } });
    expect(rows.map(({ type, at: when, clientId, accountId, ip, details }) => ({ type, at: when, clientId, accountId, ip, details }))).toEqual([
      { type: 'token.issued', at, clientId: 'c', accountId: null, ip: null, details: { grant_type: 'client_credentials' } },
      { type: 'sign_in.failure', at: new Date(at.getTime() + 1), clientId: null, accountId: 'a', ip: '127.0.0.1', details: null },
      { type: 'logout', at: new Date(at.getTime() + 2), clientId: null, accountId: 'a', ip: null, details: null },
    ]);
    expect(rows[1]?.userAgent).toHaveLength(512);
    expect(await audit.list({ since: at })).toHaveLength(3);
  });

  it('reads settings as the query builder does, creates one only when it is missing, and replaces a stored one', async () => {
    const settings = createSettingStore(handle);
    await db.prisma.setting.create({ data: { key: 'kept', valueEncrypted: 'sealed-kept' } });
    expect(await settings.get('kept')).toBe((await db.prisma.setting.findUnique({ where: { key: 'kept' } }))?.valueEncrypted);
    expect(await settings.get('missing')).toBeNull();
    // First writer wins: an existing value is returned and left as it is.
    expect(await settings.getOrCreate('kept', 'another')).toBe('sealed-kept');
    const before = Date.now();
    expect(await settings.getOrCreate('new', 'sealed-new')).toBe('sealed-new');
    expect(await db.prisma.setting.findMany({ where: { key: { in: ['kept', 'new'] } }, orderBy: { key: 'asc' }, select: { key: true, valueEncrypted: true } })).toEqual([
      { key: 'kept', valueEncrypted: 'sealed-kept' },
      { key: 'new', valueEncrypted: 'sealed-new' },
    ]);
    // The time it was created reads back through the query builder as the time it was.
    const created = (await db.prisma.setting.findUniqueOrThrow({ where: { key: 'new' } })).createdAt.getTime();
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Date.now());
    // Sealed again (after SECRETS changed), it keeps when it was created; a key never stored is refused.
    await settings.set('new', 'sealed-again');
    expect(await db.prisma.setting.findUniqueOrThrow({ where: { key: 'new' } })).toMatchObject({ valueEncrypted: 'sealed-again', createdAt: new Date(created) });
    await expect(settings.set('never-stored', 'sealed')).rejects.toThrow('the setting never-stored is not stored');
    expect(await db.prisma.setting.count({ where: { key: 'never-stored' } })).toBe(0);
  });

  it('gives every caller creating the same setting at once the one value stored', async () => {
    const settings = createSettingStore(handle);
    // Each finds it missing before any inserts it: all but one insert is refused as a duplicate.
    const values = await Promise.all(['a', 'b', 'c', 'd'].map((candidate) => settings.getOrCreate('raced', `sealed-${candidate}`)));
    const [stored] = await db.prisma.setting.findMany({ where: { key: 'raced' } });
    expect(values).toEqual(Array(4).fill(stored?.valueEncrypted));
  });

  it('lists signing keys exactly as the query builder does: key material, times and order, and without the material for the poll', async () => {
    const keys = createSigningKeyStore(handle);
    const at = new Date('2031-02-03T04:05:06.789Z');
    const later = (ms: number) => new Date(at.getTime() + ms);
    const jwk = (n: number) => ({ kty: 'EC', crv: 'P-256', x: `x-${n}`, y: `y-${n}`, key_ops: ['verify'], nested: { n, none: null } });
    await db.prisma.signingKey.createMany({
      data: [
        { id: 'rs-1', alg: 'RS256', generation: 1, publicJwk: jwk(1), privateJwkEncrypted: 'sealed-1', createdAt: at, retireAfter: later(1000), retiredAt: later(2000) },
        { id: 'rs-2', alg: 'RS256', generation: 2, publicJwk: jwk(2), privateJwkEncrypted: 'sealed-2', createdAt: later(1), retireAfter: later(3000) },
        { id: 'rs-3', alg: 'RS256', generation: 3, publicJwk: jwk(3), privateJwkEncrypted: 'sealed-3', createdAt: later(2), activatesAt: later(5000) },
        { id: 'es-1', alg: 'ES256', generation: 1, publicJwk: jwk(4), privateJwkEncrypted: 'sealed-4', createdAt: later(3) },
      ],
    });
    const newestFirst = [{ alg: 'asc' as const }, { generation: 'desc' as const }];
    const all = await db.prisma.signingKey.findMany({ orderBy: newestFirst });
    expect(all.map((key) => key.id)).toEqual(['es-1', 'rs-3', 'rs-2', 'rs-1']);
    expect(await keys.listAll()).toEqual(all);
    expect(await keys.listActive()).toEqual(await db.prisma.signingKey.findMany({ where: { retiredAt: null }, orderBy: newestFirst }));
    expect((await keys.listActive()).map((key) => key.id)).toEqual(['es-1', 'rs-3', 'rs-2']);
    const withoutMaterial = { id: true, alg: true, generation: true, createdAt: true, activatesAt: true, retireAfter: true, retiredAt: true } as const;
    expect(await keys.listActiveMeta()).toEqual(await db.prisma.signingKey.findMany({ where: { retiredAt: null }, orderBy: newestFirst, select: withoutMaterial }));
  });

  it('inserts a signing key as the query builder reads it back, and refuses a generation already taken without an error', async () => {
    const keys = createSigningKeyStore(handle);
    const createdAt = new Date('2032-03-04T05:06:07.089Z');
    const activatesAt = new Date('2032-03-05T05:06:07.089Z');
    const publicJwk = { kty: 'RSA', n: 'n-1', e: 'AQAB', key_ops: ['verify'], nested: { none: null, n: 1 } };
    expect(await keys.insertIfGenerationFree({ id: 'ins-1', alg: 'PS256', generation: 1, publicJwk, privateJwkEncrypted: 'sealed-ins-1', createdAt })).toBe(true);
    expect(await keys.insertIfGenerationFree({ id: 'ins-2', alg: 'PS256', generation: 2, publicJwk, privateJwkEncrypted: 'sealed-ins-2', createdAt, activatesAt })).toBe(true);
    // Another instance's key for the same generation is left as it is.
    expect(await keys.insertIfGenerationFree({ id: 'ins-other', alg: 'PS256', generation: 2, publicJwk, privateJwkEncrypted: 'sealed-other', createdAt })).toBe(false);
    expect(await db.prisma.signingKey.findMany({ where: { alg: 'PS256' }, orderBy: { generation: 'asc' } })).toEqual([
      { id: 'ins-1', alg: 'PS256', generation: 1, publicJwk, privateJwkEncrypted: 'sealed-ins-1', createdAt, activatesAt: null, retireAfter: null, retiredAt: null },
      { id: 'ins-2', alg: 'PS256', generation: 2, publicJwk, privateJwkEncrypted: 'sealed-ins-2', createdAt, activatesAt, retireAfter: null, retiredAt: null },
    ]);
    // Concurrent first starts: of four keys for one generation, exactly one is stored.
    const raced = await Promise.all(['a', 'b', 'c', 'd'].map((n) => keys.insertIfGenerationFree({ id: `race-${n}`, alg: 'PS384', generation: 1, publicJwk, privateJwkEncrypted: `sealed-${n}` })));
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect(await db.prisma.signingKey.count({ where: { alg: 'PS384' } })).toBe(1);
  });

  it('finds a signing key, schedules and stamps retirements and re-seals a key as the query builder reads them, each key named by one caller of many', async () => {
    const keys = createSigningKeyStore(handle);
    const at = new Date('2033-04-05T06:07:08.901Z');
    const later = (ms: number) => new Date(at.getTime() + ms);
    const key = (id: string, generation: number, extra: object = {}) => ({ id, alg: 'EdDSA', generation, publicJwk: { kty: 'OKP', x: id }, privateJwkEncrypted: `sealed-${id}`, createdAt: at, ...extra });
    await db.prisma.signingKey.createMany({
      data: [key('ed-1', 1, { retireAfter: later(1000), retiredAt: later(500) }), key('ed-2', 2, { retireAfter: later(2000) }), key('ed-3', 3), key('ed-4', 4), key('ed-5', 5, { activatesAt: later(10) })],
    });
    const stored = (id: string) => db.prisma.signingKey.findUniqueOrThrow({ where: { id } });
    expect(await keys.find('ed-5')).toEqual(await stored('ed-5'));
    expect(await keys.find('ed-1')).toEqual(await stored('ed-1'));
    expect(await keys.find('ed-none')).toBeUndefined();
    expect(await keys.find('ed-5\0')).toBeUndefined();

    // A rotation to generation 5 dates the keys below it that have no date yet; two instances rotating at once date each of them once.
    const raced = await Promise.all([keys.scheduleRetirement('EdDSA', 5, later(3000)), keys.scheduleRetirement('EdDSA', 5, later(4000))]);
    expect(raced.flat().sort()).toEqual(['ed-3', 'ed-4']);
    for (const [i, date] of [later(3000), later(4000)].entries()) for (const id of raced[i]!) expect((await stored(id)).retireAfter).toEqual(date);
    expect((await stored('ed-2')).retireAfter).toEqual(later(2000));
    expect((await stored('ed-5')).retireAfter).toBeNull();

    // Keys whose date has come are stamped retired, each by one of the instances sweeping at once; the date is compared to the millisecond.
    // (Other tests' keys in this database may be due as well: only these are looked at.)
    const own = (ids: string[]) => ids.filter((id) => id.startsWith('ed-')).sort();
    expect(own(await keys.retireDue(later(1999)))).toEqual([]);
    const swept = await Promise.all([keys.retireDue(later(3000)), keys.retireDue(later(3000)), keys.retireDue(later(3000))]);
    expect(own(swept.flat())).toEqual(['ed-2', ...raced[0]!].sort());
    expect((await stored('ed-2')).retiredAt).toEqual(later(3000));
    expect((await stored('ed-1')).retiredAt).toEqual(later(500));
    expect(await keys.listActiveMeta()).toEqual(
      (await db.prisma.signingKey.findMany({ where: { retiredAt: null }, orderBy: [{ alg: 'asc' }, { generation: 'desc' }], omit: { publicJwk: true, privateJwkEncrypted: true } })),
    );

    await keys.reencrypt('ed-5', 'sealed-again');
    expect(await stored('ed-5')).toEqual({ ...(await keys.find('ed-5')), privateJwkEncrypted: 'sealed-again' });
    // A key deleted meanwhile stays deleted.
    await keys.reencrypt('ed-none', 'sealed-again');
    expect(await db.prisma.signingKey.count({ where: { id: 'ed-none' } })).toBe(0);
  });

  it("counts the outbox's messages by state as the query builder groups them (the metrics' gauge, at every scrape)", async () => {
    const outbox = createOutboxStore(handle, [TEST_SECRET]);
    const message = (id: string, state: string) => ({ id, kind: 'mail', recipient: 'a@example.test', topic: 'test', payloadEncrypted: 'sealed', state, maxAttempts: 3 });
    await db.prisma.outboxMessage.createMany({ data: [message('o-1', 'pending'), message('o-2', 'sent'), message('o-3', 'sent'), message('o-4', 'failed'), message('o-5', 'sent')] });
    const grouped = await db.prisma.outboxMessage.groupBy({ by: ['state'], _count: { _all: true } });
    const expected = { pending: 0, sent: 0, failed: 0, ...Object.fromEntries(grouped.map((group) => [group.state, group._count._all])) };
    expect(await outbox.countByState()).toEqual(expected);
    expect(expected.sent).toBeGreaterThanOrEqual(3);
  });

  it("queues, finishes and schedules the outbox's messages as the query builder reads them, each finish only under its claim", async () => {
    const outbox = createOutboxStore(handle, [TEST_SECRET]);
    // Long ago, so that no other test's message in this database is due before these.
    const at = new Date('2020-05-06T07:08:09.012Z');
    const later = (ms: number) => new Date(at.getTime() + ms);
    const row = (id: string) => db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    const payload = { to: 'b@example.test', text: '한국어 ✓', nested: [1, null] };
    const id = await outbox.enqueue({ kind: 'backchannel_logout', topic: 'logout', recipient: 'client-a', payload, maxAttempts: 3 }, at);
    expect(await row(id)).toEqual({
      id,
      kind: 'backchannel_logout',
      recipient: 'client-a',
      topic: 'logout',
      payloadEncrypted: expect.any(String),
      state: 'pending',
      attempts: 0,
      maxAttempts: 3,
      nextAttemptAt: at,
      claimToken: null,
      claimedUntil: null,
      lastError: null,
      createdAt: at,
      finishedAt: null,
    });
    const earliest = async () => {
      const pending = await db.prisma.outboxMessage.findMany({ where: { state: 'pending' } });
      return pending.length ? new Date(Math.min(...pending.map((m) => Math.max(m.nextAttemptAt.getTime(), m.claimedUntil?.getTime() ?? 0)))) : null;
    };
    expect(await outbox.nextDue()).toEqual(await earliest());

    // Claimed (the payload opened), then sent back for another try with the error, cut and without NUL characters.
    const claimed = await outbox.claimNext(later(1), 60);
    expect(claimed).toMatchObject({ id, payload, attempt: 1 });
    expect(await outbox.nextDue()).toEqual(await earliest());
    const stale = { ...claimed!, claimToken: 'someone-else' };
    expect(await outbox.retryAt(stale, later(5000), 'not mine')).toBe(false);
    expect(await outbox.retryAt(claimed!, later(5000), `refused\0 by ${'x'.repeat(600)}`)).toBe(true);
    expect(await row(id)).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: later(5000), claimToken: null, claimedUntil: null, lastError: `refused by ${'x'.repeat(489)}` });
    expect(await outbox.nextDue()).toEqual(await earliest());

    // Sent: its payload dropped; a finish under a lapsed claim changes nothing.
    const again = await outbox.claimNext(later(5000), 60);
    expect(await outbox.markSent(stale, later(5001))).toBe(false);
    expect(await outbox.markSent(again!, later(5001))).toBe(true);
    expect(await row(id)).toMatchObject({ state: 'sent', attempts: 2, payloadEncrypted: '', finishedAt: later(5001), claimToken: null, lastError: null });
    expect(await outbox.markSent(again!, later(5002))).toBe(false);

    // Failed after its last attempt.
    const other = await outbox.enqueue({ kind: 'mail', topic: 'test', recipient: 'c@example.test', payload: {}, maxAttempts: 1 }, later(6000));
    const last = await outbox.claimNext(later(6000), 60);
    expect(last?.id).toBe(other);
    expect(await outbox.markFailed(last!, 'gave up', later(6001))).toBe(true);
    expect(await row(other)).toMatchObject({ state: 'failed', attempts: 1, payloadEncrypted: '', finishedAt: later(6001), lastError: 'gave up' });
    expect(await outbox.nextDue()).toEqual(await earliest());
  });

  it('records a burst of events larger than one statement takes, every one of them', async () => {
    const log = createAuditLog(handle, createLogger({ logLevel: 'silent' }));
    await Promise.all(Array.from({ length: 1234 }, (_, i) => log.record({ type: 'token.issued', clientId: `burst-${i}` })));
    expect(await db.prisma.auditEvent.count({ where: { clientId: { startsWith: 'burst-' } } })).toBe(1234);
  });
});

const available = await flavours();

describe('keeping statements prepared', () => {
  const statement = { name: 'keep_prepared_probe', text: 'SELECT 1 AS "one"' };

  it('prepares a named statement once on a better-sqlite3 handle, and on every use when told not to keep it', async () => {
    for (const [prepared, expected] of [[true, 1], [false, 3]] as const) {
      const handle = new Database(':memory:');
      let prepares = 0;
      const prepare = handle.prepare.bind(handle);
      handle.prepare = ((text: string) => (text === statement.text && prepares++, prepare(text))) as typeof handle.prepare;
      const executor = sqliteExecutor(handle, { prepared });
      for (let i = 0; i < 3; i++) expect(await executor.rows(statement, [])).toEqual([{ one: 1 }]);
      expect(prepares).toBe(expected);
      // A statement without a name (a batch of unusual size) is never kept.
      prepares = 0;
      await executor.rows({ text: statement.text }, []);
      await executor.rows({ text: statement.text }, []);
      expect(prepares).toBe(2);
      handle.close();
    }
  });

  it('commits the writes of one turn on SQLite in one transaction, each with its own answer, a failing one alone refused', async () => {
    const handle = new Database(':memory:');
    handle.exec('CREATE TABLE t (id TEXT PRIMARY KEY, used INTEGER)');
    const begun: string[] = [];
    const exec = handle.exec.bind(handle);
    // The transactions, not the busy timeout set around each BEGIN (src/db/executor.ts).
    handle.exec = ((sql: string) => (sql.startsWith('PRAGMA') || begun.push(sql), exec(sql))) as typeof handle.exec;
    const executor = sqliteExecutor(handle, { prepared: true });
    const insert = { name: 'insert', text: 'INSERT INTO t (id, used) VALUES (?, 0)' };
    const use = { name: 'use', text: 'UPDATE t SET used = 1 WHERE id = ? AND used = 0' };

    const answers = await Promise.allSettled([executor.changes(insert, ['a']), executor.changes(insert, ['b']), executor.changes(insert, ['a']), executor.changes(insert, ['c'])]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((answers[2] as PromiseRejectedResult).reason)).toContain('UNIQUE');
    expect(await executor.rows(statement, [])).toEqual([{ one: 1 }]);
    expect(handle.prepare('SELECT id FROM t ORDER BY id').all()).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    // The group was tried in one transaction, rolled back for the failure, and run again one by one.
    expect(begun).toEqual(['BEGIN IMMEDIATE', 'ROLLBACK']);

    begun.length = 0;
    // Two redemptions of the same row in one turn: exactly one changes it.
    expect(await Promise.all([executor.changes(use, ['a']), executor.changes(use, ['a']), executor.changes(use, ['b'])])).toEqual([1, 0, 1]);
    expect(begun).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
    // A write made in a later turn is committed in a transaction of its own.
    begun.length = 0;
    expect(await executor.changes(use, ['c'])).toBe(1);
    expect(begun).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
    // A write asked for its rows (RETURNING) joins the turn's group and is answered with them.
    begun.length = 0;
    const take = { name: 'take', text: 'UPDATE t SET used = used + 1 WHERE id = ? RETURNING id, used' };
    expect(await Promise.all([executor.changes(insert, ['d']), executor.rows(take, ['a']), executor.rows(take, ['none'])])).toEqual([1, [{ id: 'a', used: 2 }], []]);
    expect(begun).toEqual(['BEGIN IMMEDIATE', 'COMMIT']);
    handle.close();
  });

  it.runIf(available.includes('postgresql'))('names the statement on the PostgreSQL connection, and sends it unnamed when told not to', async () => {
    const database = await createTestDatabase('postgresql');
    try {
      for (const prepared of [true, false]) {
        // One connection, so the catalogue read sees the session that ran the statement. testPool:
        // a connection still closing when the database is dropped is not an unhandled pool error.
        const pool = testPool(database.config.url, 1);
        const executor = pgExecutor(pool, pg.types, { prepared });
        expect(await executor.rows(statement, [])).toEqual([{ one: 1 }]);
        const { rows } = await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
        expect(rows.map((row) => row.name)).toEqual(prepared ? [statement.name] : []);
        await pool.end();
      }
    } finally {
      await database.drop();
    }
  });
});
