// The admin API under /admin: JSON in, JSON out, for clients holding an admin token
// (oidc/admin-access.ts). Routes are declared as data below, with their zod schemas; the router
// and the OpenAPI document (openapi.ts, GET /admin/openapi.json, public) are both built from that
// one table, so neither can drift from the other. Handlers are one call into the management
// layer (oidc/manage-*.ts), which validates and throws typed errors that errors.ts renders.
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { ADMIN_SCOPE, AdminTokenError, authorizeAdminRequest } from '../oidc/admin-access.js';
import type { AuditLog } from '../audit/log.js';
import { parseInput } from '../core/errors.js';
import { AuditEventList, AuditQuery, queryAuditEvents } from '../audit/service.js';
import {
  ClientList,
  ClientView,
  ClientWithSecret,
  CreateClientInput,
  createClient,
  deleteClient,
  getClient,
  listClients,
  rotateClientSecret,
  UpdateClientInput,
  updateClient,
  type Actor,
  type ClientManagementDeps,
} from '../clients/service.js';
import { KeyRotation, listKeys, RotateKeysInput, rotateKeys, SigningKeyList } from '../keys/service.js';
import {
  CreateUserInput,
  createUser,
  getUser,
  GrantList,
  ListUsersQuery,
  listUserGrants,
  listUserSessions,
  listUsers,
  resetUserMfa,
  revokeUserGrant,
  revokeUserSession,
  SessionList,
  SetDisabledInput,
  SetPasswordInput,
  setUserDisabled,
  setUserPassword,
  UpdateUserInput,
  updateUser,
  UserPage,
  UserView,
  type UserManagementDeps,
} from '../people/service.js';
import { AppError, notFound } from './errors.js';
import { buildOpenApiDocument } from './openapi.js';

export interface AdminDeps {
  config: Config;
  provider: Provider;
  db: Db;
  audit: AuditLog;
  /** Makes this instance use rotated signing keys now (key-refresher.ts); absent, it follows at its next refresh. */
  refreshKeys?: () => Promise<unknown>;
}

export type Method = 'get' | 'post' | 'patch' | 'delete';

/** What a handler gets: path parameters, the query and the body as sent (the management layer parses them), and who asks. */
export interface AdminCall {
  params: Record<string, string>;
  query: unknown;
  body: unknown;
  actor: Actor;
}

export interface AdminRoute {
  method: Method;
  /** Express-style, under /admin: `/clients/:clientId`. */
  path: string;
  summary: string;
  tag: 'clients' | 'users' | 'keys' | 'audit';
  query?: z.ZodType;
  body?: z.ZodType;
  /** The response body; absent: 204 No Content. */
  response?: z.ZodType;
  /** Default 200 (204 without a response). */
  status?: number;
  handle(call: AdminCall): Promise<unknown>;
}

const Empty = z.strictObject({}).meta({ id: 'Empty', description: 'No body (or an empty object).' });

/** The route table: every admin endpoint, its schemas and its one call. */
export function adminRoutes({ config, db, provider, audit, refreshKeys }: AdminDeps): AdminRoute[] {
  const clients: ClientManagementDeps = {
    db,
    secrets: config.secrets,
    audit,
    validateWithEngine: async (metadata) => provider.Client.validate(metadata),
  };
  const users: UserManagementDeps = { db, audit, bcryptCost: config.passwords.bcryptCost, passwordMinLength: config.passwords.minLength };
  const keys = { db, config, audit, refreshKeys };
  const id = (call: AdminCall, name: string) => call.params[name] as string;

  return [
    { method: 'get', path: '/clients', tag: 'clients', summary: 'List clients', response: ClientList, handle: async () => ({ clients: await listClients(clients) }) },
    { method: 'post', path: '/clients', tag: 'clients', summary: 'Register a client (its secret is returned once)', body: CreateClientInput, response: ClientWithSecret, status: 201, handle: (c) => createClient(clients, c.body, c.actor) },
    { method: 'get', path: '/clients/:clientId', tag: 'clients', summary: 'Get a client', response: ClientView, handle: (c) => getClient(clients, id(c, 'clientId')) },
    { method: 'patch', path: '/clients/:clientId', tag: 'clients', summary: 'Change a client', body: UpdateClientInput, response: ClientWithSecret, handle: (c) => updateClient(clients, id(c, 'clientId'), c.body, c.actor) },
    { method: 'delete', path: '/clients/:clientId', tag: 'clients', summary: 'Delete a client and everything issued to it', handle: (c) => deleteClient(clients, id(c, 'clientId'), c.actor) },
    { method: 'post', path: '/clients/:clientId/secret', tag: 'clients', summary: 'Rotate the client secret (the new one is returned once)', body: Empty, response: ClientWithSecret, handle: (c) => rotateClientSecret(clients, id(c, 'clientId'), c.actor) },

    { method: 'get', path: '/users', tag: 'users', summary: 'List users (search, paging)', query: ListUsersQuery, response: UserPage, handle: (c) => listUsers(users, c.query) },
    { method: 'post', path: '/users', tag: 'users', summary: 'Create a user', body: CreateUserInput, response: UserView, status: 201, handle: (c) => createUser(users, c.body, c.actor) },
    { method: 'get', path: '/users/:userId', tag: 'users', summary: 'Get a user', response: UserView, handle: (c) => getUser(users, id(c, 'userId')) },
    { method: 'patch', path: '/users/:userId', tag: 'users', summary: "Change a user's profile", body: UpdateUserInput, response: UserView, handle: (c) => updateUser(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'post', path: '/users/:userId/disabled', tag: 'users', summary: 'Disable (ends sessions and grants) or enable a user', body: SetDisabledInput, response: UserView, handle: (c) => setUserDisabled(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'post', path: '/users/:userId/password', tag: 'users', summary: "Set a user's password (ends their sessions)", body: SetPasswordInput, handle: (c) => setUserPassword(users, id(c, 'userId'), c.body, c.actor) },
    { method: 'post', path: '/users/:userId/mfa/reset', tag: 'users', summary: "Remove a user's second factor and recovery codes", body: Empty, handle: (c) => resetUserMfa(users, id(c, 'userId'), c.actor) },
    { method: 'get', path: '/users/:userId/grants', tag: 'users', summary: "List a user's grants", response: GrantList, handle: async (c) => ({ grants: await listUserGrants(users, id(c, 'userId')) }) },
    { method: 'delete', path: '/users/:userId/grants/:grantId', tag: 'users', summary: 'Revoke a grant and the tokens issued under it', handle: (c) => revokeUserGrant(users, id(c, 'userId'), id(c, 'grantId'), c.actor) },
    { method: 'get', path: '/users/:userId/sessions', tag: 'users', summary: "List a user's sessions", response: SessionList, handle: async (c) => ({ sessions: await listUserSessions(users, id(c, 'userId')) }) },
    { method: 'delete', path: '/users/:userId/sessions/:sessionId', tag: 'users', summary: 'End a session', handle: (c) => revokeUserSession(users, id(c, 'userId'), id(c, 'sessionId'), c.actor) },

    { method: 'get', path: '/keys', tag: 'keys', summary: 'List signing keys and their states', response: SigningKeyList, handle: () => listKeys(keys) },
    { method: 'post', path: '/keys/rotate', tag: 'keys', summary: 'Rotate the signing keys', body: RotateKeysInput, response: KeyRotation, handle: (c) => rotateKeys(keys, c.body, c.actor) },

    { method: 'get', path: '/audit-events', tag: 'audit', summary: 'Query the audit trail (newest first)', query: AuditQuery, response: AuditEventList, handle: async (c) => ({ events: await queryAuditEvents({ db }, c.query) }) },
  ];
}

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
  const document = buildOpenApiDocument(routes, { issuer: deps.config.issuer, prefix: '/admin' });
  const router = Router();
  router.use(function adminAnswersJson(_req: Request, res: Response, next: NextFunction) {
    res.locals.jsonErrors = true;
    next();
  });
  // The description of the API is public: it holds no data, and clients generate code from it.
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.use(requireAdminToken(deps.provider));
  router.use(parseJson());
  for (const route of routes) router[route.method](route.path, handleRoute(route));
  router.use((_req, _res, next) => next(notFound()));
  return router;
}
