// Liveness and readiness for orchestrators and load balancers. /healthz answers as long as the
// process serves HTTP; /readyz also checks the database, the migrations and the signing keys,
// naming each check, and answers 503 while any fails (the reason goes to the log, not the body).
import { Router } from 'express';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { pendingMigrations } from '../db/migrate.js';
import type { Logger } from '../core/logger.js';
import { SIGNING_ALGORITHMS, type SigningKeys } from '../keys/signing-keys.js';

/** Resolves when ready; rejects with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 3000;

const READY_PROBE = { name: 'readiness_probe', text: 'SELECT 1' };

export function readinessChecks({ config, db, keys }: { config: Pick<Config, 'database'>; db: Db; keys: SigningKeys }): Record<string, ReadinessCheck> {
  // Migrations are only ever added by a deploy, which restarts the process: once applied, always applied.
  let migrated = false;
  return {
    // On the executor's connection, the one the hot paths use; a probe every few seconds then
    // never starts Prisma's client engine (and its query compiler) in an instance that needs none.
    async database() {
      await db.executor.rows(READY_PROBE, []);
    },
    async migrations() {
      if (migrated) return;
      const pending = await pendingMigrations(config.database);
      if (pending.length) throw new Error(`pending migrations: ${pending.join(', ')} (run npm run db:migrate, or start with AUTO_MIGRATE=true)`);
      migrated = true;
    },
    async signing_keys() {
      const missing = SIGNING_ALGORITHMS.filter((alg) => !keys.jwks.keys.some((key) => key.alg === alg));
      if (missing.length) throw new Error(`no signing key for ${missing.join(', ')}`);
    },
  };
}

function withTimeout(check: ReadinessCheck): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([check(), timeout]).finally(() => clearTimeout(timer));
}

export function createHealthRouter(checks: Record<string, ReadinessCheck>, logger: Logger): Router {
  const router = Router();
  router.get('/healthz', function showLiveness(_req, res) {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async function showReadiness(_req, res) {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check);
          return [name, 'ok'] as const;
        } catch (error) {
          logger.warn({ check: name, err: error }, 'readiness check failed');
          return [name, 'failing'] as const;
        }
      }),
    );
    const ready = results.every(([, result]) => result === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) });
  });
  return router;
}
