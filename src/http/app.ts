// The Express application: our pages first, the engine mounted last at the root, and one
// error handler. Body parsers sit on our own POST routes only (the engine parses its own).
import express, { type Express, type RequestHandler } from 'express';
import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/index.js';
import type { DbHandle } from '../db/client.js';
import type { Logger } from '../core/logger.js';
import type { Demo } from '../seed/demo.js';
import { whenUnmatched } from '../oidc/hooks.js';
import type { InteractionSteps } from '../oidc/interactions.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import type { AccountService } from '../people/self-service.js';
import type { PasswordReset } from '../people/password-reset.js';
import { createAccountRouter } from './account.js';
import { createAdminRouter } from './admin.js';
import type { AdminDeps } from './admin-routes.js';
import { createBrandingRouter } from './branding.js';
import { createBrowserFormTokens, createFormTokens, createSessionFormTokens } from './csrf.js';
import { createDemoRouter } from './demo.js';
import { createFederationRouter } from './federation.js';
import type { Federation } from '../federation/sign-in.js';
import { AppError, createErrorHandler, notFound } from './errors.js';
import { createHealthRouter, type ReadinessCheck } from './health.js';
import { createInteractionRouter } from './interactions.js';
import { createLanguageSwitchRouter, rememberRequest } from './language-switch.js';
import { createPasswordResetRouter } from './password-reset.js';
import { createEmailVerificationRouter } from './email-verification.js';
import type { Metrics } from './metrics.js';
import { ASSETS_DIR, WEBAUTHN_SCRIPT_FILE, WEBAUTHN_SCRIPT_PATH } from './pages.js';
import { logRequests } from './request-log.js';
import { cacheControl, securityHeaders } from './security-headers.js';

export interface AppDeps {
  config: Config;
  provider: Provider;
  steps: InteractionSteps;
  renderPage: RenderPage;
  logger: Logger;
  /** Named checks behind /readyz (health.ts). */
  readiness: Record<string, ReadinessCheck>;
  metrics: Metrics;
  demo?: Demo;
  /** The admin API (/admin, admin.ts); absent, it is not mounted. */
  admin?: Pick<AdminDeps, 'db' | 'audit' | 'refreshKeys' | 'accountMail'>;
  /** The account page (/account); absent, it is not mounted. */
  account?: AccountService;
  /** Sign-in through upstream identity providers (federation/); absent, not offered. */
  federation?: Federation;
  /** The forgotten-password pages (/password/*); absent (PASSWORD_RESET=false), they are not mounted. */
  passwordReset?: PasswordReset;
  /** Where links that verify an address are checked and used (/email/verify); absent, not mounted. */
  emailVerification?: { db: DbHandle; audit: AuditLog };
}

/**
 * The engine (a Koa app) answers its own routes; a request none of them matched is handed back
 * to Express (oidc/hooks.ts), so unknown paths get our 404 page or JSON like every other error.
 *
 * The engine believes X-Forwarded-* from any sender (Koa's `proxy`), so it is told exactly what
 * Express decided instead: the client address Express computed under TRUST_PROXY (what the audit
 * trail and a session's last-seen record), and the ISSUER's host and scheme (what every URL it
 * builds, discovery's endpoints included, and its cookies' Secure flag follow). Whatever a caller
 * sent in those headers never reaches it.
 */
function mountEngine(provider: Provider, issuer: string): RequestHandler {
  const engine = provider.callback();
  const { host, protocol } = new URL(issuer);
  const scheme = protocol.slice(0, -1);
  return function engineRoutes(req, res, next) {
    req.headers['x-forwarded-for'] = req.ip ?? req.socket.remoteAddress ?? '';
    req.headers['x-forwarded-host'] = host;
    req.headers['x-forwarded-proto'] = scheme;
    whenUnmatched(req, next);
    void engine(req, res);
  };
}

export function createApp({ config, provider, steps, renderPage, logger, readiness, metrics, demo, account, admin, federation, passwordReset, emailVerification }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.server.trustProxy);

  app.use(logRequests(logger));
  app.use(rememberRequest);
  app.use(metrics.recordRequests);
  app.use(securityHeaders(config));
  app.use(createBrandingRouter(config.branding));
  // The WebAuthn browser library, from our own node_modules (no CDN: the CSP allows only 'self').
  app.get(WEBAUTHN_SCRIPT_PATH, (_req, res, next) => res.sendFile(WEBAUTHN_SCRIPT_FILE, { maxAge: '1h' }, (error) => error && next(error)));
  app.use('/assets', express.static(ASSETS_DIR, { maxAge: '1h', index: false, fallthrough: false }));
  app.use(cacheControl);
  app.use(createHealthRouter(readiness, logger));
  app.use(createLanguageSwitchRouter({ secure: config.issuer.startsWith('https:') }));
  // With METRICS_PORT, /metrics is served there only (metrics-port.ts).
  if (config.metrics.port === undefined) app.get('/metrics', metrics.serveMetrics);
  const formTokens = createFormTokens(config.secrets);
  app.use(createInteractionRouter(steps, renderPage, formTokens, federation && (() => federation.enabledProviders())));
  if (federation) app.use(createFederationRouter({ federation, steps, account, renderPage, formTokens, issuer: config.issuer }));
  if (demo) app.use(createDemoRouter(demo, config.issuer, renderPage));
  if (account) app.use(createAccountRouter({ account, renderPage, formTokens: createSessionFormTokens(config.secrets), issuer: config.issuer, passwordMinLength: config.passwords.minLength, federation }));

  const browserFormTokens = createBrowserFormTokens(config.secrets, { secure: config.issuer.startsWith('https:') });
  if (passwordReset) {
    app.use(createPasswordResetRouter({ reset: passwordReset, renderPage, formTokens: browserFormTokens, passwordMinLength: config.passwords.minLength, resetTtlSeconds: config.recovery.resetTtl }));
  }
  if (emailVerification) app.use(createEmailVerificationRouter({ ...emailVerification, renderPage, formTokens: browserFormTokens }));
  if (admin) app.use('/admin', createAdminRouter({ config, provider, ...admin }));
  if (!config.server.authorizationPost) {
    app.post(['/authorize', '/logout'], (_req, res, next) => {
      res.set('Allow', 'GET');
      next(new AppError(405, 'invalid_request', { key: 'error.getOnly' }));
    });
  }
  app.use(mountEngine(provider, config.issuer));
  app.use((_req, _res, next) => next(notFound()));
  app.use(createErrorHandler(renderPage, logger));
  return app;
}
