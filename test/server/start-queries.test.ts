// A start runs none of its statements through Prisma's client, nor starts its query engine (whose
// WebAssembly query compiler takes 8–30 MB for as long as the process runs): the settings and
// signing keys it reads (and, on a new database, writes), the outbox's first look for mail to
// send and the key refresher's poll go through the executor (src/db/settings.ts, src/keys/store.ts, src/mail/store.ts). The first run
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
import { analyzeStaleTables } from '../../src/db/planner-statistics.js';
import { createOutboxStore } from '../../src/mail/store.js';
import { createLinkStore } from '../../src/people/link-store.js';
import { createLogger } from '../../src/core/logger.js';
import { createGatehouse, type Gatehouse } from '../../src/server.js';
import { createTestDatabase, flavours, type TestDatabase } from '../helpers/databases.js';
import { testEnv } from '../helpers/gatehouse.js';

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

  const start = () => {
    const config = loadConfig(testEnv(database!.config));
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
});
