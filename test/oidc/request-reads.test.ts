// Within one engine request, a token's session and grant are read with the token in one statement
// and handed to the engine's next lookups (src/oidc/request-reads.ts): each once, never to another
// request or outside one, and never past a write through the adapter. The statement itself is
// proven equal to the three lookups in test/db/raw-queries.test.ts.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const ADAPTER_SECRET = 'request-reads-test-secret-0123456789-abcdefghij';

describe.each(await flavours())("a token's session and grant, read with it within one request, on %s", (flavour) => {
  let db: MigratedDb;
  const now = () => new Date();
  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => {
    await db.prisma.oidcArtifact.deleteMany();
  });

  let request: object | undefined;
  let scoped: (model: string) => Adapter;
  const session = { jti: 'session-cookie-value-0123456789', uid: 'uid-r', accountId: 'acc-r', loginTs: 1, authorizations: { c: { sid: 'sid', grantId: 'g-r' } }, kind: 'Session' };
  const grant = { jti: 'g-r', accountId: 'acc-r', clientId: 'c', openid: { scope: 'openid' }, kind: 'Grant' };
  const token = { jti: 'at-r-0123456789-0123456789', accountId: 'acc-r', clientId: 'c', grantId: 'g-r', sessionUid: 'uid-r', expiresWithSession: true, kind: 'AccessToken' };
  const deleteSessionAndGrant = () => db.prisma.oidcArtifact.deleteMany({ where: { model: { in: ['Session', 'Grant'] } } });

  beforeEach(async () => {
    request = {};
    scoped = createAdapterFactory(db, [ADAPTER_SECRET], now, 0, () => request);
    await scoped('Session').upsert(session.jti, session as unknown as AdapterPayload, 3600);
    await scoped('Grant').upsert(grant.jti, grant as unknown as AdapterPayload, 3600);
    await scoped('AccessToken').upsert(token.jti, token as unknown as AdapterPayload, 3600);
  });

  it('hands out the session and the grant as they were when the token was read, each once', async () => {
    expect(await scoped('AccessToken').find(token.jti)).toMatchObject({ grantId: 'g-r', sessionUid: 'uid-r' });
    // Gone from the database after the token's read: this request still has what it read then...
    await deleteSessionAndGrant();
    expect(await scoped('Session').findByUid('uid-r')).toEqual(session);
    expect(await scoped('Grant').find('g-r')).toEqual(grant);
    // ...once: asked again, it reads the database.
    expect(await scoped('Session').findByUid('uid-r')).toBeUndefined();
    expect(await scoped('Grant').find('g-r')).toBeUndefined();
  });

  it('keeps nothing for another request, nor outside a request, nor past a write in the same request', async () => {
    await scoped('AccessToken').find(token.jti);
    request = {};
    await deleteSessionAndGrant();
    expect(await scoped('Session').findByUid('uid-r')).toBeUndefined();
    expect(await scoped('Grant').find('g-r')).toBeUndefined();

    await scoped('Session').upsert(session.jti, session as unknown as AdapterPayload, 3600);
    await scoped('Grant').upsert(grant.jti, grant as unknown as AdapterPayload, 3600);
    request = undefined;
    await scoped('AccessToken').find(token.jti);
    await deleteSessionAndGrant();
    expect(await scoped('Grant').find('g-r')).toBeUndefined();

    await scoped('Grant').upsert(grant.jti, grant as unknown as AdapterPayload, 3600);
    request = {};
    await scoped('AccessToken').find(token.jti);
    await scoped('Grant').destroy('g-r');
    expect(await scoped('Grant').find('g-r')).toBeUndefined();
  });

  it('reads the same payloads as lookups one by one, a session whose token names none included', async () => {
    const plain = createAdapterFactory(db, [ADAPTER_SECRET], now, 0, () => undefined);
    expect(await scoped('AccessToken').find(token.jti)).toEqual(await plain('AccessToken').find(token.jti));
    expect(await scoped('Session').findByUid('uid-r')).toEqual(await plain('Session').findByUid('uid-r'));
    expect(await scoped('Grant').find('g-r')).toEqual(await plain('Grant').find('g-r'));

    await scoped('RefreshToken').upsert('rt-r-0123456789', { jti: 'rt-r-0123456789', grantId: 'g-none', kind: 'RefreshToken' } as AdapterPayload, 3600);
    expect(await scoped('RefreshToken').find('rt-r-0123456789')).toEqual(await plain('RefreshToken').find('rt-r-0123456789'));
    expect(await scoped('Grant').find('g-none')).toBeUndefined();
    expect(await scoped('AccessToken').find('no-such-token')).toBeUndefined();
  });
});
