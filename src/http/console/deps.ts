// What every section of the admin console (/console) is built from. The router (index.ts) runs
// the access gate before any section sees a request and leaves what it found in the response:
// sections read it with consoleOf(res), render with renderConsole() (the shared layout: the nav
// of every section, the administrator, sign out, the language switcher, the flash notice) and
// answer a POST with consoleRedirect() (303, Post/Redirect/Get, with a notice). The router also
// checks the CSRF token of every POST before a section's handler runs; checkConsoleForm() is
// that check, for a section that wants to say so. Sections never decide access themselves.
//
// A section's handlers parse the form, call one function of the management layer (the same
// services the admin API calls, with consoleOf(res).actor), then render or redirect.
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { Actor, AuditLog } from '../../audit/log.js';
import type { ClientManagementDeps } from '../../clients/service.js';
import type { Config, Language } from '../../config/index.js';
import type { Db } from '../../db/client.js';
import type { IdpManagementDeps } from '../../federation/service.js';
import type { KeyManagementDeps } from '../../keys/service.js';
import type { RenderPage } from '../../oidc/page-renderer.js';
import type { AccountMail } from '../../people/email-verification.js';
import type { GroupManagementDeps } from '../../groups/service.js';
import type { InvitationDeps } from '../../people/invitations.js';
import type { LockoutDeps } from '../../people/lockouts.js';
import type { PasswordReset } from '../../people/password-reset.js';
import type { AccountService, SignedIn } from '../../people/self-service.js';
import type { UserManagementDeps } from '../../people/service.js';
import { FORM_TOKEN_FIELD, type SessionFormTokens } from '../csrf.js';
import { AppError } from '../errors.js';
import { ConflictError, ValidationError } from '../../core/errors.js';
import { isMessageKey, translate } from '../messages/index.js';

export interface ConsoleDeps {
  config: Config;
  provider: Provider;
  db: Db;
  audit: AuditLog;
  renderPage: RenderPage;
  /** Who is signed in (the engine's session, read as the account page reads it). */
  account: Pick<AccountService, 'currentSession'>;
  /** Mails to people (invitations, address changes); absent, invitations are not offered. */
  accountMail?: AccountMail;
  /** Makes this instance use rotated signing keys now (keys/refresher.ts). */
  refreshKeys?: () => Promise<unknown>;
  /** Password reset links by mail (PASSWORD_RESET); absent, the console offers setting a password only. */
  passwordReset?: Pick<PasswordReset, 'sendLink'>;
  /** The clock of the console's sessions and of the first page's "last day". */
  now?: () => Date;
}

/** The signed-in administrator and what their pages need; set by the gate for every section. */
export interface ConsoleContext {
  /** Pass it to every service call: the audit trail names this administrator (via 'console'). */
  actor: Actor;
  admin: { id: string; email: string; name: string | null };
  /** Put it in every form as FORM_TOKEN_FIELD (`csrf_token`). */
  csrfToken: string;
  lang: Language;
}

/** The nav: every section, in order. A section's router serves its path and what is below it. */
export const CONSOLE_SECTIONS = [
  { id: 'dashboard', path: '/console' },
  { id: 'people', path: '/console/people' },
  { id: 'groups', path: '/console/groups' },
  { id: 'clients', path: '/console/clients' },
  { id: 'keys', path: '/console/keys' },
  { id: 'identity-providers', path: '/console/identity-providers' },
  { id: 'audit', path: '/console/audit' },
] as const;
export type ConsoleSectionId = (typeof CONSOLE_SECTIONS)[number]['id'];

/** What the gate keeps beside the context, for renderConsole and checkConsoleForm. */
interface GateState {
  context: ConsoleContext;
  signedIn: SignedIn;
  formTokens: SessionFormTokens;
  renderPage: RenderPage;
}

const GATE = Symbol('console gate');

/** Called by the gate (index.ts) once it has let the request in. */
export function admitToConsole(res: Response, state: GateState): void {
  (res.locals as Record<symbol, GateState>)[GATE] = state;
}

function gateOf(res: Response): GateState {
  const state = (res.locals as Record<symbol, GateState | undefined>)[GATE];
  // A section mounted outside the gate is a programming error, never a way in.
  if (!state) throw new Error('a console page was reached without passing the console gate');
  return state;
}

/** The signed-in administrator, their actor for the audit trail, the form token and the page language. */
export const consoleOf = (res: Response): ConsoleContext => gateOf(res).context;

/** Refuses (403) a POST whose form token was not rendered for this console session. */
export function checkConsoleForm(req: Request, res: Response): void {
  const { signedIn, formTokens } = gateOf(res);
  const token: unknown = (req.body as Record<string, unknown> | undefined)?.[FORM_TOKEN_FIELD];
  if (typeof token !== 'string' || token.length > 128 || !formTokens.verify(signedIn, token)) {
    throw new AppError(403, 'invalid_form_token', { key: 'console.error.formToken' });
  }
}

/** Dates as the console shows them, in its language; times in UTC, said so. */
export const formatDate = (date: Date | string | null | undefined, lang: string) =>
  date ? `${new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23', timeZone: 'UTC' }).format(new Date(date))} UTC` : '';

/** The section a path belongs to: the longest section path it starts with. */
function sectionOf(path: string): ConsoleSectionId {
  const matching = CONSOLE_SECTIONS.filter((s) => path === s.path || path.startsWith(`${s.path}/`));
  return matching.sort((a, b) => b.path.length - a.path.length)[0]?.id ?? 'dashboard';
}

/**
 * Renders views/console/<view>.ejs (which includes console/partials/top and bottom: the layout)
 * with `locals`, the administrator, the form token, the page's section in the nav and the
 * flash notice of a redirect (?done=<notice>, shown when `console.notice.<notice>` is a message).
 */
export async function renderConsole(req: Request, res: Response, view: string, locals: Record<string, unknown>, status = 200): Promise<void> {
  const { context, renderPage } = gateOf(res);
  const done = typeof req.query.done === 'string' ? req.query.done : '';
  const notice = /^[a-z_]{1,40}$/.test(done) && isMessageKey(`console.notice.${done}`) ? `console.notice.${done}` : undefined;
  const html = await renderPage(`console/${view}`, {
    request: req,
    lang: context.lang,
    admin: context.admin,
    csrfToken: context.csrfToken,
    sections: CONSOLE_SECTIONS,
    section: sectionOf(req.baseUrl + req.path),
    notice,
    formatDate: (date: Date | string | null | undefined) => formatDate(date, context.lang),
    errors: {},
    values: {},
    ...locals,
  });
  res.status(status).type('html').send(html);
}

/** Post/Redirect/Get: 303 to `path` (under /console), with a flash notice (`console.notice.<notice>`). */
export function consoleRedirect(res: Response, path: string, notice?: string): void {
  if (!path.startsWith('/console')) throw new Error(`console redirect outside the console: ${path}`);
  const separator = path.includes('?') ? '&' : '?';
  res.redirect(303, notice ? `${path}${separator}done=${encodeURIComponent(notice)}` : path);
}

/** The management layer's dependencies, built once from ConsoleDeps, for the sections' service calls. */
export function managementOf(deps: ConsoleDeps) {
  const { config, db, audit, provider, accountMail, refreshKeys } = deps;
  const users: UserManagementDeps = { db, audit, bcryptCost: config.passwords.bcryptCost, passwordMinLength: config.passwords.minLength, mail: accountMail };
  const clients: ClientManagementDeps = { db, secrets: config.secrets, audit, validateWithEngine: async (metadata) => provider.Client.validate(metadata) };
  const keys: KeyManagementDeps = { db, config, audit, refreshKeys };
  const idps: IdpManagementDeps = { db, secrets: config.secrets, audit, issuer: config.issuer };
  const invitations: InvitationDeps | undefined = accountMail ? { db, audit, mail: accountMail } : undefined;
  const groups: GroupManagementDeps = { db, audit };
  const lockouts: LockoutDeps = { db, audit, bruteForce: config.bruteForce, now: deps.now };
  return { users, clients, keys, idps, invitations, groups, lockouts };
}
export type Management = ReturnType<typeof managementOf>;

/** A form's errors: the field's name (or `form` for the form as a whole) → the message to show beside it. */
export type FormErrors = Record<string, string>;

/**
 * What the management layer refused, as a form's errors in the page's language, so the handler
 * shows the form again (400, or 409 for a conflict) with nothing changed. The layer's messages
 * are English; another language says which field to check and quotes the detail. Anything else
 * is thrown on (a 404 or a failure is not a form's error).
 */
export function formErrorsOf(error: unknown, lang: Language): { status: number; errors: FormErrors } {
  const say = (detail: string) => (lang === 'en' ? `${detail.charAt(0).toUpperCase()}${detail.slice(1)}.` : `${translate(lang, 'console.error.field')} (${detail})`);
  if (error instanceof ValidationError) {
    const errors: FormErrors = {};
    // `groups.1` or `user_ids.0` is the field `groups` or `user_ids`.
    for (const issue of error.issues) errors[issue.path.split('.')[0] || 'form'] ??= say(issue.message);
    return { status: 400, errors: Object.keys(errors).length ? errors : { form: say(error.message) } };
  }
  if (error instanceof ConflictError) return { status: 409, errors: { form: say(error.message) } };
  throw error;
}
