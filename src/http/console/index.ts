// The admin console, /console: server-rendered pages for the people in ADMIN_GROUP, built on the
// management layer the admin API uses. This router is its front door: signing in (as the
// console's own built-in client, clients/built-in-clients.ts, with a fresh sign-in that asks
// for the second factor unless CONSOLE_REQUIRE_MFA=false), the console's short session
// (session.ts), the gate every other request passes (membership of ADMIN_GROUP, checked on every
// request), the CSRF check of every POST, and signing out. Then one router per section.
//
// Someone who is not an administrator learns nothing about the console: a 403 page, the same
// for every path below /console.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { CONSOLE_CLIENT_ID, consoleCallbackUrl } from '../../clients/built-in-clients.js';
import { NotFoundError } from '../../core/errors.js';
import { decrypt, encrypt } from '../../core/secrets.js';
import { createGroupStore } from '../../groups/store.js';
import { ACR_MFA } from '../../oidc/provider.js';
import type { SignedIn } from '../../people/self-service.js';
import { revokeUserSession } from '../../people/service.js';
import { createUserStore } from '../../people/store.js';
import { readCookie } from '../cookies.js';
import { createSessionFormTokens } from '../csrf.js';
import { AppError, notFound } from '../errors.js';
import { chooseLanguage } from '../languages.js';
import { createAuditRouter } from './audit.js';
import { createClientsRouter } from './clients.js';
import { createDashboardRouter } from './dashboard.js';
import { createGroupsRouter } from './groups.js';
import { createIdentityProvidersRouter } from './identity-providers.js';
import { createKeysRouter } from './keys.js';
import { createPeopleRouter } from './people.js';
import { createPersonRouter } from './person.js';
import { admitToConsole, checkConsoleForm, consoleOf, managementOf, type ConsoleDeps } from './deps.js';
import { CONSOLE_PATH, createConsoleSessions, type ConsoleSessionRecord } from './session.js';

export type { ConsoleDeps } from './deps.js';

/**
 * Holds the state of the sign-in the console started, the page to go back to and when the browser
 * last signed in before it (0: never), sealed with SECRETS: only a newer sign-in, the one the console
 * asked for, starts a console session.
 */
const STATE_COOKIE = 'gatehouse.console_state';

/** A console session starts only from a sign-in made this recently (the one the console just asked for). */
const FRESH_SIGN_IN_SECONDS = 300;

const CallbackQuery = z.object({ state: z.string().max(128).optional(), error: z.string().max(128).optional() });
/** Where to go back to after signing in: a console page, nothing else. */
const ReturnPath = z.string().max(512).regex(/^\/console(\/[\w\-./]*)?(\?[\w\-=&%.]*)?$/).catch('/console');
const SignInStarted = z.object({ state: z.string(), back: z.string(), before: z.number() });

export function createConsoleRouter(deps: ConsoleDeps): Router {
  const { config, db, audit, account, renderPage } = deps;
  const now = deps.now ?? (() => new Date());
  const secure = new URL(config.issuer).protocol === 'https:';
  const sessions = createConsoleSessions({ secrets: config.secrets, idleTtl: config.console.sessionTtl, absoluteTtl: config.console.sessionAbsoluteTtl, secure, now });
  const formTokens = createSessionFormTokens(config.secrets, 'console/v1');
  const groups = createGroupStore(db);
  const users = createUserStore(db);
  const management = managementOf(deps);
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 500 });
  const router = Router();

  router.use(noStore);
  router.get('/callback', returnFromSignIn);
  router.get('/signed-out', showSignedOut);
  router.use(requireAdministrator);
  router.use(checkEveryForm);
  router.post('/sign-out', signOut);
  router.use(createDashboardRouter(deps));
  router.use(createPeopleRouter(deps));
  router.use(createPersonRouter(deps));
  router.use(createGroupsRouter(deps));
  router.use(createClientsRouter(deps));
  router.use(createKeysRouter(deps));
  router.use(createIdentityProvidersRouter(deps));
  router.use(createAuditRouter(deps));
  router.use((_req, _res, next) => next(notFound()));

  function noStore(_req: Request, res: Response, next: NextFunction) {
    res.set('Cache-Control', 'no-store');
    next();
  }

  /** Every POST: its body parsed (forms only), then its form token checked, before any section sees it. */
  function checkEveryForm(req: Request, res: Response, next: NextFunction) {
    if (req.method !== 'POST') return next();
    form(req, res, (error?: unknown) => {
      if (error) return next(error);
      try {
        checkConsoleForm(req, res);
      } catch (refused) {
        return next(refused);
      }
      next();
    });
  }

  const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
  const refuseNonAdministrator = () => new AppError(403, 'access_denied', { key: 'console.error.notAdmin', params: { group: config.console.adminGroup } });

  /** Sends the browser to sign in afresh as the console's client, remembering a state and where it was going. */
  async function startSignIn(req: Request, res: Response) {
    const state = randomBytes(16).toString('base64url');
    const back = ReturnPath.parse(req.originalUrl);
    // prompt=login: the console asks for the password (and second factor) whatever session the browser has.
    const params = new URLSearchParams({ client_id: CONSOLE_CLIENT_ID, response_type: 'none', scope: 'openid', redirect_uri: consoleCallbackUrl(config.issuer), state, prompt: 'login' });
    const before = (await account.currentSession(req, res))?.signedInAt ?? 0;
    const started = JSON.stringify({ state, back, before });
    res.cookie(STATE_COOKIE, encrypt(started, config.secrets, 'console-sign-in'), { httpOnly: true, sameSite: 'lax', secure, path: CONSOLE_PATH, maxAge: 15 * 60 * 1000 });
    res.redirect(303, `/authorize?${params}`);
  }

  function openSignInStarted(sealed: string | undefined) {
    try {
      return sealed ? SignInStarted.parse(JSON.parse(decrypt(sealed, config.secrets, 'console-sign-in').plaintext)) : null;
    } catch {
      return null;
    }
  }

  async function returnFromSignIn(req: Request, res: Response) {
    const query = CallbackQuery.safeParse(req.query);
    const started = openSignInStarted(readCookie(req, STATE_COOKIE));
    const { state: expected, back } = started ?? { state: '', back: '' };
    res.clearCookie(STATE_COOKIE, { path: CONSOLE_PATH });
    const given = Buffer.from(query.success ? (query.data.state ?? '') : '');
    if (!expected || given.length !== Buffer.byteLength(expected) || !timingSafeEqual(given, Buffer.from(expected))) {
      throw new AppError(400, 'invalid_state', { key: 'console.error.state' });
    }
    if (query.success && query.data.error) throw new AppError(400, 'access_denied', { key: 'console.error.cancelled' });
    const signedIn = await account.currentSession(req, res);
    const nowSeconds = now().getTime() / 1000;
    // The sign-in must be the one this request asked for (prompt=login), not an earlier one.
    if (!signedIn || signedIn.signedInAt === null || signedIn.signedInAt <= (started?.before ?? Infinity) || nowSeconds - signedIn.signedInAt > FRESH_SIGN_IN_SECONDS) {
      throw new AppError(400, 'login_required', { key: 'console.error.state' });
    }
    if (config.console.requireMfa && signedIn.acr !== ACR_MFA) {
      await audit.record({ type: 'console.refused', accountId: signedIn.accountId, ...originOf(req), details: { reason: 'no_second_factor' } });
      throw new AppError(403, 'access_denied', { key: 'console.error.mfaRequired' });
    }
    if (!(await groups.isMember(signedIn.accountId, config.console.adminGroup))) {
      await audit.record({ type: 'console.refused', accountId: signedIn.accountId, ...originOf(req), details: { reason: 'not_in_admin_group', group: config.console.adminGroup } });
      throw refuseNonAdministrator();
    }
    sessions.write(res, { sid: signedIn.sessionUid, acc: signedIn.accountId });
    await audit.record({ type: 'console.signed_in', accountId: signedIn.accountId, ...originOf(req), details: { via: 'console', acr: signedIn.acr ?? null } });
    res.redirect(303, ReturnPath.parse(back));
  }

  /** The engine session the console session is bound to, if it is still there, the same, and signed in as required. */
  async function boundSession(req: Request, res: Response, record: ConsoleSessionRecord): Promise<SignedIn | undefined> {
    const signedIn = await account.currentSession(req, res);
    if (!signedIn || signedIn.sessionUid !== record.sid || signedIn.accountId !== record.acc) return undefined;
    if (config.console.requireMfa && signedIn.acr !== ACR_MFA) return undefined;
    return signedIn;
  }

  /**
   * The gate: a console session bound to the browser's engine session, of someone who is in
   * ADMIN_GROUP now. Without a session a page starts the sign-in and a POST is refused (401);
   * someone outside the group gets the 403 page and loses the console cookie.
   */
  async function requireAdministrator(req: Request, res: Response, next: NextFunction) {
    const record = sessions.read(req);
    const signedIn = record && (await boundSession(req, res, record));
    if (!record || !signedIn) {
      sessions.clear(res);
      if (req.method === 'GET' || req.method === 'HEAD') return startSignIn(req, res);
      throw new AppError(401, 'login_required', { key: 'console.error.notSignedIn' });
    }
    if (!(await groups.isMember(signedIn.accountId, config.console.adminGroup))) {
      sessions.clear(res);
      throw refuseNonAdministrator();
    }
    const user = await users.findById(signedIn.accountId);
    if (!user) throw refuseNonAdministrator();
    sessions.write(res, { sid: record.sid, acc: record.acc, start: record.start });
    const admin = { id: user.id, email: user.email, name: user.name };
    admitToConsole(res, {
      context: {
        actor: { via: 'console', admin: { id: admin.id, email: admin.email }, ...originOf(req) },
        admin,
        csrfToken: formTokens.issue(signedIn),
        lang: chooseLanguage(req) ?? config.defaultLanguage,
      },
      signedIn,
      formTokens,
      renderPage,
    });
    next();
  }

  /** Ends the console session and the sign-in session behind it (this browser is signed out of Gatehouse). */
  async function signOut(req: Request, res: Response) {
    const { admin, actor } = consoleOf(res);
    const record = sessions.read(req);
    sessions.clear(res);
    try {
      if (record) await revokeUserSession(management.users, admin.id, record.sid, actor);
    } catch (error) {
      // Already ended elsewhere: signed out all the same.
      if (!(error instanceof NotFoundError)) throw error;
    }
    res.redirect(303, '/console/signed-out');
  }

  async function showSignedOut(req: Request, res: Response) {
    res.type('html').send(await renderPage('console/signed-out', { request: req, lang: chooseLanguage(req) ?? config.defaultLanguage }));
  }

  return router;
}
