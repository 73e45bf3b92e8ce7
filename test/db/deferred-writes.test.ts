// Writes kept until a request's answer (src/db/deferred-writes.ts), through the artifacts store
// on each database: kept while the request is served, committed together when it settles, seen by
// the request itself at once (committed before any step touching a model they change), and by
// another connection only once settled.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArtifactStore, type ArtifactLookups } from '../../src/artifacts/store.js';
import { createDb, type Db } from '../../src/db/client.js';
import { deferredWrites } from '../../src/db/deferred-writes.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

const NO_LOOKUPS: ArtifactLookups = { grantId: null, uid: null, userCode: null, accountId: null, clientId: null };
const NOW = new Date();

describe.each(await flavours())('writes kept for the answer on %s', (flavour) => {
  let db: MigratedDb;
  let other: Db;
  /** The request being served, while set. */
  let serving: object | undefined;

  beforeEach(async () => {
    db = await migratedDb(flavour);
    other = await createDb(db);
    serving = undefined;
    db.deferred.keepFor(() => serving);
  });
  afterEach(async () => {
    await other.close();
    await db.drop();
  });

  const save = (id: string, payload = { n: 1 }) => createArtifactStore(db).save('Session', id, payload, NO_LOOKUPS, null);
  const seenElsewhere = async (id: string) => (await createArtifactStore(other).find('Session', id, NOW))?.payload ?? null;

  it('outside a request, a save is committed by the time it resolves', async () => {
    await save('outside');
    expect(await seenElsewhere('outside')).toEqual({ n: 1 });
  });

  it("in a request, saves resolve at once and are committed together when the request settles", async () => {
    const request = (serving = {});
    await save('a');
    await save('b', { n: 2 });
    expect(await seenElsewhere('a')).toBeNull();
    expect(await seenElsewhere('b')).toBeNull();
    serving = undefined;
    await db.deferred.settle(request);
    expect(await seenElsewhere('a')).toEqual({ n: 1 });
    expect(await seenElsewhere('b')).toEqual({ n: 2 });
    // Nothing is kept any more: settling again has nothing to wait for, and no promise to await.
    expect(db.deferred.settle(request)).toBeUndefined();
  });

  it('gives no promise to settle a request that kept nothing (a read), nor to flush before its reads', () => {
    const request = (serving = {});
    expect(db.deferred.flush(['Session'])).toBeUndefined();
    expect(db.deferred.settle(request)).toBeUndefined();
  });

  it('keeps the row as it was saved, whatever becomes of the object afterwards', async () => {
    const request = (serving = {});
    const payload = { n: 1 };
    await save('copied', payload);
    payload.n = 99;
    await db.deferred.settle(request);
    expect(await seenElsewhere('copied')).toEqual({ n: 1 });
  });

  it('lets the request read its own kept writes: anything else it asks first commits them', async () => {
    serving = {};
    const store = createArtifactStore(db);
    await save('mine');
    expect((await store.find('Session', 'mine', NOW))?.payload).toEqual({ n: 1 });
    expect(await seenElsewhere('mine')).toEqual({ n: 1 });
    await store.destroy('Session', 'mine');
    expect(await store.find('Session', 'mine', NOW)).toBeNull();
    expect(await seenElsewhere('mine')).toBeNull();
  });

  it("commits them early only for a step touching a model they change: the grant a request looks up does not wait for its interaction's deletion", async () => {
    const request = (serving = {});
    const store = createArtifactStore(db);
    await store.destroy('Interaction', 'done');
    await save('kept-session');
    // Other models: nothing is committed before the read.
    expect(await store.latestGrant('acc', 'client', NOW)).toBeNull();
    expect(await store.find('Grant', 'g', NOW)).toBeNull();
    expect(await store.consume('AuthorizationCode', 'code', NOW)).toBe(false);
    expect(await seenElsewhere('kept-session')).toBeNull();
    // A token read with its bindings reads sessions too: everything kept is committed first.
    expect(await store.findWithBindings('AccessToken', 'token', NOW)).toBeNull();
    expect(await seenElsewhere('kept-session')).toEqual({ n: 1 });
    // A write that names no model is committed before any step.
    let ran = false;
    await db.deferred.write(async () => void (ran = true));
    expect(ran).toBe(false);
    expect(await store.find('Grant', 'g', NOW)).toBeNull();
    expect(ran).toBe(true);
    await db.deferred.settle(request);
  });

  it('commits kept saves and deletes in the order they were made', async () => {
    const request = (serving = {});
    const store = createArtifactStore(db);
    await save('first');
    await store.destroy('Session', 'first');
    await store.destroy('Session', 'second');
    await save('second', { n: 2 });
    await db.deferred.settle(request);
    expect(await seenElsewhere('first')).toBeNull();
    expect(await seenElsewhere('second')).toEqual({ n: 2 });
  });

  it("keeps each request's writes apart", async () => {
    const one = (serving = {});
    await save('one');
    const two = (serving = {});
    await save('two');
    await db.deferred.settle(two);
    expect(await seenElsewhere('two')).toEqual({ n: 1 });
    expect(await seenElsewhere('one')).toBeNull();
    await db.deferred.settle(one);
    expect(await seenElsewhere('one')).toEqual({ n: 1 });
  });

  it('rejects the settle of a request whose kept write failed, and still commits the others', async () => {
    const request = (serving = {});
    await save('kept');
    await db.deferred.write(() => db.executor.changes({ text: 'INSERT INTO "NoSuchTable" ("id") VALUES (1)' }, []));
    await expect(db.deferred.settle(request)).rejects.toThrow(/NoSuchTable/i);
    expect(await seenElsewhere('kept')).toEqual({ n: 1 });
  });
});

describe('writes kept for the answer, on an executor that cannot commit them together', () => {
  it('keeps nothing: each write runs when it is made', async () => {
    const deferred = deferredWrites({ groupsWrites: false });
    deferred.keepFor(() => ({}));
    let ran = 0;
    await deferred.write(async () => void ran++);
    expect(ran).toBe(1);
    expect(deferred.flush()).toBeUndefined();
  });
});
