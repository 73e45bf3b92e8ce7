// The cache that clients, resources and the sign-in page's provider buttons are read through
// (src/db/registration-cache.ts), on its own: a counted read and a write counter stand in for the
// database. Each use of it is tested on both databases in its own file (test/oidc/adapter,
// test/resources/resource-cache, test/federation/provider-buttons).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { registrationCache } from '../../src/db/registration-cache.js';

/** A table of `rows` read through the cache, counting reads; `write()` is this process writing it. */
function table(rows: Record<string, string>, options: { seconds?: number; maxEntries?: number } = {}) {
  let writes = 0;
  const reads: string[] = [];
  let failing = false;
  const find = registrationCache<string, string | undefined>({
    seconds: options.seconds ?? 60,
    writes: () => writes,
    maxEntries: options.maxEntries ?? 10,
    async read(key) {
      reads.push(key);
      await new Promise((resolve) => setImmediate(resolve));
      if (failing) throw new Error('the database is away');
      const value = rows[key];
      return { value, keep: value !== undefined };
    },
  });
  return {
    find,
    reads,
    write: () => void writes++,
    fail: (on: boolean) => void (failing = on),
  };
}

describe('a registration cache', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  it('reads a key once and answers from memory until the entry expires', async () => {
    const clients = table({ app: 'App' });
    expect(await clients.find('app')).toBe('App');
    expect(await clients.find('app')).toBe('App');
    expect(clients.reads).toEqual(['app']);
    vi.advanceTimersByTime(59_999);
    await clients.find('app');
    expect(clients.reads).toEqual(['app']);
    vi.advanceTimersByTime(1);
    expect(await clients.find('app')).toBe('App');
    expect(clients.reads).toEqual(['app', 'app']);
  });

  it('reads again after this process writes the table, a write during the read included', async () => {
    const rows = { app: 'App', album: 'Album' };
    const clients = table(rows);
    await clients.find('app');
    rows.app = 'App, renamed';
    clients.write();
    expect(await clients.find('app')).toBe('App, renamed');

    // The read started before the write: what it found may be the old row, so it is not reused.
    const during = clients.find('album');
    clients.write();
    expect(await during).toBe('Album');
    await clients.find('album');
    expect(clients.reads).toEqual(['app', 'app', 'album', 'album']);
  });

  it('gives the calls that miss while a read is under way that one read', async () => {
    const clients = table({ app: 'App' });
    const answers = await Promise.all(Array.from({ length: 8 }, () => clients.find('app')));
    expect(answers).toEqual(Array(8).fill('App'));
    expect(clients.reads).toEqual(['app']);
  });

  it('keeps nothing its read says not to keep, nor a read that failed', async () => {
    const clients = table({ app: 'App' });
    const [first, second] = await Promise.all([clients.find('nobody'), clients.find('nobody')]);
    expect([first, second]).toEqual([undefined, undefined]);
    await clients.find('nobody');
    expect(clients.reads).toEqual(['nobody', 'nobody']);

    clients.fail(true);
    await expect(clients.find('app')).rejects.toThrow('the database is away');
    clients.fail(false);
    expect(await clients.find('app')).toBe('App');
    expect(clients.reads).toEqual(['nobody', 'nobody', 'app', 'app']);
  });

  it('drops the oldest entry past its size', async () => {
    const clients = table({ a: 'A', b: 'B', c: 'C' }, { maxEntries: 2 });
    for (const key of ['a', 'b', 'c', 'c', 'b', 'a']) await clients.find(key);
    expect(clients.reads).toEqual(['a', 'b', 'c', 'a']);
  });

  it('reads on every call when its time is 0', async () => {
    const clients = table({ app: 'App' }, { seconds: 0 });
    await Promise.all([clients.find('app'), clients.find('app')]);
    await clients.find('app');
    expect(clients.reads).toEqual(['app', 'app', 'app']);
  });
});
