// One error type with its HTTP contract, and the one place errors become responses: an HTML
// page for browsers, JSON for everything else. Stack traces never leave the process.
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request } from 'express';
import { errors } from 'oidc-provider';
import { ZodError } from 'zod';
import { ConflictError, fieldIssues, NotFoundError, ValidationError, type FieldIssue } from '../core/errors.js';
import { FederationRefused, type FederationRefusalReason } from '../federation/sign-in.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { chooseLanguage } from './languages.js';
import { translate, type PageMessage } from './messages/index.js';
import { requestIdOf } from '../core/logger.js';

export class AppError extends Error {
  override name = 'AppError';
  /** The message as a catalogue entry: pages word it in their language, JSON in English. */
  readonly pageMessage: PageMessage | undefined;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string | PageMessage,
    /** Whether `message` may be shown to the person or client. */
    readonly expose = status < 500,
    /** Field-level detail of a 400 (JSON responses only). */
    readonly issues?: readonly FieldIssue[],
  ) {
    super(typeof message === 'string' ? message : translate('en', message.key, message.params));
    this.pageMessage = typeof message === 'string' ? undefined : message;
  }
}

/** The page status for each refusal: the upstream's fault or absence 502, a refusal of the person 403, a conflict 409. */
export const FEDERATION_STATUS: Record<FederationRefusalReason, number> = {
  upstream_unreachable: 502,
  upstream_error: 502,
  invalid_response: 502,
  insecure_upstream: 502,
  bad_signature: 502,
  wrong_issuer: 502,
  wrong_audience: 502,
  invalid_id_token: 502,
  refused_upstream: 403,
  state_mismatch: 400,
  unknown_provider: 404,
  email_domain_not_allowed: 403,
  no_account: 403,
  account_disabled: 403,
  email_in_use: 409,
  identity_linked_elsewhere: 409,
  provider_already_linked: 409,
  link_account_mismatch: 403,
  link_expired: 400,
};

export const notFound = () => new AppError(404, 'not_found', { key: 'error.notFound' });

function describe(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // Already recorded in the audit trail (federation/sign-in.ts).
  if (error instanceof FederationRefused) {
    return new AppError(FEDERATION_STATUS[error.reason], error.reason, { key: `federation.error.${error.reason}`, params: { provider: error.provider?.displayName ?? '' } });
  }
  // The interaction cookie is missing or expired: the person opened an old or foreign link.
  if (error instanceof errors.SessionNotFound) {
    return new AppError(400, 'session_not_found', { key: 'error.sessionNotFound' });
  }
  if (error instanceof errors.OIDCProviderError) {
    const description = (error as { error_description?: string }).error_description ?? error.message;
    return new AppError(error.status, error.error, description, error.expose);
  }
  if (error instanceof ZodError) return new AppError(400, 'invalid_request', { key: 'error.malformed' }, true, fieldIssues(error));
  // The management layer (admin API): its messages are written to be shown.
  if (error instanceof ValidationError) return new AppError(400, 'invalid_request', error.message, true, error.issues);
  if (error instanceof NotFoundError) return new AppError(404, 'not_found', error.message);
  if (error instanceof ConflictError) return new AppError(409, 'conflict', error.message);
  const status = (error as { status?: unknown }).status;
  // Body parsers and express.static throw http-errors with a 4xx status (e.g. 413, 404). Their
  // message is shown only when marked safe to show (static's ENOENT names a file path).
  if (status === 404) return notFound();
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const exposable = (error as { expose?: boolean }).expose !== false;
    return new AppError(status, (error as { type?: string }).type ?? 'invalid_request', exposable ? (error as Error).message : (STATUS_CODES[status] ?? 'Bad request'));
  }
  return new AppError(500, 'server_error', { key: 'error.server' }, false);
}

/** A router that answers only JSON (the admin API) sets `res.locals.jsonErrors`. */
const wantsHtml = (req: Request) => req.res?.locals.jsonErrors !== true && req.accepts(['html', 'json']) === 'html';

export interface ErrorLogger {
  error(details: Record<string, unknown>, message: string): void;
}

export function createErrorHandler(renderPage: RenderPage, logger: ErrorLogger): ErrorRequestHandler {
  return async function handleError(error, req, res, next) {
    if (res.headersSent) return next(error);
    const described = describe(error);
    if (described.status >= 500) logger.error({ err: error, request_id: requestIdOf(res), method: req.method, url: req.originalUrl }, 'request failed');
    const message = described.expose ? described.message : translate('en', 'error.server');
    res.status(described.status).set('Cache-Control', 'no-store');
    if (wantsHtml(req)) {
      const uiLocales = typeof req.query.ui_locales === 'string' ? req.query.ui_locales : undefined;
      const pageMessage: PageMessage | undefined = described.expose ? described.pageMessage : { key: 'error.server' };
      res.type('html').send(await renderPage('error', { request: req, lang: chooseLanguage(req, uiLocales), error: described.code, description: message, message: pageMessage }));
    } else {
      const requestId = requestIdOf(res);
      res.json({ error: described.code, error_description: message, ...(requestId ? { request_id: requestId } : {}), ...(described.issues?.length ? { issues: described.issues } : {}) });
    }
  };
}
