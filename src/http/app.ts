// What serves every request: the front (front.ts: request id and log line, metrics, security
// headers, Cache-Control), then the engine for its own paths and the Express app, with our pages
// and one error handler, for everything else. Body parsers sit on our own POST routes only (the
// engine parses its own).
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express } from 'express';
import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/index.js';
import type { DbHandle } from '../db/client.js';
import type { Logger } from '../core/logger.js';
import type { Demo } from '../seed/demo.js';
import { ROUTES } from '../oidc/provider.js';
import { whenUnmatched } from '../oidc/hooks.js';
import type { InteractionSteps } from '../oidc/interactions.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import type { AccountService } from '../people/self-service.js';
import type { PasswordReset } from '../people/password-reset.js';
import type { SignUp } from '../people/sign-up.js';
import type { Passkeys } from '../people/passkeys.js';
import { createAccountRouter } from './account.js';
import type { AdminDeps } from './admin-routes.js';
import { createBrandingRouter } from './branding.js';
import type { ConsoleDeps } from './console/index.js';
import { createBrowserFormTokens, createFormTokens, createSessionFormTokens } from './csrf.js';
import { createDemoRouter } from './demo.js';
import { createFederationRouter } from './federation.js';
import type { Federation } from '../federation/sign-in.js';
import { AppError, createErrorHandler, notFound } from './errors.js';
import { createHealthRouter, type ReadinessCheck } from './health.js';
import { createInteractionRouter } from './interactions.js';
import { createLanguageSwitchRouter } from './language-switch.js';
import { createPasswordResetRouter } from './password-reset.js';
import { createSignUpRouter } from './sign-up.js';
import { createEmailVerificationRouter } from './email-verification.js';
import { createInvitationRouter } from './invitation.js';
import { clientAddress, frontPipeline, pathOf, type FrontStep, type TrustProxy } from './front.js';
import type { Metrics } from './metrics.js';
import { ASSETS_DIR, WEBAUTHN_SCRIPT_FILE, WEBAUTHN_SCRIPT_PATH } from './pages.js';
import { identifyRequest, logRequests } from './request-log.js';
import { adoptRequestObjects } from './request-objects.js';
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
  /** The admin console (/console, console/); absent, or without `account`, it is not mounted. */
  console?: Pick<ConsoleDeps, 'db' | 'audit' | 'refreshKeys' | 'accountMail' | 'passwordReset'>;
  /** The account page (/account); absent, it is not mounted. */
  account?: AccountService;
  /** Sign-in through upstream identity providers (federation/); absent, not offered. */
  federation?: Federation;
  /** The forgotten-password pages (/password/*); absent (PASSWORD_RESET=false), they are not mounted. */
  passwordReset?: PasswordReset;
  /** Where links that verify an address are checked and used (/email/verify); absent, not mounted. */
  emailVerification?: { db: DbHandle; audit: AuditLog };
  /** The sign-up pages (/signup); absent (SIGNUP closed or invite), not mounted: /signup is a 404. */
  signUp?: SignUp;
  /** Where invitations are accepted (/invitation); absent, not mounted. */
  invitations?: { db: DbHandle; audit: AuditLog; passkeys: Passkeys };
}

export interface App {
  /** What the server listens with: the front, then the engine's paths to the engine and the rest to Express. */
  readonly handle: RequestListener;
  /** Our pages, the admin API, health and metrics, and the 404 and error pages. */
  readonly express: Express;
}

/**
 * The engine's paths: every route it serves is one of ROUTES, below one, or under /.well-known/.
 * POST /authorize and /logout stay with Express unless AUTHORIZATION_POST (it refuses them there).
 */
function enginePaths(authorizationPost: boolean): (req: IncomingMessage) => boolean {
  const prefixes = [...Object.values(ROUTES).map((route) => `${route}/`), '/.well-known/'];
  const exact = new Set<string>(Object.values(ROUTES));
  const getOnly = new Set<string>(authorizationPost ? [] : [ROUTES.authorization, ROUTES.end_session]);
  return function isEnginePath(req) {
    const path = pathOf(req);
    if (exact.has(path)) return !(req.method === 'POST' && getOnly.has(path));
    return prefixes.some((prefix) => path.startsWith(prefix));
  };
}

/**
 * The engine (a Koa app) answers its own paths straight from node:http; a request none of its
 * routes matched is handed to Express (oidc/hooks.ts), so unknown paths get our 404 page or JSON
 * like every other error.
 *
 * The engine believes X-Forwarded-* from any sender (Koa's `proxy`), so it is told exactly what
 * Express would decide instead: the client address under TRUST_PROXY, computed by Express's
 * rule with Express's compiled setting (what the audit trail and a session's last-seen record),
 * and the ISSUER's host and scheme (what every URL it builds, discovery's endpoints included, and
 * its cookies' Secure flag follow). Whatever a caller sent in those headers never reaches it.
 */
function engineEntry(provider: Provider, issuer: string, trust: TrustProxy) {
  const engine = provider.callback();
  const { host, protocol } = new URL(issuer);
  const scheme = protocol.slice(0, -1);
  return function engineRoutes(req: IncomingMessage, res: ServerResponse, unmatched: () => void): void {
    cacheControl(req, res);
    req.headers['x-forwarded-for'] = clientAddress(req, trust);
    req.headers['x-forwarded-host'] = host;
    req.headers['x-forwarded-proto'] = scheme;
    whenUnmatched(req, unmatched);
    void engine(req, res);
  };
}

/**
 * A router imported and made at its first request, for a surface start-up does not need;
 * `loaded` is the router once made (tests read its routes).
 */
function loadedOnFirstRequest(load: () => Promise<express.RequestHandler>): express.RequestHandler & { loaded?: express.RequestHandler } {
  let router: Promise<express.RequestHandler> | undefined;
  const loadRouter: express.RequestHandler & { loaded?: express.RequestHandler } = (req, res, next) => {
    (router ??= load().then((made) => (loadRouter.loaded = made))).then((handle) => handle(req, res, next)).catch(next);
  };
  return loadRouter;
}

/** A front step where Express expects middleware (Cache-Control, after the assets that set their own). */
const asMiddleware = (step: FrontStep): express.RequestHandler =>
  function frontStep(req, res, next) {
    step(req, res);
    next();
  };

export function createApp(deps: AppDeps): App {
  const { config, provider, logger, metrics } = deps;
  const app = createExpressApp(deps);
  const front = frontPipeline([identifyRequest, securityHeaders(config)], [logRequests(logger), metrics.recordRequest]);
  const isEnginePath = enginePaths(config.server.authorizationPost === true);
  const engine = engineEntry(provider, config.issuer, app.get('trust proxy fn') as TrustProxy);
  return {
    express: app,
    handle: function serveRequest(req, res) {
      front(req, res);
      if (isEnginePath(req)) engine(req, res, () => app(req, res));
      else app(req, res);
    },
  };
}

function createExpressApp({ config, provider, steps, renderPage, logger, readiness, metrics, demo, account, admin, console: consoleDeps, federation, passwordReset, emailVerification, signUp, invitations }: AppDeps): Express {
  const app = express();
  adoptRequestObjects(app);
  app.disable('x-powered-by');
  // Everything Express answers is no-store (security-headers.ts cacheControl; the assets set their
  // own ETags): a validator nobody may store would only cost a hash of every page it sends.
  app.set('etag', false);
  app.set('trust proxy', config.server.trustProxy);

  app.use(createBrandingRouter(config.branding));
  // The WebAuthn browser library, from our own node_modules (no CDN: the CSP allows only 'self').
  app.get(WEBAUTHN_SCRIPT_PATH, (_req, res, next) => res.sendFile(WEBAUTHN_SCRIPT_FILE, { maxAge: '1h' }, (error) => error && next(error)));
  app.use('/assets', express.static(ASSETS_DIR, { maxAge: '1h', index: false, fallthrough: false }));
  app.use(asMiddleware(cacheControl));
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
  if (signUp) app.use(createSignUpRouter({ signUp, renderPage, formTokens: browserFormTokens, passwordMinLength: config.passwords.minLength }));
  if (emailVerification) app.use(createEmailVerificationRouter({ ...emailVerification, renderPage, formTokens: browserFormTokens }));
  if (invitations) app.use(createInvitationRouter({ ...invitations, renderPage, formTokens: browserFormTokens, issuer: config.issuer, passwords: config.passwords }));
  // The admin API and the console are loaded with their first request: serving needs neither.
  if (admin) {
    const deps = { config, provider, ...admin };
    app.use('/admin', loadedOnFirstRequest(async () => (await import('./admin.js')).createAdminRouter(deps)));
  }
  // The console signs people in through the engine's session, as the account page does.
  if (consoleDeps && account) {
    const deps = { config, provider, renderPage, account, ...consoleDeps };
    app.use('/console', loadedOnFirstRequest(async () => (await import('./console/index.js')).createConsoleRouter(deps)));
  }
  if (!config.server.authorizationPost) {
    app.post([ROUTES.authorization, ROUTES.end_session], (_req, res, next) => {
      res.set('Allow', 'GET');
      next(new AppError(405, 'invalid_request', { key: 'error.getOnly' }));
    });
  }
  app.use((_req, _res, next) => next(notFound()));
  app.use(createErrorHandler(renderPage, logger));
  return app;
}
