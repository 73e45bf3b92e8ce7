// Reads of what admins register (clients, resources, upstream identity providers), reused for
// CLIENT_CACHE_TTL seconds: the engine and the sign-in page look them up on nearly every request,
// and they change rarely. An entry goes stale at once when this process writes its table (the
// Db's write counts, taken before each read, so a write that overlaps the read counts too);
// another instance's or the CLI's write shows once the entry expires. Calls that miss while a
// read is under way share that read; a read that fails, or that its caller says not to keep,
// leaves no entry behind. Only registration: no token, session or grant goes through here.

export interface RegistrationCacheOptions<K, V> {
  /** How long an entry is reused, in seconds; 0 or less reads afresh on every call. */
  seconds: number;
  /** This process's count of writes to the table read (Db.clientWrites, resourceWrites, identityProviderWrites). */
  writes: () => number;
  /** Distinct keys kept; past this the oldest entry is dropped. */
  maxEntries: number;
  /** Reads one key. `keep: false` hands the value to every call waiting on it and keeps no entry. */
  read: (key: K) => Promise<{ value: V; keep: boolean }>;
}

interface Entry<V> {
  value: Promise<V>;
  /** The write count taken before the read. */
  writes: number;
  /** When it expires, in epoch milliseconds. */
  until: number;
}

/** A function that reads `key` through the cache. */
export function registrationCache<K, V>({ seconds, writes, maxEntries, read }: RegistrationCacheOptions<K, V>): (key: K) => Promise<V> {
  const entries = new Map<K, Entry<V>>();
  const readValue = async (key: K) => (await read(key)).value;
  if (seconds <= 0) return readValue;

  return (key) => {
    const count = writes();
    const now = Date.now();
    const cached = entries.get(key);
    if (cached && cached.writes === count && cached.until > now) return cached.value;
    entries.delete(key);
    if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as K);
    const entry = { writes: count, until: now + seconds * 1000 } as Entry<V>;
    const forget = () => {
      if (entries.get(key) === entry) entries.delete(key);
    };
    entry.value = read(key).then(
      ({ value, keep }) => {
        if (!keep) forget();
        return value;
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
    entries.set(key, entry);
    return entry.value;
  };
}
