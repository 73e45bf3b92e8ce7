// The composition root: configuration → database → keys → engine → HTTP → listen.
// `npm start` runs this file; tests call createGatehouse() with their own configuration.
import type Provider from 'oidc-provider';
import { isClusterWorker, serveAsWorker, startPrimary, workerId } from './cluster.js';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { createDb, type Db, type DbOptions } from './db/client.js';
import { migrate } from './db/migrate.js';
import { startAnalyzingStaleTables } from './db/planner-statistics.js';
import { sealStoredArtifacts } from './artifacts/at-rest.js';
import { createApp, type App } from './http/app.js';
import { readinessChecks } from './http/health.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { clusterMetrics, listenForMetrics, reportToClusterPrimary, type MetricsListener } from './http/metrics-port.js';
import { createPageRenderer } from './http/pages.js';
import { batchedStdout, createLogger, type Logger } from './core/logger.js';
import { createAccountService } from './people/self-service.js';
import { createPasswordVerifier } from './people/accounts.js';
import { createSignUp } from './people/sign-up.js';
import { createPasswordReset } from './people/password-reset.js';
import { createLinkStore } from './people/link-store.js';
import { createEmailGate } from './people/email-verification.js';
import { accountMailOf, createMailRenderer } from './http/mail-renderer.js';
import { startSweeper } from './oidc/adapter.js';
import { createAuditLog, startAuditRetention, type AuditLog } from './audit/log.js';
import { createOutbox, type Outbox } from './mail/outbox.js';
import { createOutboxStore } from './mail/store.js';
import { createSecondFactorLimits, createSignInLimits } from './people/sign-in-limits.js';
import { startCounterSweeper } from './core/counters.js';
import { installEngineHooks } from './oidc/hooks.js';
import { listen } from './listen.js';
import { shutDownOnRequest } from './shutdown.js';
import { lowerHelperThreads } from './thread-priority.js';
import { ensureDemo, type Demo } from './seed/demo.js';
import { createInteractionSteps } from './oidc/interactions.js';
import { createSignInHandoffs } from './people/sign-in-handoff.js';
import { startKeyRefresher, type KeyRefresher } from './keys/refresher.js';
import { loadSigningKeys } from './keys/signing-keys.js';
import { createMfa } from './people/mfa.js';
import { createPasskeys } from './people/passkeys.js';
import { createProvider } from './oidc/provider.js';
import { createFederation, type FederatedSignInObserver } from './federation/sign-in.js';
import { loadPairwiseSalt } from './oidc/subjects.js';

export interface Gatehouse {
  /** `app.handle` serves every request (http/app.ts). */
  readonly app: App;
  readonly provider: Provider;
  readonly db: Db;
  readonly demo: Demo | undefined;
  /** The signing keys in use; `refresh()` picks up a rotation now instead of at the next KEY_REFRESH_INTERVAL. */
  readonly signingKeys: KeyRefresher;
  /** Its Prometheus registry and instruments (http/metrics.ts). */
  readonly metrics: Metrics;
  /** Mails and back-channel logouts waiting to be delivered (mail/outbox.ts). */
  readonly outbox: Outbox;
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
  const provider = createProvider({ config, db, keys, pairwiseSalt, renderPage, observeAdapter: metrics?.observeAdapter });
  // Mails and back-channel logouts; its worker starts with the server (createGatehouse).
  const outbox = createOutbox({ config, db, logger, observe: metrics?.countOutboxOutcome });
  const hooks = installEngineHooks(provider, { config, db, logger, audit, renderPage, outbox, observer: metrics });
  return { provider, keys, renderPage, audit, hooks, outbox };
}

/**
 * Opens the database; with AUTO_MIGRATE, first applies the SQL migrations, then rewrites rows
 * stored before secret ids were hashed (artifacts/at-rest.ts; once per database, then a no-op).
 */
async function openDatabase(config: Config, logger: Logger, database: Config['database'] = config.database, options: DbOptions = {}): Promise<Db> {
  // The client is loaded and made while the migrations are checked: it runs no query before they are.
  const [migration, opening] = await Promise.allSettled([config.database.autoMigrate ? migrate(database) : undefined, createDb(database, options)]);
  if (migration.status === 'rejected') {
    if (opening.status === 'fulfilled') await opening.value.close();
    throw migration.reason;
  }
  const report = migration.value;
  if (report?.applied.length) logger.info({ applied: report.applied }, 'applied database migrations');
  if (report?.unknown.length) logger.warn({ unknown: report.unknown }, 'the database has migrations this release does not know (a newer release applied them?)');
  if (opening.status === 'rejected') throw opening.reason;
  const db = opening.value;
  try {
    const rewritten = config.database.autoMigrate ? await sealStoredArtifacts(db, config.secrets) : 0;
    if (rewritten) logger.info({ rewritten }, 'stored token, code and session ids hashed, their secret values encrypted');
    return db;
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * Deletes what has expired, every SWEEP_INTERVAL; on PostgreSQL without autovacuum, analyzes what
 * it would (db/planner-statistics.ts). Idempotent, so any number of instances may run it. Every
 * job's statements are SQL on the executor: through Prisma's client the first would start the
 * client's engine, and load its query compiler, in a process that otherwise never needs it
 * (db/client.ts). Returns the stop function.
 */
function startBackgroundJobs(db: Db, config: Config, logger: Logger): () => void {
  const stops = [
    startSweeper(db, config.database.sweepInterval, (error) => logger.error({ err: error }, 'sweeping expired artifacts failed')),
    startAuditRetention(db, config.auditRetention, config.database.sweepInterval, (error) => logger.error({ err: error }, 'deleting old audit events failed')),
    startCounterSweeper(db, config.database.sweepInterval, (error) => logger.error({ err: error }, 'sweeping expired brute-force counters failed')),
    startOutboxRetention(db, config, (error) => logger.error({ err: error }, 'deleting old outbox messages failed')),
    startAnalyzingStaleTables(
      db,
      (error) => logger.error({ err: error }, 'analyzing tables autovacuum does not analyze failed'),
      (tables) => logger.debug({ tables }, 'analyzed tables autovacuum does not analyze'),
    ),
  ];
  return () => stops.forEach((stop) => stop());
}

/**
 * Every SWEEP_INTERVAL: sent and failed outbox messages older than AUDIT_RETENTION, and mailed
 * links a day after they expired, are deleted.
 */
function startOutboxRetention(db: Db, config: Config, onError: (error: unknown) => void): () => void {
  if (config.database.sweepInterval <= 0) return () => {};
  const store = createOutboxStore(db, config.secrets);
  const links = createLinkStore(db);
  const timer = setInterval(() => {
    store.pruneFinished(new Date(Date.now() - config.auditRetention * 1000)).catch(onError);
    links.pruneExpired(new Date(Date.now() - 86_400_000)).catch(onError);
  }, config.database.sweepInterval * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * What the pages call: the password verifier and second-factor checks under their limits, the
 * interaction steps and the account page's service. `signIns` is the audit log sign-in attempts
 * are recorded through (the metrics count them on the way); `federatedSignIns` counts sign-ins
 * through upstream identity providers.
 */
export function createServices({ config, db, provider, audit, outbox, signIns = audit, federatedSignIns }: { config: Config; db: Db; provider: Provider; audit: AuditLog; outbox: Outbox; signIns?: AuditLog; federatedSignIns?: FederatedSignInObserver }) {
  const mfa = createMfa(db, { secrets: config.secrets, audit });
  const signInLimits = createSignInLimits(db, config.bruteForce);
  const passwords = createPasswordVerifier(db, config.passwords.bcryptCost, signIns, signInLimits);
  const passkeys = createPasskeys(db, { rpId: config.passkeys.rpId, origin: new URL(config.issuer).origin, rpName: config.branding.productName, audit: signIns, signInLimits });
  const federation = createFederation({ db, config, audit, observe: federatedSignIns });
  const links = { accept: federation.acceptPendingLink, complete: federation.completePendingLink };
  const accountMail = accountMailOf(config, outbox);
  // SIGNUP=open asks every unverified address to be verified first, so a new account proves its address before its first sign-in to an app.
  const emailGate = config.recovery.requireVerifiedEmail || config.signUp.mode === 'open' ? createEmailGate({ db, mail: accountMail, recovery: config.recovery }) : undefined;
  const handoffs = createSignInHandoffs({ db, audit: signIns });
  const steps = createInteractionSteps(provider, passwords, audit, mfa, createSecondFactorLimits(db, config.bruteForce), passkeys, links, emailGate, handoffs);
  const account = createAccountService({ provider, db, passwords, mfa, passkeys, audit, bcryptCost: config.passwords.bcryptCost, passwordMinLength: config.passwords.minLength, mail: accountMail });
  const composeMail = createMailRenderer(config);
  const passwordReset = config.recovery.passwordReset ? createPasswordReset({ db, outbox, composeMail, audit, config }) : undefined;
  const signUp = config.signUp.mode === 'open' ? createSignUp({ db, mail: accountMail, audit, config }) : undefined;
  return { mfa, passwords, passkeys, steps, account, federation, passwordReset, accountMail, signUp };
}

/** `backgroundJobs: false`: the sweepers and SQLite's checkpoints run elsewhere (in the cluster's primary). */
export async function createGatehouse(config: Config, logger: Logger, options: { now?: () => Date; backgroundJobs?: boolean } = {}): Promise<Gatehouse> {
  const db = await openDatabase(config, logger, config.database, { checkpoints: options.backgroundJobs !== false });
  try {
    const metrics = createMetrics();
    const { provider, keys, renderPage, audit, hooks, outbox } = await createEngine(config, db, logger, metrics);
    metrics.watchOutbox(() => createOutboxStore(db, config.secrets).countByState());
    const { steps, account, federation, passwordReset, accountMail, signUp, passkeys } = createServices({ config, db, provider, audit, outbox, signIns: metrics.countSignIns(audit), federatedSignIns: metrics.countFederatedSignIn });
    const demo = config.demo ? await ensureDemo(db, config) : undefined;
    // Rotations made elsewhere (CLI, admin API, another instance, the schedule) reach this engine.
    const signingKeys = startKeyRefresher({ db, config, provider, initial: keys, logger, audit, now: options.now });
    const readiness = readinessChecks({ config, db, keys: signingKeys });
    const admin = { db, audit, refreshKeys: () => signingKeys.refresh(), accountMail };
    const app = createApp({ config, provider, steps, renderPage, logger, readiness, metrics, demo, account, admin, console: { ...admin, passwordReset }, federation, passwordReset, emailVerification: { db, audit }, signUp, invitations: { db, audit, passkeys } });
    const stopBackgroundJobs = options.backgroundJobs === false ? () => {} : startBackgroundJobs(db, config, logger);
    // Every instance (cluster workers too) delivers: each message is claimed by exactly one.
    outbox.start();
    return {
      app,
      provider,
      db,
      demo,
      signingKeys,
      metrics,
      outbox,
      async close() {
        await signingKeys.stop();
        stopBackgroundJobs();
        // What is not sent yet stays in the outbox, for the next instance that runs.
        await outbox.stop();
        await hooks.settle();
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
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
  const logger = createLogger(config, batchedStdout());
  if (isClusterWorker()) return serveAsWorker(() => serve(config, logger.child({ worker: workerId(), pid: process.pid }), { worker: true }));
  for (const warning of config.warnings) logger.warn(warning);
  if (config.generatedSecretFile) {
    logger.warn({ file: config.generatedSecretFile }, 'SECRETS is not set: using a generated development secret kept in this file. Set SECRETS in production.');
  }
  if (config.server.workers > 1) {
    return startPrimary({ workers: config.server.workers, shutdownTimeoutSeconds: config.server.shutdownTimeout }, logger, { prepare: () => prepareMachine(config, logger) });
  }
  await serve(config, logger, { worker: false });
}

/**
 * Starts Gatehouse and listens until SIGTERM/SIGINT; returns the shutdown. A cluster worker leaves
 * migrations, sweepers and the demo data to the primary, and reports its metrics to it when the
 * primary serves METRICS_PORT for the whole machine.
 */
async function serve(config: Config, logger: Logger, { worker }: { worker: boolean }) {
  const gatehouse = worker ? await createGatehouse({ ...config, database: { ...config.database, autoMigrate: false } }, logger, { backgroundJobs: false }) : await createGatehouse(config, logger);
  if (worker && config.metrics.port !== undefined) reportToClusterPrimary(gatehouse.metrics.registry);
  const listener = await listen(gatehouse.app.handle, config, worker ? undefined : { source: gatehouse.metrics.registry, logger });
  lowerHelpers(config, logger);
  logger.info({ issuer: config.issuer, port: config.server.port, database: config.database.flavour }, `Gatehouse ${worker ? 'worker ' : ''}is listening on ${config.issuer}`);
  if (gatehouse.demo && !worker) printDemo(gatehouse.demo, logger);
  const shutDown = shutDownOnRequest(listener, gatehouse, config, logger);
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
  return shutDown;
}

/** HELPER_THREAD_NICE for this process's helper threads (thread-priority.ts); returns the function that stops looking for new ones. */
function lowerHelpers(config: Config, logger: Logger): () => void {
  return lowerHelperThreads(config.server.helperThreadNice, { onRefused: (error) => logger.warn({ err: error }, 'could not lower the helper threads below the event loop (HELPER_THREAD_NICE)') });
}

/**
 * WEB_CONCURRENCY > 1, in the primary, before any worker starts: migrations and the demo data
 * once per machine, the sweepers and SQLite's checkpoints in one process only (its database's
 * checkpoint thread serves the workers' writes too), METRICS_PORT for the whole machine. The
 * development secret file already exists: loadConfig() created it.
 */
async function prepareMachine(config: Config, logger: Logger): Promise<() => Promise<void>> {
  // The sweepers run one query at a time.
  const db = await openDatabase(config, logger, { ...config.database, poolSize: 1 });
  let metricsListener: MetricsListener | undefined;
  try {
    const demo = config.demo ? await ensureDemo(db, config) : undefined;
    if (config.metrics.port !== undefined) metricsListener = await listenForMetrics(clusterMetrics(), { host: config.metrics.host, port: config.metrics.port }, logger);
    const stopBackgroundJobs = startBackgroundJobs(db, config, logger);
    // The primary's checkpoint thread gives way to the workers' event loops, as theirs would.
    const stopLowering = lowerHelpers(config, logger);
    if (demo) printDemo(demo, logger);
    return async () => {
      stopLowering();
      stopBackgroundJobs();
      await metricsListener?.close();
      await db.close();
    };
  } catch (error) {
    await metricsListener?.close();
    await db.close();
    throw error;
  }
}

function printDemo(demo: Demo, logger: Logger): void {
  // After the log lines before it, which may still wait in the log's batch.
  logger.flush();
  console.log(
    [
      '',
      'Development demo (DEMO=false turns it off):',
      `  sign in at   ${demo.authorizeUrl}`,
      `  user         ${demo.email} / ${demo.password}`,
      `  client       ${demo.clientId} / ${demo.clientSecret}`,
      `  redirect_uri ${demo.redirectUri}`,
      `  console      ${demo.consoleUrl} (the demo user is in ${demo.adminGroup}; it asks to set up an authenticator app first)`,
      '',
    ].join('\n'),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? `Gatehouse failed to start: ${error.message}` : error);
    process.exit(1);
  });
}
