// The storage contract oidc-provider relies on, checked against our Prisma adapter on SQLite
// and PostgreSQL alike. Time is a controlled clock that tests advance: nothing sleeps for expiry
// (only the sweeper test waits, for its real interval timer).
import { storedId } from '../../src/artifacts/at-rest.js';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { createDb, type Db } from '../../src/db/client.js';
import { createAdapterFactory, startSweeper } from '../../src/oidc/adapter.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const FLAVOURS = await flavours();
const ADAPTER_SECRET = 'adapter-test-secret-0123456789-abcdefghijklmnop';

/** Every model the engine stores through the adapter, besides Client. */
const ARTIFACT_MODELS = [
  'Session',
  'Interaction',
  'Grant',
  'AuthorizationCode',
  'AccessToken',
  'RefreshToken',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'RegistrationAccessToken',
  'InitialAccessToken',
] as const;

/** Models whose second redemption is a replay that ends the grant. */
const GRANT_SOURCES = ['AuthorizationCode', 'RefreshToken', 'DeviceCode'] as const;

/**
 * A fixed start in the future: a sweeper or query that used the real clock instead of ours
 * would see nothing expired, so the expiry tests also prove the clock is the injected one.
 */
const START = Date.parse('2031-03-04T05:06:07.890Z');
const epoch = (ms: number) => Math.floor(ms / 1000);

/**
 * A payload shaped like what the engine writes for `model`: nested objects and arrays, a
 * secret, nulls, non-ASCII text, epoch-second times. `grantId` is the grant it belongs to.
 */
function payloadFor(model: string, jti: string, extra: Record<string, unknown> = {}): AdapterPayload {
  const iat = epoch(START);
  const base: Record<string, unknown> = {
    iat,
    exp: iat + 3600,
    jti,
    kind: model,
    clientId: 'client-1',
    accountId: 'account-1',
    extra: { note: 'nested "quotes" and ünïcödé ✓', list: [1, 'two', { three: [3, null] }], empty: {}, flag: false, none: null },
  };
  switch (model) {
    case 'Session':
      Object.assign(base, {
        uid: `uid-${jti}`,
        loginTs: iat,
        amr: ['pwd'],
        authorizations: { 'client-1': { sid: 'sid-1', grantId: 'grant-1', persistsLogout: true } },
        state: { secret: 'state-secret-0123456789', clientId: 'client-1', postLogoutRedirectUri: 'https://rp.example/after' },
      });
      break;
    case 'Interaction':
      Object.assign(base, {
        uid: `uid-${jti}`,
        returnTo: `https://id.example/auth/${jti}`,
        params: { client_id: 'client-1', scope: 'openid email', redirect_uri: 'https://rp.example/cb', claims: '{"id_token":{"email":null}}' },
        prompt: { name: 'login', reasons: ['no_session'], details: {} },
        lastSubmission: { login: { accountId: 'account-1', remember: true } },
        trusted: [],
      });
      break;
    case 'Grant':
      // The engine's Grant payload has no grantId: its id (jti) is the grant id.
      Object.assign(base, {
        openid: { scope: 'openid email', claims: ['email', 'email_verified'] },
        resources: { 'https://api.example': 'read write' },
        rejected: { openid: { claims: ['phone_number'] } },
      });
      break;
    case 'DeviceCode':
      Object.assign(base, {
        userCode: `USER-${jti}`,
        grantId: 'grant-1',
        deviceInfo: { ip: '203.0.113.9', ua: 'curl/8' },
        params: { scope: 'openid', client_id: 'client-1' },
      });
      break;
    case 'ReplayDetection':
      delete base.accountId;
      delete base.clientId;
      break;
    default:
      Object.assign(base, {
        grantId: 'grant-1',
        scope: 'openid email offline_access',
        claims: { id_token: { email: null, acr: { essential: true, values: ['urn:mace:incommon:iap:silver'] } } },
        resource: ['https://api.example'],
        redirectUri: 'https://rp.example/cb',
        codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        codeChallengeMethod: 'S256',
        sessionUid: 'session-uid-1',
      });
  }
  return { ...base, ...extra } as AdapterPayload;
}

describe.each(FLAVOURS)('OIDC adapter on %s', (flavour) => {
  let db: MigratedDb;
  let clock = START;
  const now = () => new Date(clock);
  const advance = (seconds: number) => {
    clock += seconds * 1000;
  };
  let adapter: (model: string) => Adapter;

  /** The raw row, expired or not: what is really in the table. */
  /** The row the engine's `id` is stored under (secret ids are hashed, artifacts/at-rest.ts). */
  const row = (model: string, id: string) => db.prisma.oidcArtifact.findUnique({ where: { model_id: { model, id: storedId(model, id) } } });

  beforeAll(async () => {
    db = await migratedDb(flavour);
    adapter = createAdapterFactory(db, [ADAPTER_SECRET], now);
  });
  afterAll(async () => db?.drop());

  beforeEach(async () => {
    clock = START;
    await db.prisma.oidcArtifact.deleteMany();
    await db.prisma.client.deleteMany();
  });

  describe('upsert and find', () => {
    it.each(ARTIFACT_MODELS)('%s: find returns the nested payload whole', async (model) => {
      const payload = payloadFor(model, `id-${model}`);
      await adapter(model).upsert(`id-${model}`, payload, 3600);
      // Deep comparison: PostgreSQL's jsonb does not keep key order.
      expect(await adapter(model).find(`id-${model}`)).toStrictEqual(payload);
    });

    it('a second upsert replaces the payload instead of merging it', async () => {
      await adapter('Session').upsert('s1', payloadFor('Session', 's1', { extraKey: 'first' }), 3600);
      const second = { jti: 's1', kind: 'Session', uid: 'uid-2', state: { secret: 'other-secret' } } as AdapterPayload;
      await adapter('Session').upsert('s1', second, 3600);

      expect(await adapter('Session').find('s1')).toStrictEqual(second);
      expect(await adapter('Session').findByUid('uid-2')).toStrictEqual(second);
      expect(await adapter('Session').findByUid('uid-s1')).toBeUndefined();
    });

    it('the same id under two models is two separate entries', async () => {
      const token = payloadFor('AccessToken', 'shared', { scope: 'openid' });
      const refresh = payloadFor('RefreshToken', 'shared', { scope: 'offline_access' });
      await adapter('AccessToken').upsert('shared', token, 3600);
      await adapter('RefreshToken').upsert('shared', refresh, 3600);

      expect(await adapter('AccessToken').find('shared')).toStrictEqual(token);
      expect(await adapter('RefreshToken').find('shared')).toStrictEqual(refresh);
      expect(await adapter('AuthorizationCode').find('shared')).toBeUndefined();
    });

    it('refuses a NUL character in any key or value, and stores the text \\u0000 as it is', async () => {
      for (const payload of [{ scope: 'openid\u0000' }, { claims: { 'na\u0000me': null } }, { list: ['a', 'b\\\u0000'] }]) {
        await expect(adapter('Interaction').upsert('nul', { ...payloadFor('Interaction', 'nul'), ...payload } as AdapterPayload, 3600)).rejects.toMatchObject({ error: 'invalid_request', error_description: 'parameters must not contain NUL characters' });
      }
      expect(await adapter('Interaction').find('nul')).toBeUndefined();
      const literal = { ...payloadFor('Interaction', 'nul'), note: 'the text \\u0000 and a \\ backslash' } as AdapterPayload;
      await adapter('Interaction').upsert('nul', literal, 3600);
      expect(await adapter('Interaction').find('nul')).toStrictEqual(literal);
    });

    it('an unknown id is undefined', async () => {
      await adapter('AccessToken').upsert('known', payloadFor('AccessToken', 'known'), 3600);
      expect(await adapter('AccessToken').find('unknown')).toBeUndefined();
    });
  });

  describe('expiry', () => {
    /** Saves `model` entry `id` to expire in 60 s: `lookup` finds it one second before, and never from expiry on. */
    async function expectFoundUntilExpiry(model: string, id: string, lookup: () => Promise<unknown>) {
      await adapter(model).upsert(id, payloadFor(model, id), 60);
      advance(59);
      expect(await lookup()).toBeDefined();
      advance(1); // exactly at expiry: the engine treats exp <= now as expired
      expect(await lookup()).toBeUndefined();
      advance(3600);
      expect(await lookup()).toBeUndefined();
    }

    it('an entry is found before it expires and never after', async () => {
      await expectFoundUntilExpiry('AccessToken', 'at', () => adapter('AccessToken').find('at'));
    });

    it('findByUid does not return expired entries', async () => {
      await expectFoundUntilExpiry('Session', 's', () => adapter('Session').findByUid('uid-s'));
    });

    it('keeps a DeviceCode findable for an hour past its expiry, so the engine can answer expired_token', async () => {
      await adapter('DeviceCode').upsert('dc', payloadFor('DeviceCode', 'dc'), 60);
      advance(61);
      expect(await adapter('DeviceCode').findByUserCode('USER-dc')).toBeDefined();
      expect(await adapter('DeviceCode').find('dc')).toBeDefined();
      advance(3600);
      expect(await adapter('DeviceCode').findByUserCode('USER-dc')).toBeUndefined();
      expect(await adapter('DeviceCode').find('dc')).toBeUndefined();
    });

    it('an expired entry cannot be consumed', async () => {
      await adapter('AuthorizationCode').upsert('code', payloadFor('AuthorizationCode', 'code'), 60);
      advance(61);
      await expect(adapter('AuthorizationCode').consume('code')).rejects.toBeInstanceOf(errors.InvalidGrant);
      expect((await row('AuthorizationCode', 'code'))?.consumedAt).toBeNull();
    });

    it('an entry saved without expiresIn never expires', async () => {
      await adapter('Grant').upsert('forever', payloadFor('Grant', 'forever'));
      advance(100 * 365 * 86400);
      expect(await adapter('Grant').find('forever')).toStrictEqual(payloadFor('Grant', 'forever'));
    });

    it('saving again moves the expiry (a session is extended on each use)', async () => {
      await adapter('Session').upsert('s', payloadFor('Session', 's'), 60);
      advance(50);
      await adapter('Session').upsert('s', payloadFor('Session', 's'), 60);
      advance(50);
      expect(await adapter('Session').find('s')).toBeDefined();
      advance(10);
      expect(await adapter('Session').find('s')).toBeUndefined();
    });
  });

  /**
   * A lookup by a field of the payload (`find`) returns the `model` artifact whose `field` holds
   * the value, and never an artifact of another model (an Interaction) that carries one too.
   */
  async function expectFoundWithinModel(model: 'Session' | 'DeviceCode', field: 'uid' | 'userCode', find: (value: string) => Promise<AdapterPayload | undefined | void>) {
    const wanted = payloadFor(model, 'wanted');
    await adapter(model).upsert('wanted', wanted, 600);
    await adapter(model).upsert('other', payloadFor(model, 'other'), 600);
    await adapter('Interaction').upsert('i1', payloadFor('Interaction', 'i1', { [field]: 'only-on-interaction' }), 600);

    expect(await find(wanted[field] as string)).toStrictEqual(wanted);
    expect(await find('only-on-interaction')).toBeUndefined();
    expect(await find(`${field}-of-nobody`)).toBeUndefined();
  }

  describe('findByUid', () => {
    it('finds a Session by the uid in its payload, within the Session model only', async () => {
      await expectFoundWithinModel('Session', 'uid', (uid) => adapter('Session').findByUid(uid));
    });
  });

  describe('findByUserCode', () => {
    it('finds a DeviceCode by the userCode in its payload, within the DeviceCode model only', async () => {
      await expectFoundWithinModel('DeviceCode', 'userCode', (userCode) => adapter('DeviceCode').findByUserCode(userCode));
    });
  });

  describe('consume', () => {
    /** Two grants, each with its Grant, an access token and a refresh token, plus a session. */
    async function twoGrants() {
      await adapter('Grant').upsert('grant-1', payloadFor('Grant', 'grant-1'), 3600);
      await adapter('AccessToken').upsert('at-1', payloadFor('AccessToken', 'at-1', { grantId: 'grant-1' }), 3600);
      await adapter('RefreshToken').upsert('rt-1', payloadFor('RefreshToken', 'rt-1', { grantId: 'grant-1' }), 3600);
      await adapter('Grant').upsert('grant-2', payloadFor('Grant', 'grant-2'), 3600);
      await adapter('AccessToken').upsert('at-2', payloadFor('AccessToken', 'at-2', { grantId: 'grant-2' }), 3600);
      await adapter('RefreshToken').upsert('rt-2', payloadFor('RefreshToken', 'rt-2', { grantId: 'grant-2' }), 3600);
      await adapter('Session').upsert('s', payloadFor('Session', 's'), 3600);
    }

    async function expectOtherGrantIntact() {
      expect(await adapter('Grant').find('grant-2')).toBeDefined();
      expect(await adapter('AccessToken').find('at-2')).toBeDefined();
      expect(await adapter('RefreshToken').find('rt-2')).toBeDefined();
      expect(await adapter('Session').find('s')).toBeDefined();
    }

    it('sets `consumed` to the clock in epoch seconds, seen by every later find', async () => {
      const payload = payloadFor('AuthorizationCode', 'code');
      await adapter('AuthorizationCode').upsert('code', payload, 60);
      advance(10);
      const consumedAt = clock;
      await adapter('AuthorizationCode').consume('code');
      advance(5);

      expect(await adapter('AuthorizationCode').find('code')).toStrictEqual({ ...payload, consumed: epoch(consumedAt) });
      expect(epoch(consumedAt)).not.toBe(epoch(clock)); // `consumed` is when it happened, not when read
    });

    /** Two grants, and a `model` value of grant-1 consumed twice: the second consume is refused as InvalidGrant. */
    async function consumeTwice(model: string) {
      await twoGrants();
      await adapter(model).upsert('value', payloadFor(model, 'value', { grantId: 'grant-1' }), 600);
      await adapter(model).consume('value');
      await expect(adapter(model).consume('value')).rejects.toBeInstanceOf(errors.InvalidGrant);
    }

    it.each(GRANT_SOURCES)('%s: a second consume is refused as InvalidGrant and revokes the tokens of that grant only', async (model) => {
      await consumeTwice(model);
      expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
      expect(await adapter('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await adapter(model).find('value')).toBeUndefined();
      await expectOtherGrantIntact();
    });

    it.each(GRANT_SOURCES)('%s: a second consume also ends the grant itself (the Grant whose id is the grantId)', async (model) => {
      await consumeTwice(model);
      // Left behind, the grant would still count as the account's consent for this client.
      expect(await adapter('Grant').find('grant-1')).toBeUndefined();
      await expectOtherGrantIntact();
    });

    it('a second consume of a model that is no grant source is refused as InvalidRequest', async () => {
      await twoGrants();
      const par = payloadFor('PushedAuthorizationRequest', 'par', { grantId: undefined });
      await adapter('PushedAuthorizationRequest').upsert('par', par, 60);
      await adapter('PushedAuthorizationRequest').consume('par');

      const second = adapter('PushedAuthorizationRequest').consume('par');
      await expect(second).rejects.toBeInstanceOf(errors.InvalidRequest);
      await expect(second).rejects.not.toBeInstanceOf(errors.InvalidGrant);
      expect(await adapter('PushedAuthorizationRequest').find('par')).toHaveProperty('consumed', epoch(clock));
      expect(await adapter('AccessToken').find('at-1')).toBeDefined();
    });

    it('consuming an expired value is refused as InvalidGrant and revokes nothing', async () => {
      await twoGrants();
      await adapter('AuthorizationCode').upsert('code', payloadFor('AuthorizationCode', 'code', { grantId: 'grant-1' }), 60);
      advance(61);

      await expect(adapter('AuthorizationCode').consume('code')).rejects.toBeInstanceOf(errors.InvalidGrant);

      expect(await adapter('Grant').find('grant-1')).toBeDefined();
      expect(await adapter('AccessToken').find('at-1')).toBeDefined();
      expect(await adapter('RefreshToken').find('rt-1')).toBeDefined();
      await expectOtherGrantIntact();
    });

    it('consuming an unknown value is refused as InvalidGrant and revokes nothing', async () => {
      await twoGrants();
      const before = await db.prisma.oidcArtifact.count();

      await expect(adapter('RefreshToken').consume('never-issued')).rejects.toBeInstanceOf(errors.InvalidGrant);

      expect(await db.prisma.oidcArtifact.count()).toBe(before);
      expect(before).toBe(7);
    });
  });

  describe('concurrent consume', () => {
    it('of five simultaneous consumes of one code, exactly one succeeds and the others get InvalidGrant', async () => {
      for (let round = 0; round < 3; round += 1) {
        const id = `code-${round}`;
        await adapter('AuthorizationCode').upsert(id, payloadFor('AuthorizationCode', id, { grantId: `grant-${round}` }), 60);

        const results = await Promise.allSettled(Array.from({ length: 5 }, () => adapter('AuthorizationCode').consume(id)));

        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const refusals = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(refusals).toHaveLength(4);
        for (const refusal of refusals) expect(refusal.reason).toBeInstanceOf(errors.InvalidGrant);
      }
    });
  });

  describe('destroy', () => {
    it('removes that one entry only', async () => {
      await adapter('AccessToken').upsert('a', payloadFor('AccessToken', 'a'), 3600);
      await adapter('AccessToken').upsert('b', payloadFor('AccessToken', 'b'), 3600);
      await adapter('RefreshToken').upsert('a', payloadFor('RefreshToken', 'a'), 3600);

      await adapter('AccessToken').destroy('a');

      expect(await adapter('AccessToken').find('a')).toBeUndefined();
      expect(await row('AccessToken', 'a')).toBeNull();
      expect(await adapter('AccessToken').find('b')).toBeDefined();
      expect(await adapter('RefreshToken').find('a')).toBeDefined();
      await expect(adapter('AccessToken').destroy('never-existed')).resolves.toBeUndefined();
    });
  });

  describe('revokeByGrantId', () => {
    it("removes this model's entries of the grant only", async () => {
      await adapter('Grant').upsert('grant-1', payloadFor('Grant', 'grant-1'), 3600);
      await adapter('AccessToken').upsert('at-1a', payloadFor('AccessToken', 'at-1a', { grantId: 'grant-1' }), 3600);
      await adapter('AccessToken').upsert('at-1b', payloadFor('AccessToken', 'at-1b', { grantId: 'grant-1' }), 3600);
      await adapter('RefreshToken').upsert('rt-1', payloadFor('RefreshToken', 'rt-1', { grantId: 'grant-1' }), 3600);
      await adapter('AccessToken').upsert('at-2', payloadFor('AccessToken', 'at-2', { grantId: 'grant-2' }), 3600);

      await adapter('AccessToken').revokeByGrantId('grant-1');

      expect(await adapter('AccessToken').find('at-1a')).toBeUndefined();
      expect(await adapter('AccessToken').find('at-1b')).toBeUndefined();
      expect(await adapter('RefreshToken').find('rt-1')).toBeDefined();
      expect(await adapter('Grant').find('grant-1')).toBeDefined();
      expect(await adapter('AccessToken').find('at-2')).toBeDefined();
    });
  });

  describe('Client model', () => {
    const metadata = {
      client_secret: 'client-secret-0123456789',
      redirect_uris: ['https://rp.example/cb', 'https://rp.example/cb2'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      client_name: 'Rélying Party ✓',
      contacts: [],
      jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', use: 'sig' }] },
    };

    it('find reads the Client table and names the client_id', async () => {
      await db.prisma.client.create({ data: { id: 'rp-1', metadata } });

      expect(await adapter('Client').find('rp-1')).toStrictEqual({ ...metadata, client_id: 'rp-1' });
      expect(await adapter('Client').find('rp-unknown')).toBeUndefined();
    });

    it('upsert creates and then replaces a client, as dynamic registration does', async () => {
      await adapter('Client').upsert('rp-dyn', { ...metadata, client_id: 'rp-dyn' } as AdapterPayload);
      // The secret is stored only as a keyed hash; the engine gets a placeholder (clients/secrets.ts).
      const { client_secret: secret, ...rest } = metadata;
      const stored = await db.prisma.client.findUniqueOrThrow({ where: { id: 'rp-dyn' } });
      expect(stored.metadata).toStrictEqual({ ...rest, client_id: 'rp-dyn', client_secret_hash: expect.stringMatching(/^hmac-sha256:v1:/) });
      expect(JSON.stringify(stored.metadata)).not.toContain(secret);
      const found = await adapter('Client').find('rp-dyn');
      expect(found).toStrictEqual({ ...rest, client_id: 'rp-dyn', client_secret: expect.stringMatching(/^gatehouse-hashed-secret~/) });
      expect(found?.client_secret).not.toContain(secret);

      const updated = { client_id: 'rp-dyn', redirect_uris: ['https://rp.example/new'], client_name: 'Renamed' };
      await adapter('Client').upsert('rp-dyn', updated as AdapterPayload);
      expect(await adapter('Client').find('rp-dyn')).toStrictEqual(updated);

      expect(await db.prisma.client.count()).toBe(1);
      expect(await db.prisma.oidcArtifact.count({ where: { model: 'Client' } })).toBe(0);
    });

    it('destroy deletes the client row', async () => {
      await db.prisma.client.create({ data: { id: 'rp-1', metadata } });
      await db.prisma.client.create({ data: { id: 'rp-2', metadata } });

      await adapter('Client').destroy('rp-1');

      expect(await db.prisma.client.findUnique({ where: { id: 'rp-1' } })).toBeNull();
      expect(await adapter('Client').find('rp-1')).toBeUndefined();
      expect(await adapter('Client').find('rp-2')).toBeDefined();
    });

    it('findByUid and findByUserCode find no client', async () => {
      await db.prisma.client.create({ data: { id: 'rp-1', metadata: { ...metadata, uid: 'rp-1', userCode: 'rp-1' } } });
      expect(await adapter('Client').findByUid('rp-1')).toBeUndefined();
      expect(await adapter('Client').findByUserCode('rp-1')).toBeUndefined();
    });
  });

  describe('client cache (CLIENT_CACHE_TTL)', () => {
    const stored = (name: string) => ({ client_name: name, redirect_uris: ['https://rp.example/cb'], token_endpoint_auth_method: 'none' });

    it('reuses a client read from the database until the time is up', async () => {
      const cached = createAdapterFactory(db, [ADAPTER_SECRET], now, 1);
      await db.prisma.client.create({ data: { id: 'rp-c', metadata: stored('First') } });
      expect(await cached('Client').find('rp-c')).toMatchObject({ client_name: 'First' });

      // Another instance (its own Db on the same database) changes the client: not seen yet...
      const other = await createDb(db);
      try {
        await other.prisma.client.update({ where: { id: 'rp-c' }, data: { metadata: stored('Second') } });
      } finally {
        await other.close();
      }
      expect(await cached('Client').find('rp-c')).toMatchObject({ client_name: 'First' });
      // ...and seen once the entry has expired.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(await cached('Client').find('rp-c')).toMatchObject({ client_name: 'Second' });
    });

    it('reads a client once for all the requests that miss it at the same time, and again for those after a write', async () => {
      let reads = 0;
      const counted: Db = { ...db, executor: { ...db.executor, rows: (statement, args) => ((reads += statement.name === 'client_metadata' ? 1 : 0), db.executor.rows(statement, args)) } };
      const cached = createAdapterFactory(counted, [ADAPTER_SECRET], now, 3600);
      await db.prisma.client.create({ data: { id: 'rp-c', metadata: stored('First') } });
      const found = await Promise.all(Array.from({ length: 8 }, () => cached('Client').find('rp-c')));
      expect(found.map((client) => client?.client_name)).toEqual(Array(8).fill('First'));
      expect(reads).toBe(1);
      // Kept: no read at all.
      await cached('Client').find('rp-c');
      expect(reads).toBe(1);

      // A write in this process while a read is under way: who asks after it reads again, and sees it.
      await db.prisma.client.update({ where: { id: 'rp-c' }, data: { metadata: stored('Second') } });
      const before = cached('Client').find('rp-c');
      await db.prisma.client.update({ where: { id: 'rp-c' }, data: { metadata: stored('Third') } });
      const after = await cached('Client').find('rp-c');
      expect(after).toMatchObject({ client_name: 'Third' });
      expect((await before)?.client_name).toMatch(/^(Second|Third)$/);
      expect(reads).toBe(3);
    });

    it('drops every entry as soon as this process writes a client, however it writes it', async () => {
      const cached = createAdapterFactory(db, [ADAPTER_SECRET], now, 3600);
      await db.prisma.client.create({ data: { id: 'rp-c', metadata: stored('First') } });
      expect(await cached('Client').find('rp-c')).toMatchObject({ client_name: 'First' });

      await db.prisma.client.update({ where: { id: 'rp-c' }, data: { metadata: stored('Edited') } });
      expect(await cached('Client').find('rp-c')).toMatchObject({ client_name: 'Edited' });

      await db.prisma.client.deleteMany({ where: { id: 'rp-c' } });
      expect(await cached('Client').find('rp-c')).toBeUndefined();
    });

    it('does not remember a client_id that is not registered: registering it elsewhere takes effect at once', async () => {
      const cached = createAdapterFactory(db, [ADAPTER_SECRET], now, 3600);
      expect(await cached('Client').find('rp-later')).toBeUndefined();
      const other = await createDb(db);
      try {
        await other.prisma.client.create({ data: { id: 'rp-later', metadata: stored('Later') } });
      } finally {
        await other.close();
      }
      expect(await cached('Client').find('rp-later')).toMatchObject({ client_name: 'Later' });
    });
  });

  describe('sweeper', () => {
    let stop: (() => void) | undefined;
    afterEach(() => {
      stop?.();
      stop = undefined;
    });

    /** One expired entry and three that must survive: live, never expiring, consumed but live. */
    async function mixedArtifacts() {
      await adapter('AccessToken').upsert('expired', payloadFor('AccessToken', 'expired'), 60);
      await adapter('AccessToken').upsert('live', payloadFor('AccessToken', 'live'), 3600);
      await adapter('Grant').upsert('forever', payloadFor('Grant', 'forever'));
      await adapter('AuthorizationCode').upsert('consumed', payloadFor('AuthorizationCode', 'consumed'), 3600);
      await adapter('AuthorizationCode').consume('consumed');
    }

    async function expectSurvivors() {
      expect(await row('AccessToken', 'live')).not.toBeNull();
      expect(await row('Grant', 'forever')).not.toBeNull();
      expect(await row('AuthorizationCode', 'consumed')).not.toBeNull();
    }

    it('deleteExpired deletes exactly the artifacts expired by the given time', async () => {
      await mixedArtifacts();
      const queries = createArtifactStore(db);

      advance(59);
      expect(await queries.deleteExpired(now())).toBe(0);
      expect(await row('AccessToken', 'expired')).not.toBeNull();

      advance(1);
      expect(await queries.deleteExpired(now())).toBe(1);
      expect(await row('AccessToken', 'expired')).toBeNull();
      await expectSurvivors();
    });

    it('deleteExpired works through more expired rows than one batch holds, and keeps the live ones', async () => {
      const tokens = adapter('AccessToken');
      for (let i = 0; i < 7; i++) await tokens.upsert(`old-${i}`, { jti: `old-${i}` }, 10);
      await tokens.upsert('live', { jti: 'live' }, 3600);
      advance(11);
      expect(await createArtifactStore(db).deleteExpired(now(), 3)).toBe(7);
      expect(await db.prisma.oidcArtifact.count()).toBe(1);
      expect(await row('AccessToken', 'live')).not.toBeNull();
    });

    it('runs on its interval with the injected clock, and stops when told', async () => {
      await mixedArtifacts();
      const onError = vi.fn();
      advance(120);
      stop = startSweeper(db, 1, onError, now);

      await vi.waitFor(async () => expect(await row('AccessToken', 'expired')).toBeNull(), { timeout: 3000, interval: 100 });
      await expectSurvivors();

      stop();
      await adapter('AccessToken').upsert('expired-later', payloadFor('AccessToken', 'expired-later'), 60);
      advance(120);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await row('AccessToken', 'expired-later')).not.toBeNull();
      expect(onError).not.toHaveBeenCalled();
    });

    it('is off for an interval of 0', async () => {
      await mixedArtifacts();
      advance(120);
      stop = startSweeper(db, 0, () => {}, now);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(await row('AccessToken', 'expired')).not.toBeNull();
    });
  });
});
