// Keeps a running engine's signing keys in step with the SigningKey table, so a rotation on any
// instance (CLI, admin API, schedule) reaches every instance without a restart.
//
// Every KEY_REFRESH_INTERVAL each instance reads the few unretired key rows (no decryption unless
// a new key appeared), works out the states at its clock, and swaps the engine's key set when the
// published kids or their order changed. Staleness is bounded: an instance publishes a new key
// at most one interval after it was created, and signs with it at most one interval after its
// activation time; rotations add that interval to how long old keys stay published.
// The same tick runs scheduled rotation (KEY_ROTATION_INTERVAL); retirement stamps run at the
// sweeper cadence.
import type Provider from 'oidc-provider';
import type { Db } from '../db/client.js';
import { createSigningKeyStore } from './store.js';
import type { Logger } from '../core/logger.js';
import type { AuditLog } from '../audit/log.js';
import { replaceEngineKeys } from './engine-swap.js';
import { engineKeyOrder, openPrivateKey, retireExpiredKeys, rotateIfDue, SIGNING_ALGORITHMS, type KeyConfig, type PrivateJwk, type SigningKeys } from './signing-keys.js';

/** The key set the engine uses now (`jwks`, read live, e.g. by readiness), and its upkeep. */
export interface KeyRefresher extends SigningKeys {
  /** Reads the table now and swaps the engine's keys if needed; true when they changed. */
  refresh(): Promise<boolean>;
  /** Stops the timers and waits for a refresh in progress. */
  stop(): Promise<void>;
}

export interface KeyRefresherDeps {
  db: Db;
  config: KeyConfig & { database: { sweepInterval: number } };
  provider: Provider;
  initial: SigningKeys;
  logger: Logger;
  audit?: AuditLog;
  now?: () => Date;
}

export function startKeyRefresher({ db, config, provider, initial, logger, audit, now = () => new Date() }: KeyRefresherDeps): KeyRefresher {
  const queries = createSigningKeyStore(db);
  const opened = new Map<string, PrivateJwk>(initial.jwks.keys.map((key) => [key.kid, key]));
  let current: SigningKeys = initial;
  let running: Promise<boolean> | undefined;

  async function rotateOnSchedule(at: Date): Promise<void> {
    const rotation = await rotateIfDue(db, config, at);
    if (!rotation?.created.length) return;
    logger.info({ created: rotation.created, retiring: rotation.retiring }, 'rotated signing keys on schedule');
    for (const key of rotation.created) await audit?.record({ type: 'key.created', details: { kid: key.kid, alg: key.alg, activatesAt: key.activatesAt.toISOString(), reason: 'scheduled' } });
  }

  async function refreshOnce(): Promise<boolean> {
    const at = now();
    await rotateOnSchedule(at);
    // The poll reads dates only; key material is read and decrypted once per new key.
    const ordered = engineKeyOrder(await queries.listActiveMeta(), at);
    const keys: PrivateJwk[] = [];
    for (const { id } of ordered) {
      let jwk = opened.get(id);
      if (!jwk) {
        const stored = await queries.find(id);
        if (!stored) continue;
        jwk = await openPrivateKey(db, stored, config.secrets);
        opened.set(id, jwk);
      }
      keys.push(jwk);
    }
    // Never leave an algorithm without a key: rows deleted by hand keep the last good set.
    const missing = SIGNING_ALGORITHMS.filter((alg) => !keys.some((key) => key.alg === alg));
    if (missing.length) {
      logger.warn({ missing }, 'the SigningKey table has no usable key for some algorithms; keeping the current keys');
      return false;
    }
    const before = current.jwks.keys.map((key) => key.kid);
    if (before.join(' ') === keys.map((key) => key.kid).join(' ')) return false;
    replaceEngineKeys(provider, keys);
    current = { jwks: { keys }, created: [] };
    for (const kid of opened.keys()) if (!keys.some((key) => key.kid === kid)) opened.delete(kid);
    logger.info({ before, after: keys.map((key) => key.kid) }, 'signing keys changed');
    return true;
  }

  function refresh(): Promise<boolean> {
    // One refresh at a time; a caller arriving meanwhile waits for it and then runs its own.
    const next = (running ?? Promise.resolve(false)).catch(() => false).then(refreshOnce);
    running = next;
    return next.finally(() => {
      if (running === next) running = undefined;
    });
  }

  const timers: NodeJS.Timeout[] = [];
  if (config.keys.refreshInterval > 0) {
    timers.push(
      setInterval(() => {
        // A tick while the previous refresh still runs (a slow database) is skipped, not queued.
        if (running) return;
        refresh().catch((error: unknown) => logger.error({ err: error }, 'refreshing signing keys failed; the current keys stay in use'));
      }, config.keys.refreshInterval * 1000),
    );
  }
  if (config.database.sweepInterval > 0) {
    timers.push(
      setInterval(() => {
        retireExpiredKeys(db, config, now())
          .then(async (kids) => {
            if (!kids.length) return;
            logger.info({ kids }, 'retired signing keys');
            for (const kid of kids) await audit?.record({ type: 'key.retired', details: { kid } });
          })
          .catch((error: unknown) => logger.error({ err: error }, 'retiring signing keys failed'));
      }, config.database.sweepInterval * 1000),
    );
  }
  for (const timer of timers) timer.unref();

  return {
    get jwks() {
      return current.jwks;
    },
    created: initial.created,
    refresh,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
