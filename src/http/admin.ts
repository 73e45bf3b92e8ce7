// The admin API under /admin: JSON in, JSON out, for clients holding an admin token
// (oidc/admin-access.ts). The routes are the table in admin-routes.ts; handlers parse nothing
// themselves: the management layer validates and throws typed errors that errors.ts renders.
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type Provider from 'oidc-provider';
import type { Actor } from '../audit/log.js';
import { parseInput } from '../core/errors.js';
import { ADMIN_SCOPE, AdminTokenError, authorizeAdminRequest } from '../oidc/admin-access.js';
import { adminRoutes, Empty, type AdminDeps, type AdminRoute } from './admin-routes.js';
import { AppError, notFound } from './errors.js';
import { buildOpenApiDocument } from './openapi.js';


/** RFC 6750 3: the challenge that tells the caller what is wrong with its token. */
function challenge(error: AdminTokenError): string {
  const quoted = (value: string) => value.replace(/["\\]/g, "'");
  const scope = error.code === 'insufficient_scope' ? `, scope="${ADMIN_SCOPE}"` : '';
  return `Bearer realm="gatehouse-admin", error="${error.code}", error_description="${quoted(error.message)}"${scope}`;
}

function requireAdminToken(provider: Provider): RequestHandler {
  return async function checkAdminToken(req, res, next) {
    try {
      const { clientId } = await authorizeAdminRequest(provider, req.get('authorization'));
      res.locals.adminClientId = clientId;
      next();
    } catch (error) {
      if (!(error instanceof AdminTokenError)) throw error;
      res.set('WWW-Authenticate', challenge(error));
      next(new AppError(error.status, error.code, error.message));
    }
  };
}

/** express.json, with its errors in our words (a malformed body is the caller's invalid_request). */
function parseJson(): RequestHandler {
  const parse = express.json({ limit: '64kb', strict: true });
  return function parseJsonBody(req, res, next) {
    parse(req, res, (error?: unknown) => {
      if (!error) return next();
      const status = (error as { status?: number }).status;
      if (status === 413) return next(new AppError(413, 'invalid_request', 'the body is larger than 64 kB'));
      if (status === 415) return next(new AppError(415, 'invalid_request', 'send the body as application/json'));
      next(new AppError(400, 'invalid_request', 'the body is not valid JSON'));
    });
  };
}

function handleRoute(route: AdminRoute): RequestHandler {
  return async function adminHandler(req: Request, res: Response) {
    const actor: Actor = { via: 'admin', clientId: res.locals.adminClientId as string, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
    // A JSON body is read only where one is declared; elsewhere none is expected.
    const body = route.body ? (req.body ?? {}) : undefined;
    // Actions without parameters still refuse a body they would silently ignore.
    if (route.body === Empty) parseInput(Empty, body);
    const result = await route.handle({ params: req.params as Record<string, string>, query: { ...(req.query as object) }, body, actor });
    if (!route.response) {
      res.status(204).end();
      return;
    }
    res.status(route.status ?? 200).json(result);
  };
}

export function createAdminRouter(deps: AdminDeps): Router {
  const routes = adminRoutes(deps);
  // Built at its first request, not at start-up (zod's JSON Schema conversion of every route takes a while).
  let document: ReturnType<typeof buildOpenApiDocument> | undefined;
  const router = Router();
  router.use(function adminAnswersJson(_req: Request, res: Response, next: NextFunction) {
    res.locals.jsonErrors = true;
    next();
  });
  // The description of the API is public: it holds no data, and clients generate code from it.
  router.get('/openapi.json', (_req, res) => {
    document ??= buildOpenApiDocument(routes, { issuer: deps.config.issuer, prefix: '/admin' });
    res.json(document);
  });
  router.use(requireAdminToken(deps.provider));
  router.use(parseJson());
  for (const route of routes) router[route.method](route.path, handleRoute(route));
  router.use((_req, _res, next) => next(notFound()));
  return router;
}
