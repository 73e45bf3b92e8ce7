// A start runs none of its statements through Prisma's client, nor starts its query engine (whose
// WebAssembly query compiler takes 8–30 MB for as long as the process runs): the settings and
// signing keys it reads (and, on a new database, writes), the outbox's first look for mail to
// send and the key refresher's poll go through the executor (src/db/settings.ts, src/keys/store.ts, src/mail/store.ts).
// Nor does what a serving process does later on its own or for the protocol's rarer requests:
// a key rotation and the retirement sweep, a start after SECRETS changed, a grant's revocation, a
// resource server's introspection, the outbox's deliveries (round 30). The first run
// of each statement through Prisma's client in a process goes through its query compiler while
// that is cold: 20–40 ms for a query of the builder, 6–8 ms for a raw statement, paid again by
// every start (test/bench/ROUNDS.md, rounds 24, 25 and 29). Prisma's generated clients are
// wrapped here to record every statement they log and every start of their engine.
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createArtifactStore } from '../../src/artifacts/store.js';
import { pruneAuditEvents } from '../../src/audit/log.js';
import { loadConfig } from '../../src/config/index.js';
import { sweepExpiredCounters } from '../../src/core/counters.js';
import { dialectOf } from '../../src/db/dialect.js';
import { executorOf } from '../../src/db/executor.js';
import { analyzeStaleTables } from '../../src/db/planner-statistics.js';
import { retireExpiredKeys, rotateIfDue } from '../../src/keys/signing-keys.js';
import { SALT_KEY } from '../../src/oidc/subjects.js';
import { tokenPolicies } from '../../src/resources/engine.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { createLinkStore } from '../../src/people/link-store.js';
import { createLogger } from '../../src/core/logger.js';
import { createGatehouse, type Gatehouse } from '../../src/server.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { TEST_SECRET, testEnv } from '../helpers/gatehouse.js';

const logged = vi.hoisted(() => ({ statements: [] as string[], engineStarts: 0 }));

/**
 * A generated client module whose PrismaClient records in `logged` each statement it runs and each
 * start of its query engine (which connects the driver adapter it was given, and loads the
 * engine's WebAssembly query compiler).
 */
async function recording<M extends { PrismaClient: new (...args: never[]) => object }>(actual: M): Promise<M> {
  const Base = actual.PrismaClient as unknown as new (options: Record<string, unknown>) => { $on(event: 'query', listener: (event: { query: string }) => void): void };
  class RecordingPrismaClient extends Base {
    constructor(options: Record<string, unknown>) {
      const given = options.adapter as { connect(): Promise<unknown> };
      const adapter = Object.assign(Object.create(given) as object, {
        connect: () => {
          logged.engineStarts++;
          return given.connect();
        },
      });
      super({ ...options, adapter, log: [{ emit: 'event', level: 'query' }] });
      this.$on('query', ({ query }) => logged.statements.push(query));
    }
  }
  return { ...actual, PrismaClient: RecordingPrismaClient };
}

vi.mock('../../src/generated/sqlite/client.js', async (importOriginal) => recording(await importOriginal()));
vi.mock('../../src/generated/postgresql/client.js', async (importOriginal) => recording(await importOriginal()));

describe.each(await flavours())('a start on %s', (flavour) => {
  let database: TestDatabase | undefined;
  let running: Gatehouse | undefined;

  afterEach(async () => {
    await running?.close();
    running = undefined;
    await database?.drop();
    database = undefined;
  });

  const start = (env: Record<string, string> = {}) => {
    const config = loadConfig(testEnv(database!.config, env));
    return createGatehouse(config, createLogger(config));
  };

  it("runs none of its statements through Prisma's client, the first on a new database included, nor do the outbox's first look, the key poll, a readiness probe, a metrics scrape and the background jobs", async () => {
    database = await createTestDatabase(flavour);
    logged.statements.length = 0;
    logged.engineStarts = 0;
    // Nor does the first start on a new database, which writes the settings and the first signing keys.
    await (await start()).close();
    expect(logged.statements).toEqual([]);
    expect(logged.engineStarts).toBe(0);

    running = await start();
    // Stopping the outbox's worker waits for its first look for mail to send, made as it starts.
    await running.outbox.stop();
    expect(logged.statements).toEqual([]);
    // Nor does the key refresher's poll, first made half a minute later (KEY_REFRESH_INTERVAL).
    await running.signingKeys.refresh();
    expect(logged.statements).toEqual([]);
    // Nor does a readiness probe, which a load balancer sends every few seconds.
    expect((await request(running.app.handle).get('/readyz')).status).toBe(200);
    expect(logged.statements).toEqual([]);
    // Nor does a scrape of the metrics (every 15 s or so where Prometheus watches), which counts the outbox's messages.
    expect(await running.metrics.registry.metrics()).toMatch(/gatehouse_outbox_messages\{state="pending"\} 0/);
    expect(logged.statements).toEqual([]);
    // Nor do the background jobs, every SWEEP_INTERVAL (and PostgreSQL's check for tables to analyze, every 30 s).
    const { db } = running;
    await createArtifactStore(db).deleteExpired(new Date());
    await pruneAuditEvents(db, 3600);
    await sweepExpiredCounters(db);
    await createOutboxStore(db, loadConfig(testEnv(database!.config)).secrets).pruneFinished(new Date());
    await createLinkStore(db).pruneExpired(new Date());
    await analyzeStaleTables(db);
    expect(logged.statements).toEqual([]);
    // So the client's engine, and its query compiler, have not even been started.
    expect(logged.engineStarts).toBe(0);

    // The recording works: a statement through Prisma's client is logged, and starts the engine.
    await running.db.prisma.client.count();
    expect(logged.statements).toHaveLength(1);
    expect(logged.engineStarts).toBe(1);
  });

  it("nor do a scheduled key rotation and what follows it, a start after SECRETS changed, the revocation of a grant, a resource server's introspection or the outbox's deliveries", async () => {
    database = await createTestDatabase(flavour);
    const env = { KEY_ROTATION_INTERVAL: '90d' };
    running = await start(env);
    const { db } = running;
    const config = loadConfig(testEnv(database.config, env));
    const sql = executorOf(db);
    const dialect = dialectOf(db.flavour);
    // A resource server registered to introspect another client's tokens (written in SQL: Prisma's client is what is watched).
    await sql.changes({ text: dialect.sql('INSERT INTO "Resource" ("id", "scope", "introspectionClients", "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?)') }, [
      'https://api.example',
      'read',
      'gateway',
      dialect.time(new Date()),
      dialect.time(new Date()),
    ]);
    logged.statements.length = 0;
    logged.engineStarts = 0;

    // A scheduled rotation, due 91 days on (the key poll runs it), dates the old keys' retirement.
    const later = new Date(Date.now() + 91 * 86_400_000);
    const rotation = await rotateIfDue(db, config, later);
    expect(rotation?.created.length).toBeGreaterThan(0);
    expect(rotation?.retiring.length).toBeGreaterThan(0);
    // The poll reads the keys it has not opened yet (another instance's rotation, as well).
    expect(await running.signingKeys.refresh()).toBe(true);
    // The sweep, every SWEEP_INTERVAL, stamps the keys past that date retired.
    expect(await retireExpiredKeys(db, undefined, new Date(later.getTime() + 365 * 86_400_000))).toHaveLength(rotation!.retiring.length);
    // A revoked refresh token or a sign-out revokes its grant model by model; a replayed code, all of it.
    const artifacts = createArtifactStore(db);
    expect(await artifacts.destroyByGrantId('some-grant', 'RefreshToken')).toBe(0);
    expect(await artifacts.destroyByGrantId('some-grant')).toBe(0);
    // Introspection of another client's token by the resource server it was issued for.
    const policies = tokenPolicies(db);
    expect(await policies.introspectionAllowed('gateway', { clientId: 'app', aud: 'https://api.example' })).toBe(true);
    expect(await policies.introspectionAllowed('app-2', { clientId: 'app', aud: 'https://api.example' })).toBe(false);
    // A sign-out's back-channel logout (or a mail): queued, claimed, tried again, delivered, and the outbox's next due time.
    // (The instance's own worker stopped, so that the claims below are this test's.)
    await running.outbox.stop();
    const outbox = createOutboxStore(db, config.secrets);
    const message = { kind: 'backchannel_logout' as const, topic: 'logout', recipient: 'app', payload: { logout_token: 'x' }, maxAttempts: 2 };
    await outbox.enqueue(message);
    const claimed = await outbox.claimNext(new Date(), 60);
    expect(await outbox.retryAt(claimed!, new Date(), 'refused')).toBe(true);
    expect(await outbox.nextDue()).toBeInstanceOf(Date);
    expect(await outbox.markSent((await outbox.claimNext(new Date(Date.now() + 1000), 60))!)).toBe(true);
    await outbox.enqueue({ ...message, maxAttempts: 1 });
    expect(await outbox.markFailed((await outbox.claimNext(new Date(Date.now() + 1000), 60))!, 'refused')).toBe(true);
    expect(await outbox.nextDue()).toBeNull();
    expect(logged.statements).toEqual([]);

    // A start after a new secret was put first seals the keys and the pairwise salt with it.
    const sealed = async (executor = sql) => [
      ...(await executor.rows<{ sealed: string }>({ text: 'SELECT "privateJwkEncrypted" AS "sealed" FROM "SigningKey" WHERE "retiredAt" IS NULL ORDER BY "id"' }, [])),
      ...(await executor.rows<{ sealed: string }>({ text: dialect.sql('SELECT "valueEncrypted" AS "sealed" FROM "Setting" WHERE "key" = ?') }, [SALT_KEY])),
    ].map((row) => row.sealed);
    const before = await sealed();
    await running.close();
    running = await start({ ...env, SECRETS: `a-new-secret-put-first-0123456789,${TEST_SECRET}` });
    expect(logged.statements).toEqual([]);
    expect(logged.engineStarts).toBe(0);
    const after = await sealed(executorOf(running.db));
    expect(after).toHaveLength(before.length);
    for (const [i, value] of after.entries()) expect(value).not.toBe(before[i]);
  });
});
