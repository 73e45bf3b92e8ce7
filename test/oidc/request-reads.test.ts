// Within one engine request, a token's session, grant and person are read with the token in one
// statement and handed to the engine's next lookups (src/oidc/request-reads.ts; the person to
// findAccount, src/people/accounts.ts): each once, never to another request or outside one, and
// never past a write through the adapter (but for the person, past the token's consumption). The
// statement itself is proven equal to the four lookups in test/db/raw-queries.test.ts; the last
// describe counts the statements of /userinfo, a refresh, a code exchange and a signed-in
// browser's authorization request (its session read with its person and grant) through the engine.
import { createHash, randomBytes } from 'node:crypto';
import type { Account, Adapter, AdapterPayload, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { createClientStore } from '../../src/clients/store.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/core/logger.js';
import { cookieSigner } from '../../src/core/secrets.js';
import type { Db, Prisma } from '../../src/db/client.js';
import { createAdapterFactory } from '../../src/oidc/adapter.js';
import { createRequestReads, latestGrantKey, personKey, type RequestReads } from '../../src/oidc/request-reads.js';
import { createFindAccount } from '../../src/people/accounts.js';
import { createUserStore } from '../../src/people/store.js';
import { createEngine } from '../../src/server.js';
import { authorizationUrl, basicAuth } from '../helpers/code-flow.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { newPerson, WEB_APP, webApp } from '../helpers/fixtures.js';
import { addUserTo, TEST_SECRET, testEnv } from '../helpers/gatehouse.js';

const ADAPTER_SECRET = 'request-reads-test-secret-0123456789-abcdefghij';

describe.each(await flavours())("a token's session, grant and person, read with it within one request, on %s", (flavour) => {
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
  let findAccount: FindAccount;
  let reads: RequestReads;
  const session = { jti: 'session-cookie-value-0123456789', uid: 'uid-r', accountId: 'acc-r', loginTs: 1, authorizations: { c: { sid: 'sid', grantId: 'g-r' } }, kind: 'Session' };
  const grant = { jti: 'g-r', accountId: 'acc-r', clientId: 'c', openid: { scope: 'openid' }, kind: 'Grant' };
  const token = { jti: 'at-r-0123456789-0123456789', accountId: 'acc-r', clientId: 'c', grantId: 'g-r', sessionUid: 'uid-r', expiresWithSession: true, kind: 'AccessToken' };
  const deleteSessionAndGrant = () => db.prisma.oidcArtifact.deleteMany({ where: { model: { in: ['Session', 'Grant'] } } });

  beforeEach(async () => {
    request = {};
    reads = createRequestReads(() => request);
    scoped = createAdapterFactory(db, [ADAPTER_SECRET], now, 0, reads);
    findAccount = createFindAccount(db, (accountId) => reads.take(personKey(accountId)));
    await db.prisma.user.deleteMany();
    await db.prisma.user.create({ data: { id: 'acc-r', email: 'reader@example.com', emailVerified: true, name: 'Before' } });
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
    const plain = createAdapterFactory(db, [ADAPTER_SECRET], now, 0, createRequestReads(() => undefined));
    expect(await scoped('AccessToken').find(token.jti)).toEqual(await plain('AccessToken').find(token.jti));
    expect(await scoped('Session').findByUid('uid-r')).toEqual(await plain('Session').findByUid('uid-r'));
    expect(await scoped('Grant').find('g-r')).toEqual(await plain('Grant').find('g-r'));

    await scoped('RefreshToken').upsert('rt-r-0123456789', { jti: 'rt-r-0123456789', grantId: 'g-none', kind: 'RefreshToken' } as AdapterPayload, 3600);
    expect(await scoped('RefreshToken').find('rt-r-0123456789')).toEqual(await plain('RefreshToken').find('rt-r-0123456789'));
    expect(await scoped('Grant').find('g-none')).toBeUndefined();
    expect(await scoped('AccessToken').find('no-such-token')).toBeUndefined();
  });
  /** findAccount as the engine calls it within the request, and the claims it would release for scope openid email profile. */
  const accountClaims = async (accountId = 'acc-r') => {
    const account: Account | undefined = await findAccount({ oidc: {} } as unknown as KoaContextWithOIDC, accountId);
    return account && (await account.claims('userinfo', 'openid email profile', {}, []));
  };
  const changePerson = (name: string) => db.prisma.user.update({ where: { id: 'acc-r' }, data: { name } });

  it("hands findAccount the token's person as it was when the token was read, once", async () => {
    await scoped('AccessToken').find(token.jti);
    await changePerson('After');
    expect(await accountClaims()).toMatchObject({ sub: 'acc-r', name: 'Before', email: 'reader@example.com', email_verified: true });
    // Once: asked again, it reads the database.
    expect(await accountClaims()).toMatchObject({ name: 'After' });

    // Disabled or deleted after the read: this request still has the person it read...
    await scoped('AccessToken').find(token.jti);
    await db.prisma.user.delete({ where: { id: 'acc-r' } });
    expect(await accountClaims()).toMatchObject({ name: 'After' });
    // ...and the next request does not.
    request = {};
    await scoped('AccessToken').find(token.jti);
    expect(await accountClaims()).toBeUndefined();
  });

  it('sees a person changed between requests in the next request, disabled included', async () => {
    await scoped('AccessToken').find(token.jti);
    expect(await accountClaims()).toMatchObject({ name: 'Before' });
    await changePerson('Changed');
    request = {};
    await scoped('AccessToken').find(token.jti);
    expect(await accountClaims()).toMatchObject({ name: 'Changed' });
    await db.prisma.user.update({ where: { id: 'acc-r' }, data: { disabled: true } });
    request = {};
    await scoped('AccessToken').find(token.jti);
    expect(await accountClaims()).toBeUndefined();
  });

  it('keeps the person past every write through the adapter (which never writes one), a consumption of the token included (a code is redeemed before its account is found)', async () => {
    const writes: [string, () => Promise<unknown>][] = [
      ['upsert', () => scoped('Session').upsert(session.jti, session as unknown as AdapterPayload, 3600)],
      ['destroy', () => scoped('Interaction').destroy('no-such-interaction')],
      ['revokeByGrantId', () => scoped('Grant').revokeByGrantId('no-such-grant')],
      ['consume', () => scoped('AccessToken').consume(token.jti)],
    ];
    for (const [write, run] of writes) {
      await changePerson(`Read before ${write}`);
      request = {};
      await scoped('AccessToken').find(token.jti);
      await run();
      await changePerson(`Changed after ${write}`);
      expect(await accountClaims(), write).toMatchObject({ name: `Read before ${write}` });
    }
  });

  it('drops a kept session or grant when a write through the adapter may have changed it: a write of its model, or a replayed token ending its grant', async () => {
    const kept = async () => {
      request = {};
      await scoped('AccessToken').find(token.jti);
      await deleteSessionAndGrant();
    };
    const restore = async () => {
      request = undefined;
      await scoped('Session').upsert(session.jti, session as unknown as AdapterPayload, 3600);
      await scoped('Grant').upsert(grant.jti, grant as unknown as AdapterPayload, 3600);
    };
    // Written: an interaction (an authorization resumed deletes it). Both stay kept.
    await kept();
    await scoped('Interaction').destroy('no-such-interaction');
    expect(await scoped('Session').findByUid('uid-r')).toEqual(session);
    expect(await scoped('Grant').find('g-r')).toEqual(grant);
    await restore();
    // A session: the session is read again (and is gone), the grant stays.
    await kept();
    await scoped('Session').destroy('another-session');
    expect(await scoped('Session').findByUid('uid-r')).toBeUndefined();
    expect(await scoped('Grant').find('g-r')).toEqual(grant);
    await restore();
    // A grant: the other way round.
    await kept();
    await scoped('Grant').revokeByGrantId('another-grant');
    expect(await scoped('Grant').find('g-r')).toBeUndefined();
    expect(await scoped('Session').findByUid('uid-r')).toEqual(session);
    await restore();
    // The token consumed, which changes that token alone: both stay kept.
    await kept();
    await scoped('AccessToken').consume(token.jti);
    expect(await scoped('Session').findByUid('uid-r')).toEqual(session);
    expect(await scoped('Grant').find('g-r')).toEqual(grant);
    await restore();
    // A refresh token redeemed a second time (a replay), which ends its grant across models: both dropped.
    const refresh = { ...token, jti: 'rt-r-0123456789-0123456789', kind: 'RefreshToken' };
    await scoped('RefreshToken').upsert(refresh.jti, refresh as unknown as AdapterPayload, 3600);
    await scoped('RefreshToken').consume(refresh.jti);
    request = {};
    await scoped('RefreshToken').find(refresh.jti);
    await deleteSessionAndGrant();
    await expect(scoped('RefreshToken').consume(refresh.jti)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await scoped('Session').findByUid('uid-r')).toBeUndefined();
    expect(await scoped('Grant').find('g-r')).toBeUndefined();
  });

  it("keeps an interaction's login person and their newest grant for its client, found with the interaction in a request, for findAccount and the grant lookup", async () => {
    const interaction = { jti: 'interaction-r', kind: 'Interaction', params: { client_id: 'c' }, result: { login: { accountId: 'acc-r' } }, exp: Math.floor(Date.now() / 1000) + 600 };
    await scoped('Interaction').upsert(interaction.jti, interaction as unknown as AdapterPayload, 600);
    request = {};
    expect(await scoped('Interaction').find(interaction.jti)).toEqual(interaction);
    await changePerson('After');
    await deleteSessionAndGrant();
    // The engine deletes the interaction before it looks up the account: that keeps both.
    await scoped('Interaction').destroy(interaction.jti);
    expect(await accountClaims()).toMatchObject({ name: 'Before' });
    expect(reads.take(latestGrantKey('acc-r', 'c'))).toEqual({ id: 'g-r', row: expect.objectContaining({ grantId: 'g-r', payload: expect.objectContaining({ clientId: 'c' }) }) });
    // Each once.
    expect(reads.take(latestGrantKey('acc-r', 'c'))).toBeUndefined();
    expect(await accountClaims()).toMatchObject({ name: 'After' });
  });

  it('keeps a missing person as missing, another account never, and nothing for a token without an account or outside a request', async () => {
    await db.prisma.user.delete({ where: { id: 'acc-r' } });
    await scoped('AccessToken').find(token.jti);
    await db.prisma.user.create({ data: { id: 'acc-r', email: 'reader@example.com', name: 'Back' } });
    // Read with the token, and there was none: this request does not look again.
    expect(await accountClaims()).toBeUndefined();
    expect(await accountClaims()).toMatchObject({ name: 'Back' });

    await db.prisma.user.create({ data: { id: 'acc-other', email: 'other@example.com', name: 'Other' } });
    await scoped('AccessToken').find(token.jti);
    expect(await accountClaims('acc-other')).toMatchObject({ sub: 'acc-other', name: 'Other' });

    const machine = { jti: 'at-machine-0123456789-0123456789', clientId: 'c', kind: 'AccessToken' };
    await scoped('AccessToken').upsert(machine.jti, machine as unknown as AdapterPayload, 3600);
    request = {};
    await scoped('AccessToken').find(machine.jti);
    await changePerson('Unrelated');
    expect(await accountClaims()).toMatchObject({ name: 'Unrelated' });

    request = undefined;
    await scoped('AccessToken').find(token.jti);
    await changePerson('Outside');
    expect(await accountClaims()).toMatchObject({ name: 'Outside' });
  });
});

describe.each(await flavours())('the statements of /userinfo, a refresh, a code exchange and an authorization through the engine, on %s', (flavour) => {
  let db: MigratedDb;
  let engine: Awaited<ReturnType<typeof createEngine>>;
  /** Every statement run, hand-written (by name) or through Prisma's client. */
  const statements: string[] = [];
  beforeAll(async () => {
    db = await migratedDb(flavour);
    const counted: Db = {
      ...db,
      executor: {
        rows: (statement, args) => (statements.push(statement.name ?? statement.text), db.executor.rows(statement, args)),
        changes: (statement, args) => (statements.push(statement.name ?? statement.text), db.executor.changes(statement, args)),
      },
      prisma: db.prisma.$extends({
        query: {
          $allOperations({ model, operation, args, query }) {
            statements.push(`prisma ${model ?? ''}.${operation}`);
            return query(args);
          },
        },
      }) as unknown as Prisma,
    };
    // The client is read once and kept, so that only the token's statements are counted.
    const config = loadConfig(testEnv(db, { ISSUER: 'http://gatehouse.test', CLIENT_CACHE_TTL: '1h' }));
    engine = await createEngine(config, counted, createLogger(config));
    await createClientStore(db).save(webApp());
  });
  afterAll(async () => {
    await engine?.hooks.settle();
    await db?.drop();
  });

  /** A person signed in to WEB_APP, with an access token, a refresh token and a code (PKCE) issued under their grant. */
  async function issue() {
    const { provider } = engine;
    const accountId = await addUserTo(db, newPerson());
    const grant = new provider.Grant({ accountId, clientId: WEB_APP.id });
    grant.addOIDCScope('openid email profile offline_access');
    const grantId = await grant.save();
    const session = new provider.Session();
    session.loginAccount({ accountId, loginTs: Math.floor(Date.now() / 1000) });
    session.grantIdFor(WEB_APP.id, grantId);
    await session.save(3600);
    const client = await provider.Client.find(WEB_APP.id);
    if (!client) throw new Error('web-app is missing');
    const issued = { accountId, client, grantId, scope: 'openid email profile offline_access', gty: 'authorization_code', sessionUid: session.uid, expiresWithSession: true };
    const verifier = randomBytes(32).toString('base64url');
    const challenge = { redirectUri: WEB_APP.redirectUri, codeChallenge: createHash('sha256').update(verifier).digest('base64url'), codeChallengeMethod: 'S256' };
    return {
      accountId,
      /** The session cookie's value: the session's id. */
      sessionCookie: session.jti,
      accessToken: await new provider.AccessToken(issued).save(),
      refreshToken: await new provider.RefreshToken(issued).save(),
      code: await new provider.AuthorizationCode({ ...issued, ...challenge } as ConstructorParameters<typeof provider.AuthorizationCode>[0]).save(),
      verifier,
    };
  }

  /**
   * The response, and the statements run for it, those the audit trail writes once the response
   * is on its way left out (audit/log.ts batches them, so when they run varies).
   */
  async function counting(send: (app: ReturnType<typeof request>) => PromiseLike<request.Response>) {
    await engine.hooks.settle();
    statements.length = 0;
    const response = await send(request(engine.provider.callback()));
    await engine.hooks.settle();
    return { response, statements: statements.filter((name) => !name.startsWith('audit_')) };
  }
  const userinfo = (accessToken: string) => counting((app) => app.get('/userinfo').set('authorization', `Bearer ${accessToken}`));
  const token = (form: Record<string, string>) => counting((app) => app.post('/token').set('authorization', basicAuth(WEB_APP)).type('form').send(form));

  // Before the person was read with the token, each of these ran user_by_id as well: userinfo two
  // statements, a refresh seven, a code exchange six (audit writes aside).
  it('answers /userinfo in one statement: the token with its session, its grant and its person', async () => {
    const { accessToken } = await issue();
    const { response, statements: run } = await userinfo(accessToken);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ email: expect.stringMatching(/@example\.com$/), email_verified: true, name: expect.stringMatching(/^Person /) });
    expect(run).toEqual(['artifact_find_with_bindings']);
  });

  it('refreshes and redeems a code without looking the person up again', async () => {
    const { refreshToken, code, verifier } = await issue();
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(refreshed.response.status).toBe(200);
    // The client's lockout counter, the token with its bindings, its rotation, the new tokens.
    expect(refreshed.statements).toEqual(['counter_get', 'artifact_find_with_bindings', 'artifact_consume', 'artifact_save', 'artifact_save']);

    const redeemed = await token({ grant_type: 'authorization_code', code, redirect_uri: WEB_APP.redirectUri, code_verifier: verifier });
    expect(redeemed.response.status).toBe(200);
    expect(redeemed.response.body).toMatchObject({ id_token: expect.any(String), refresh_token: expect.any(String) });
    // The person, kept past the code's consumption, which comes before findAccount.
    expect(redeemed.statements).toEqual(['artifact_find_with_bindings', 'artifact_consume', 'artifact_save', 'artifact_save']);
  });

  it("answers a signed-in browser's authorization request reading its session, its person and its grant in one statement", async () => {
    const { accountId, sessionCookie } = await issue();
    const cookie = `_session=${sessionCookie}; _session.sig=${cookieSigner([TEST_SECRET]).sign(`_session=${sessionCookie}`)}`;
    const authorize = () => {
      const { verifier, url } = authorizationUrl('http://gatehouse.test', WEB_APP, { prompt: undefined, scope: 'openid email' });
      return { verifier, send: (app: ReturnType<typeof request>) => app.get(`${url.pathname}${url.search}`).set('cookie', cookie) };
    };
    // The first authorization for the client also saves the session (its sid for the client).
    expect((await counting(authorize().send)).statements).toEqual(['artifact_find_session_with_bindings', 'artifact_save', 'artifact_save']);
    const { verifier, send } = authorize();
    const authorized = await counting(send);
    expect(authorized.response.status).toBe(303);
    const code = new URL(authorized.response.headers.location as string).searchParams.get('code');
    expect(code).toBeTruthy();
    // Before, the session, the person (findAccount) and the grant (remembered consent) were three reads.
    expect(authorized.statements).toEqual(['artifact_find_session_with_bindings', 'artifact_save']);
    const redeemed = await token({ grant_type: 'authorization_code', code: code as string, redirect_uri: WEB_APP.redirectUri, code_verifier: verifier });
    expect(redeemed.response.body).toMatchObject({ id_token: expect.any(String) });
    expect(decodeJwt(redeemed.response.body.id_token as string).sub).toBe(accountId);
  });

  it('sees a person changed or disabled between requests in the next request', async () => {
    const { accountId, accessToken, refreshToken } = await issue();
    const users = createUserStore(db);
    await users.update(accountId, { name: 'Renamed', email: `renamed-${accountId}@example.com` });
    expect((await userinfo(accessToken)).response.body).toMatchObject({ name: 'Renamed', email: `renamed-${accountId}@example.com`, email_verified: true });
    await users.update(accountId, { disabled: true });
    expect((await userinfo(accessToken)).response.status).toBe(401);
    expect((await token({ grant_type: 'refresh_token', refresh_token: refreshToken })).response.body).toMatchObject({ error: 'invalid_grant' });
  });
});
