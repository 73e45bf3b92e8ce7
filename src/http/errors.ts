// One error type with its HTTP contract, and the one place errors become responses: an HTML
// page for browsers, JSON for everything else. Stack traces never leave the process.
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request } from 'express';
import { errors } from 'oidc-provider';
import { ZodError } from 'zod';
import type { RenderPage } from '../oidc/render.js';
import { requestIdOf } from './request-log.js';

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Whether `message` may be shown to the person or client. */
    readonly expose = status < 500,
  ) {
    super(message);
  }
}

export const notFound = () => new AppError(404, 'not_found', 'There is nothing at this address.');

function describe(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // The interaction cookie is missing or expired: the person opened an old or foreign link.
  if (error instanceof errors.SessionNotFound) {
    return new AppError(400, 'session_not_found', 'This sign-in page has expired or was opened in another browser. Go back to the app and start signing in again.');
  }
  if (error instanceof errors.OIDCProviderError) {
    const description = (error as { error_description?: string }).error_description ?? error.message;
    return new AppError(error.status, error.error, description, error.expose);
  }
  if (error instanceof ZodError) return new AppError(400, 'invalid_request', 'The request is malformed.');
  const status = (error as { status?: unknown }).status;
  // Body parsers and express.static throw http-errors with a 4xx status (e.g. 413, 404). Their
  // message is shown only when marked safe to show (static's ENOENT names a file path).
  if (status === 404) return notFound();
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const exposable = (error as { expose?: boolean }).expose !== false;
    return new AppError(status, (error as { type?: string }).type ?? 'invalid_request', exposable ? (error as Error).message : (STATUS_CODES[status] ?? 'Bad request'));
  }
  return new AppError(500, 'server_error', 'Something went wrong on our side. Please try again.', false);
}

const wantsHtml = (req: Request) => req.accepts(['html', 'json']) === 'html';

export interface ErrorLogger {
  error(details: Record<string, unknown>, message: string): void;
}

export function createErrorHandler(renderPage: RenderPage, logger: ErrorLogger): ErrorRequestHandler {
  return async function handleError(error, req, res, next) {
    if (res.headersSent) return next(error);
    const described = describe(error);
    if (described.status >= 500) logger.error({ err: error, request_id: requestIdOf(res), method: req.method, url: req.originalUrl }, 'request failed');
    const message = described.expose ? described.message : 'Something went wrong on our side. Please try again.';
    res.status(described.status).set('Cache-Control', 'no-store');
    if (wantsHtml(req)) {
      res.type('html').send(await renderPage('error', { error: described.code, description: message }));
    } else {
      res.json({ error: described.code, error_description: message });
    }
  };
}
