// The composition root: configuration → database → keys → engine → HTTP → listen.
// `npm start` runs this file; tests call createGatehouse() with their own configuration.
import type { Server } from 'node:http';
import type Provider from 'oidc-provider';
import type { errors, KoaContextWithOIDC } from 'oidc-provider';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDb, type Db } from './db/client.js';
import { migrate } from './db/migrate.js';
import { createApp } from './http/app.js';
import { createPageRenderer } from './http/pages.js';
import { createLogger, type Logger } from './logger.js';
import { createPasswordVerifier } from './oidc/accounts.js';
import { startSweeper } from './oidc/adapter.js';
import { recordEngineEvents } from './oidc/audit-events.js';
import { createAuditLog, startAuditRetention } from './oidc/audit.js';
import { settleBackchannelLogouts } from './oidc/backchannel-logout.js';
import { createSignInLimits, installClientAuthLimit, startCounterSweeper } from './oidc/brute-force.js';
import { ensureDemo, type Demo } from './oidc/demo.js';
import { createInteractionSteps } from './oidc/interactions.js';
import { loadSigningKeys } from './oidc/keys.js';
import { createMfa } from './oidc/mfa.js';
import { createProvider } from './oidc/provider.js';
import { loadPairwiseSalt } from './oidc/subjects.js';

export interface Gatehouse {
  readonly app: ReturnType<typeof createApp>;
  readonly provider: Provider;
  readonly db: Db;
  readonly demo: Demo | undefined;
  /** Stops background work and closes the database. */
  close(): Promise<void>;
}

/** Keys, salt and the configured engine, for the server and for CLI commands that need it. */
export async function createEngine(config: Config, db: Db, logger: Logger) {
  const keys = await loadSigningKeys(db, config.secrets);
  if (keys.created.length) logger.info({ kids: keys.created }, 'generated signing keys');
  const audit = createAuditLog(db, logger);
  for (const kid of keys.created) await audit.record({ type: 'key.created', details: { kid } });
  const pairwiseSalt = await loadPairwiseSalt(db, config.secrets);
  const renderPage = createPageRenderer();
  const provider = createProvider({ config, db, keys, pairwiseSalt, renderPage, logger });
  provider.on('server_error', (_ctx, error) => logger.error({ err: error }, 'engine server error'));
  // Refused protocol requests: the client gets the OAuth error, the log also gets the engine's
  // reason (error_detail), which is often the only place the real cause is named.
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'end_session.error', 'pushed_authorization_request.error'] as const) {
    const listen = provider.on.bind(provider) as (name: string, listener: (ctx: KoaContextWithOIDC, error: errors.OIDCProviderError) => void) => void;
    listen(event, (ctx, error) =>
      logger.info(
        { event, route: ctx.oidc?.route, client_id: ctx.oidc?.client?.clientId, error: error.error, error_description: error.error_description, error_detail: error.error_detail },
        'request refused',
      ),
    );
  }
  const auditEvents = recordEngineEvents(provider, audit);
  return { provider, renderPage, audit, auditEvents };
}

export async function createGatehouse(config: Config, logger: Logger): Promise<Gatehouse> {
  if (config.autoMigrate) {
    const report = await migrate(config.database);
    if (report.applied.length) logger.info({ applied: report.applied }, 'applied database migrations');
    if (report.unknown.length) logger.warn({ unknown: report.unknown }, 'the database has migrations this release does not know (a newer release applied them?)');
  }
  const db = await createDb(config.database);
  try {
    const { provider, renderPage, audit, auditEvents } = await createEngine(config, db, logger);
    installClientAuthLimit(provider, { db, settings: config.bruteForce, audit, logger });
    const mfa = createMfa(db, { secrets: config.secrets, audit });
    const steps = createInteractionSteps(provider, createPasswordVerifier(db, config.bcryptCost, audit, createSignInLimits(db, config.bruteForce)), audit, mfa);
    const demo = config.demo ? await ensureDemo(db, config) : undefined;
    const app = createApp({ config, provider, steps, renderPage, logger, demo });
    const stopSweeper = startSweeper(db, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'sweeping expired artifacts failed'));
    const stopAuditRetention = startAuditRetention(db, config.auditRetentionSeconds, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'deleting old audit events failed'));
    const stopCounterSweeper = startCounterSweeper(db, config.sweepIntervalSeconds, (error) => logger.error({ err: error }, 'sweeping expired brute-force counters failed'));
    return {
      app,
      provider,
      db,
      demo,
      async close() {
        stopSweeper();
        stopAuditRetention();
        stopCounterSweeper();
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

function listen(gatehouse: Gatehouse, config: Config): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = gatehouse.app.listen(config.port, config.host, () => resolve(server));
    server.once('error', reject);
  });
}

async function main(): Promise<void> {
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
  if (config.generatedSecretFile) {
    logger.warn({ file: config.generatedSecretFile }, 'SECRETS is not set: using a generated development secret kept in this file. Set SECRETS in production.');
  }
  const gatehouse = await createGatehouse(config, logger);
  const server = await listen(gatehouse, config);
  logger.info({ issuer: config.issuer, port: config.port, database: config.database.flavour }, `Gatehouse is listening on ${config.issuer}`);
  if (gatehouse.demo) {
    const { demo } = gatehouse;
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

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Long enough for in-flight requests and the last back-channel logout retries.
    const force = setTimeout(() => process.exit(1), 20_000).unref();
    server.close(() => {
      gatehouse
        .close()
        .then(() => {
          clearTimeout(force);
          process.exit(0);
        })
        .catch(() => process.exit(1));
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? `Gatehouse failed to start: ${error.message}` : error);
    process.exit(1);
  });
}
