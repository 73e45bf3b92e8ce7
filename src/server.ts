// The composition root: configuration → database → keys → engine → HTTP → listen.
// `npm start` runs this file; tests call createGatehouse() with their own configuration.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { errors, KoaContextWithOIDC } from 'oidc-provider';
import { isClusterWorker, onPrimaryShutdownRequest, superviseWorkers, workerId } from './cluster.js';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { createDb, type Db } from './db/client.js';
import { migrate } from './db/migrate.js';
import { createApp } from './http/app.js';
import { readinessChecks } from './http/health.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { clusterMetrics, listenForMetrics, reportToClusterPrimary, type MetricsListener, type MetricsSource } from './http/metrics-port.js';
import { createPageRenderer } from './http/pages.js';
import { requestIdOf } from './http/request-log.js';
import { createLogger, type Logger } from './core/logger.js';
import { createAccountService } from './people/self-service.js';
import { createPasswordVerifier } from './people/accounts.js';
import { startSweeper } from './oidc/adapter.js';
import { recordEngineEvents } from './audit/hooks.js';
import { createAuditLog, startAuditRetention } from './audit/log.js';
import { settleBackchannelLogouts } from './oidc/backchannel-logout.js';
import { createSignInLimits, installClientAuthLimit, startCounterSweeper } from './people/sign-in-limits.js';
import { limitUserCodeGuesses } from './oidc/device-flow.js';
import { ensureDemo, type Demo } from './seed/demo.js';
import { createInteractionSteps } from './oidc/interactions.js';
import { startKeyRefresher, type KeyRefresher } from './keys/refresher.js';
import { loadSigningKeys } from './keys/signing-keys.js';
import { createMfa } from './people/mfa.js';
import { createProvider } from './oidc/provider.js';
import { loadPairwiseSalt } from './oidc/subjects.js';

export interface Gatehouse {
  readonly app: ReturnType<typeof createApp>;
  readonly provider: Provider;
  readonly db: Db;
  readonly demo: Demo | undefined;
  /** The signing keys in use; `refresh()` picks up a rotation now instead of at the next KEY_REFRESH_INTERVAL. */
  readonly signingKeys: KeyRefresher;
  /** Its Prometheus registry and instruments (http/metrics.ts). */
  readonly metrics: Metrics;
  /** Stops background work and closes the database. */
  close(): Promise<void>;
}

/** Keys, salt and the configured engine, for the server and for CLI commands that need it. */
export async function createEngine(config: Config, db: Db, logger: Logger, metrics?: Metrics) {
  const keys = await loadSigningKeys(db, config.secrets);
  if (keys.created.length) logger.info({ kids: keys.created }, 'generated signing keys');
  const audit = createAuditLog(db, logger);
  for (const kid of keys.created) await audit.record({ type: 'key.created', details: { kid } });
  const pairwiseSalt = await loadPairwiseSalt(db, config.secrets);
  const renderPage = createPageRenderer(config);
  const provider = createProvider({ config, db, keys, pairwiseSalt, renderPage, logger, observeAdapter: metrics?.observeAdapter });
  provider.on('server_error', (ctx, error) => logger.error({ err: error, request_id: requestIdOf(ctx.res) }, 'engine server error'));
  // Refused protocol requests: the client gets the OAuth error, the log also gets the engine's
  // reason (error_detail), which is often the only place the real cause is named.
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'end_session.error', 'pushed_authorization_request.error'] as const) {
    const listen = provider.on.bind(provider) as (name: string, listener: (ctx: KoaContextWithOIDC, error: errors.OIDCProviderError) => void) => void;
    listen(event, (ctx, error) =>
      logger.info(
        { event, request_id: requestIdOf(ctx.res), route: ctx.oidc?.route, client_id: ctx.oidc?.client?.clientId, error: error.error, error_description: error.error_description, error_detail: error.error_detail },
        'request refused',
      ),
    );
  }
  const auditEvents = recordEngineEvents(provider, audit);
  return { provider, keys, renderPage, audit, auditEvents };
}

async function applyMigrations(config: Config, logger: Logger): Promise<void> {
  const report = await migrate(config.database);
  if (report.applied.length) logger.info({ applied: report.applied }, 'applied database migrations');
  if (report.unknown.length) logger.warn({ unknown: report.unknown }, 'the database has migrations this release does not know (a newer release applied them?)');
}

/** Deletes what has expired, every SWEEP_INTERVAL; idempotent, so any number of instances may run it. Returns the stop function. */
function startBackgroundJobs(db: Db, config: Config, logger: Logger): () => void {
  const stops = [
    startSweeper(db, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'sweeping expired artifacts failed')),
    startAuditRetention(db, config.auditRetentionSeconds, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'deleting old audit events failed')),
    startCounterSweeper(db, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'sweeping expired brute-force counters failed')),
  ];
  return () => stops.forEach((stop) => stop());
}

/** `backgroundJobs: false`: the sweepers run elsewhere (in the cluster's primary). */
export async function createGatehouse(config: Config, logger: Logger, options: { now?: () => Date; backgroundJobs?: boolean } = {}): Promise<Gatehouse> {
  if (config.autoMigrate) await applyMigrations(config, logger);
  const db = await createDb(config.database);
  try {
    const metrics = createMetrics();
    const { provider, keys, renderPage, audit, auditEvents } = await createEngine(config, db, logger, metrics);
    installClientAuthLimit(provider, { db, settings: config.bruteForce, audit, logger, cacheSeconds: config.clientCacheSeconds });
    if (config.features.deviceFlow) limitUserCodeGuesses(provider, { db, settings: config.bruteForce, audit });
    const mfa = createMfa(db, { secrets: config.secrets, audit });
    const verifyPassword = createPasswordVerifier(db, config.bcryptCost, metrics.countSignIns(audit), createSignInLimits(db, config.bruteForce));
    const steps = createInteractionSteps(provider, verifyPassword, audit, mfa);
    const demo = config.demo ? await ensureDemo(db, config) : undefined;
    // Rotations made elsewhere (CLI, admin API, another instance, the schedule) reach this engine.
    const signingKeys = startKeyRefresher({ db, config, provider, initial: keys, logger, audit, now: options.now });
    const readiness = readinessChecks({ config, db, keys: signingKeys });
    const account = createAccountService({ provider, db, passwords: verifyPassword, mfa, audit, bcryptCost: config.bcryptCost, passwordMinLength: config.passwordMinLength });
    const admin = { db, audit, refreshKeys: () => signingKeys.refresh() };
    const app = createApp({ config, provider, steps, renderPage, logger, readiness, metrics, demo, account, admin });
    const stopBackgroundJobs = options.backgroundJobs === false ? () => {} : startBackgroundJobs(db, config, logger);
    return {
      app,
      provider,
      db,
      demo,
      signingKeys,
      metrics,
      async close() {
        await signingKeys.stop();
        stopBackgroundJobs();
        // Logout tokens are already signed; only their delivery (bounded retries) may be pending.
        await settleBackchannelLogouts();
        await auditEvents.settle();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}

interface Listener {
  /**
   * Refuses new connections, lets the requests in flight finish (closing their connections
   * once answered, and idle keep-alive connections at once) and resolves when none is left.
   */
  drain(): Promise<void>;
}

/** Serves the app on PORT; with `metrics`, also /metrics on METRICS_PORT (drained together). */
async function listen(gatehouse: Gatehouse, config: Config, metrics?: { source: MetricsSource; logger: Logger }): Promise<Listener> {
  const metricsListener = metrics && config.metrics.port !== undefined ? await listenForMetrics(metrics.source, { host: config.metrics.host, port: config.metrics.port }, metrics.logger) : undefined;
  try {
    return await listenForApp(gatehouse, config, metricsListener);
  } catch (error) {
    await metricsListener?.close();
    throw error;
  }
}

function listenForApp(gatehouse: Gatehouse, config: Config, metricsListener: MetricsListener | undefined): Promise<Listener> {
  const server = createServer();
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  // Registered before the app, so the header is set before any handler can answer.
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    // Without Connection: close, a kept-alive connection would hold the server open until
    // its keep-alive timeout after answering.
    if (draining) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });
  server.on('request', gatehouse.app);
  const drain = () => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    server.closeIdleConnections();
    return Promise.all([closed, metricsListener?.close()]).then(() => undefined);
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve({ drain });
    });
  });
}

/**
 * `npm start` and `gatehouse serve`: load the configuration, start, and shut down on SIGTERM/SIGINT.
 * With WEB_CONCURRENCY > 1 this process becomes the primary of that many workers (cluster.ts),
 * each of which runs main() again and serves.
 */
export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config);
  if (isClusterWorker()) return serveAsWorker(config, logger.child({ worker: workerId(), pid: process.pid }));
  if (config.generatedSecretFile) {
    logger.warn({ file: config.generatedSecretFile }, 'SECRETS is not set: using a generated development secret kept in this file. Set SECRETS in production.');
  }
  if (config.webConcurrency > 1) return startPrimary(config, logger);

  const gatehouse = await createGatehouse(config, logger);
  const listener = await listen(gatehouse, config, { source: gatehouse.metrics.registry, logger });
  logger.info({ issuer: config.issuer, port: config.port, database: config.database.flavour }, `Gatehouse is listening on ${config.issuer}`);
  if (gatehouse.demo) printDemo(gatehouse.demo);
  const shutDown = shutDownOnRequest(listener, gatehouse, config, logger);
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
}

/**
 * WEB_CONCURRENCY > 1, in the primary: the work to do once per machine, before any worker starts
 * (migrations, the demo data) or in one process only (the sweepers), then the workers. The
 * development secret file already exists: loadConfig() created it.
 */
async function startPrimary(config: Config, logger: Logger): Promise<void> {
  if (config.autoMigrate) await applyMigrations(config, logger);
  // The sweepers run one query at a time.
  const db = await createDb({ ...config.database, poolSize: 1 });
  let stopBackgroundJobs: () => void;
  let metricsListener: MetricsListener | undefined;
  try {
    const demo = config.demo ? await ensureDemo(db, config) : undefined;
    if (config.metrics.port !== undefined) metricsListener = await listenForMetrics(clusterMetrics(), { host: config.metrics.host, port: config.metrics.port }, logger);
    stopBackgroundJobs = startBackgroundJobs(db, config, logger);
    if (demo) printDemo(demo);
  } catch (error) {
    await metricsListener?.close();
    await db.close();
    throw error;
  }
  superviseWorkers({
    workers: config.webConcurrency,
    logger,
    shutdownTimeoutSeconds: config.shutdownTimeoutSeconds,
    async onStopped() {
      stopBackgroundJobs();
      await metricsListener?.close();
      await db.close();
    },
  });
}

/** A worker forked by the primary: it serves. Migrations and sweepers are the primary's, which also created the demo data before any worker started. */
async function serveAsWorker(config: Config, logger: Logger): Promise<void> {
  // Listening from the start: the primary may ask while this worker is still starting.
  const askedToStop = new Promise<void>((resolve) => onPrimaryShutdownRequest(resolve));
  const gatehouse = await createGatehouse({ ...config, autoMigrate: false }, logger, { backgroundJobs: false });
  // The primary serves METRICS_PORT for the whole machine, asking each listening worker for its figures.
  if (config.metrics.port !== undefined) reportToClusterPrimary(gatehouse.metrics.registry);
  const listener = await listen(gatehouse, config);
  logger.info({ issuer: config.issuer, port: config.port, database: config.database.flavour }, `Gatehouse worker is listening on ${config.issuer}`);
  const shutDown = shutDownOnRequest(listener, gatehouse, config, logger);
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
  void askedToStop.then(() => shutDown('primary'));
}

function printDemo(demo: Demo): void {
  console.log(
    [
      '',
      'Development demo (DEMO=false turns it off):',
      `  sign in at   ${demo.authorizeUrl}`,
      `  user         ${demo.email} / ${demo.password}`,
      `  client       ${demo.clientId} / ${demo.clientSecret}`,
      `  redirect_uri ${demo.redirectUri}`,
      '',
    ].join('\n'),
  );
}

/**
 * SIGTERM/SIGINT (or, in a worker, the primary's request): stop accepting, finish what is in
 * flight, stop background work (which waits for back-channel logouts and audit writes), close the
 * database, exit 0. A second signal or SHUTDOWN_TIMEOUT ends it with exit 1; a repeated request
 * from the primary (it also arrives after a terminal's Ctrl-C reached every process) changes nothing.
 */
function shutDownOnRequest(listener: Listener, gatehouse: Gatehouse, config: Config, logger: Logger) {
  let stopping = false;
  return (reason: NodeJS.Signals | 'primary') => {
    if (stopping) {
      if (reason === 'primary') return;
      logger.error({ signal: reason }, 'second signal while shutting down: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal: reason, timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutting down');
    // Not unref'd: it must fire even if a stuck promise is all that is left.
    setTimeout(() => {
      logger.error({ timeoutSeconds: config.shutdownTimeoutSeconds }, 'shutdown timed out with work still in progress: exiting now');
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000);
    listener
      .drain()
      .then(() => gatehouse.close())
      .then(
        () => {
          logger.info('shut down');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutting down failed');
          process.exit(1);
        },
      );
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? `Gatehouse failed to start: ${error.message}` : error);
    process.exit(1);
  });
}
