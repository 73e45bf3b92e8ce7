// The account page, /account: the signed-in person's profile, connected apps, sessions,
// password and second factor. Without a session it sends the browser to sign in as the
// internal account client (clients/built-in-clients.ts) and comes back at /account/callback.
// Every POST carries a form token bound to the session (csrf.ts) and redirects back (303) to
// the page with a notice, so reloading never repeats an action.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { PasswordProblem } from '../people/password-policy.js';
import { PASSKEY_NAME, PASSKEY_RESPONSE_FIELD } from '../people/passkeys.js';
import { RECENT_SIGN_IN_SECONDS, type AccountService, type SignedIn } from '../people/self-service.js';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl } from '../clients/built-in-clients.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { FederationRefused, type Federation } from '../federation/sign-in.js';
import { readCookie } from './cookies.js';
import { FLOW_COOKIE } from './federation.js';
import { FORM_TOKEN_FIELD, type SessionFormTokens } from './csrf.js';
import { AppError } from './errors.js';
import { chooseLanguage } from './languages.js';
import { describeUserAgent } from './user-agents.js';
import type { MessageKey, PageMessage } from './messages/index.js';

/** Holds the `state` of the sign-in the account page started, until it comes back. */
const STATE_COOKIE = 'gatehouse.account_state';

/** What the page says after a successful action (?done=…). */
const NOTICES = ['app_revoked', 'sessions_ended', 'password_changed', 'mfa_removed', 'mfa_enrolled', 'idp_linked', 'idp_unlinked', 'passkey_added', 'passkey_renamed', 'passkey_removed', 'password_removed', 'password_set', 'email_changed'] as const;
type Notice = (typeof NOTICES)[number];

/** ui_locales as the page passes it on (sign-in, form actions, redirects): language tags only. */
const UiLocales = z.string().max(64).regex(/^[A-Za-z0-9 -]+$/).optional().catch(undefined);

const PageQuery = z.object({
  done: z.enum(NOTICES).optional().catch(undefined),
  ui_locales: UiLocales,
  /** Filled in on the sign-in page (a newly invited person's email). */
  login_hint: z.string().max(254).optional().catch(undefined),
});

const CallbackQuery = z.object({
  state: z.string().max(128).optional(),
  error: z.string().max(128).optional(),
});

const TokenForm = z.object({ [FORM_TOKEN_FIELD]: z.string().min(1).max(128) });
const IdpParam = z.object({ idp: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/) });
const RevokeForm = z.object({ client_id: z.string().min(1).max(256) });
const PasswordField = z.string().max(1024).default('');
const ChangePasswordForm = z.object({ current_password: PasswordField, new_password: PasswordField, new_password_confirm: PasswordField });
const PasswordForm = z.object({ password: PasswordField });
const CodeForm = z.object({ code: z.string().trim().max(32).default('') });
const PasskeyId = z.string().min(1).max(64);
const AddPasskeyForm = z.object({ name: z.string().max(1024).default(''), response: PASSKEY_RESPONSE_FIELD });
const RenamePasskeyForm = z.object({ id: PasskeyId, name: z.string().max(1024).default('') });
const RemovePasskeyForm = z.object({ id: PasskeyId, password: PasswordField });
const SetPasswordForm = z.object({ new_password: PasswordField, new_password_confirm: PasswordField });
const ChangeEmailForm = z.object({ email: z.string().trim().max(320).pipe(z.email()), password: PasswordField });


/** Dates as the page shows them, in its language; times in UTC, said so. */
const formatDate = (date: Date, lang: string) => `${new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23', timeZone: 'UTC' }).format(date)} UTC`;

const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

/** Which form an error message belongs to, so the page shows it next to that form. */
type FormErrors = Partial<Record<'password' | 'mfa' | 'identities' | 'passkeys' | 'email', PageMessage>>;

export const POLICY_MESSAGES: Record<PasswordProblem | 'same', MessageKey> = {
  too_short: 'account.error.policy.tooShort',
  too_long: 'account.error.policy.tooLong',
  control_characters: 'account.error.policy.control',
  email: 'account.error.policy.email',
  common: 'account.error.policy.common',
  same: 'account.error.policy.same',
};

export interface AccountRouterDeps {
  account: AccountService;
  renderPage: RenderPage;
  formTokens: SessionFormTokens;
  issuer: string;
  passwordMinLength: number;
  /** Upstream identity providers (linked ones listed, linked and unlinked here); absent, the section is not shown. */
  federation?: Federation;
}

export function createAccountRouter({ account, renderPage, formTokens, issuer, passwordMinLength, federation }: AccountRouterDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const secureCookies = new URL(issuer).protocol === 'https:';

  router.get('/account', showAccount);
  router.get('/account/callback', returnFromSignIn);
  router.post('/account/apps/revoke', form, revokeApp);
  router.post('/account/sessions/end-others', form, endOtherSessions);
  router.post('/account/password', form, changePassword);
  router.post('/account/mfa/enroll', form, beginMfaEnrolment);
  router.get('/account/mfa', showMfaEnrolment);
  router.post('/account/mfa/confirm', form, confirmMfaEnrolment);
  router.post('/account/mfa/remove', form, removeMfa);
  router.post('/account/federation/:idp/link', form, linkIdentity);
  router.post('/account/federation/:idp/unlink', form, unlinkIdentity);
  router.get('/account/reauthenticate', reauthenticate);
  router.post('/account/passkeys/options', form, passkeyOptions);
  router.post('/account/passkeys/add', form, addPasskey);
  router.post('/account/passkeys/rename', form, renamePasskey);
  router.post('/account/passkeys/remove', form, removePasskey);
  router.post('/account/password/remove', form, removePassword);
  router.post('/account/password/set', form, setPassword);
  router.post('/account/email', form, changeEmail);

  const uiLocalesOf = (req: Request) => PageQuery.parse(req.query).ui_locales;
  const language = (req: Request) => chooseLanguage(req, uiLocalesOf(req));
  /** Keeps a language asked for by ui_locales across the page's links, forms and redirects. */
  const withLanguage = (req: Request, path: string, params: Record<string, string> = {}) => {
    const uiLocales = uiLocalesOf(req);
    const query = new URLSearchParams({ ...params, ...(uiLocales ? { ui_locales: uiLocales } : {}) }).toString();
    return query ? `${path}?${query}` : path;
  };

  /** The signed-in session, or a 401 for a POST or page that needs one (GET /account signs in instead). */
  async function requireSession(req: Request, res: Response): Promise<SignedIn> {
    res.set('Cache-Control', 'no-store');
    const signedIn = await account.currentSession(req, res);
    if (!signedIn) throw new AppError(401, 'login_required', { key: 'account.error.notSignedIn' });
    return signedIn;
  }

  /** The signed-in session of a POST, refused unless its form was rendered for that session (cross-site request forgery). */
  async function requirePostedForm(req: Request, res: Response): Promise<SignedIn> {
    const signedIn = await requireSession(req, res);
    const parsed = TokenForm.safeParse(req.body ?? {});
    if (!parsed.success || !formTokens.verify(signedIn, parsed.data[FORM_TOKEN_FIELD])) {
      throw new AppError(403, 'invalid_form_token', { key: 'account.error.formToken' });
    }
    return signedIn;
  }

  async function renderAccount(req: Request, res: Response, signedIn: SignedIn, status: number, locals: { notice?: Notice; errors?: FormErrors }) {
    const overview = await account.overview(signedIn);
    res.status(status).type('html').send(
      await renderPage('account', {
        request: req,
        lang: language(req),
        csrfToken: formTokens.issue(signedIn),
        ...overview,
        identities: federation ? await federation.linksOf(signedIn.accountId) : undefined,
        // openid ("know who you are") is every app's; the page lists it once, first.
        apps: overview.apps.map((app) => ({ ...app, scopes: app.scopes.filter((s) => s !== 'openid') })),
        sessions: overview.sessions.map((session) => ({ ...session, device: describeUserAgent(session.lastSeen?.userAgent) })),
        formatDate,
        passwordMinLength,
        recentMinutes: RECENT_SIGN_IN_SECONDS / 60,
        action: (path: string) => withLanguage(req, path),
        notice: locals.notice,
        errors: locals.errors ?? {},
      }),
    );
  }

  /** Sends the browser to sign in as the account page's own client, remembering a fresh state; `again` asks for a new sign-in even with a session. */
  function startSignIn(req: Request, res: Response, again = false) {
    const state = randomBytes(16).toString('base64url');
    const params = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, response_type: 'none', scope: 'openid', redirect_uri: accountCallbackUrl(issuer), state });
    if (again) params.set('prompt', 'login');
    const { login_hint: loginHint } = PageQuery.parse(req.query);
    if (loginHint) params.set('login_hint', loginHint);
    const uiLocales = uiLocalesOf(req);
    if (uiLocales) params.set('ui_locales', uiLocales);
    // The language goes along in the cookie, so the page comes back in it.
    res.cookie(STATE_COOKIE, `${state}.${uiLocales ?? ''}`, { httpOnly: true, sameSite: 'lax', secure: secureCookies, path: '/account', maxAge: 15 * 60 * 1000 });
    res.redirect(303, `/authorize?${params}`);
  }

  async function showAccount(req: Request, res: Response) {
    res.set('Cache-Control', 'no-store');
    const signedIn = await account.currentSession(req, res);
    if (!signedIn) return startSignIn(req, res);
    await renderAccount(req, res, signedIn, 200, { notice: PageQuery.parse(req.query).done });
  }

  async function returnFromSignIn(req: Request, res: Response) {
    res.set('Cache-Control', 'no-store');
    const query = CallbackQuery.safeParse(req.query);
    const [expected = '', uiLocales] = (readCookie(req, STATE_COOKIE) ?? '').split('.');
    res.clearCookie(STATE_COOKIE, { path: '/account' });
    const given = Buffer.from(query.success ? (query.data.state ?? '') : '');
    // Compared as bytes: strings of one length can differ in UTF-8 length, which timingSafeEqual refuses.
    if (!expected || given.length !== Buffer.byteLength(expected) || !timingSafeEqual(given, Buffer.from(expected))) {
      throw new AppError(400, 'invalid_state', { key: 'account.error.state' });
    }
    if (query.success && query.data.error) {
      throw new AppError(400, query.data.error === 'access_denied' ? 'access_denied' : 'login_required', { key: 'account.error.cancelled' });
    }
    const language = UiLocales.parse(uiLocales || undefined);
    res.redirect(303, language ? `/account?${new URLSearchParams({ ui_locales: language })}` : '/account');
  }

  const backToAccount = (req: Request, res: Response, notice: Notice) => res.redirect(303, withLanguage(req, '/account', { done: notice }));

  async function revokeApp(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const parsed = RevokeForm.safeParse(req.body);
    if (!parsed.success || !(await account.revokeApp(signedIn, parsed.data.client_id, originOf(req)))) {
      throw new AppError(404, 'not_found', { key: 'account.error.appNotFound' });
    }
    backToAccount(req, res, 'app_revoked');
  }

  async function endOtherSessions(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    await account.signOutOtherSessions(signedIn, originOf(req));
    backToAccount(req, res, 'sessions_ended');
  }

  async function changePassword(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = ChangePasswordForm.parse(req.body);
    const refuse = (status: number, key: MessageKey, params?: PageMessage['params']) => renderAccount(req, res, signedIn, status, { errors: { password: { key, params } } });
    if (!fields.current_password) return refuse(400, 'account.error.currentMissing');
    if (!fields.new_password) return refuse(400, 'account.error.newMissing');
    if (fields.new_password !== fields.new_password_confirm) return refuse(400, 'account.error.mismatch');
    const change = await account.changePassword(signedIn, fields.current_password, fields.new_password, originOf(req));
    if (change.outcome === 'wrong_password') return refuse(401, 'account.error.wrongPassword');
    if (change.outcome === 'rejected') return refuse(400, POLICY_MESSAGES[change.problem], { min: passwordMinLength });
    backToAccount(req, res, 'password_changed');
  }

  async function beginMfaEnrolment(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { password } = PasswordForm.parse(req.body);
    if (!password) return refuseMfa(req, res, signedIn, 400, 'account.error.passwordMissing');
    const outcome = await account.beginMfaEnrolment(signedIn, password, originOf(req));
    if (outcome === 'wrong_password') return refuseMfa(req, res, signedIn, 401, 'account.error.wrongPassword');
    if (outcome === 'already_enabled') return refuseMfa(req, res, signedIn, 409, 'account.error.mfaOn');
    res.redirect(303, withLanguage(req, '/account/mfa'));
  }

  const refuseMfa = (req: Request, res: Response, signedIn: SignedIn, status: number, key: MessageKey) => renderAccount(req, res, signedIn, status, { errors: { mfa: { key } } });

  async function renderEnrolment(req: Request, res: Response, signedIn: SignedIn, status: number, error?: MessageKey) {
    const enrolment = await account.describeMfaEnrolment(signedIn);
    if (!enrolment) return res.redirect(303, withLanguage(req, '/account'));
    const secret = enrolment.secret.match(/.{1,4}/g)?.join(' ') ?? enrolment.secret;
    res.status(status).type('html').send(
      await renderPage('account-mfa', { request: req, lang: language(req), csrfToken: formTokens.issue(signedIn), qrCode: enrolment.qrCode, secret, error, action: (path: string) => withLanguage(req, path) }),
    );
  }

  async function showMfaEnrolment(req: Request, res: Response) {
    const signedIn = await account.currentSession(req, res);
    res.set('Cache-Control', 'no-store');
    if (!signedIn) return res.redirect(303, withLanguage(req, '/account'));
    await renderEnrolment(req, res, signedIn, 200);
  }

  async function confirmMfaEnrolment(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { code } = CodeForm.parse(req.body);
    if (!code) return renderEnrolment(req, res, signedIn, 400, 'mfa.error.codeMissing');
    const codes = await account.confirmMfaEnrolment(signedIn, code, originOf(req));
    if (!codes) return renderEnrolment(req, res, signedIn, 401, 'mfa.error.wrongCode');
    // Shown in this response only: only their hashes are kept.
    res.type('html').send(await renderPage('account-recovery-codes', { request: req, lang: language(req), codes, done: withLanguage(req, '/account', { done: 'mfa_enrolled' }) }));
  }

  async function removeMfa(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { password } = PasswordForm.parse(req.body);
    if (!password) return refuseMfa(req, res, signedIn, 400, 'account.error.passwordMissing');
    const outcome = await account.removeMfa(signedIn, password, originOf(req));
    if (outcome === 'wrong_password') return refuseMfa(req, res, signedIn, 401, 'account.error.wrongPassword');
    if (outcome === 'not_enabled') return refuseMfa(req, res, signedIn, 409, 'account.error.mfaOff');
    backToAccount(req, res, 'mfa_removed');
  }

  const idpOf = (req: Request) => {
    const parsed = IdpParam.safeParse(req.params);
    if (!parsed.success || !federation) throw new AppError(404, 'not_found', { key: 'federation.error.unknown_provider' });
    return { idp: parsed.data.idp, federation };
  };

  /** Sends the browser to the upstream to prove the identity to link; it comes back at /federation/:idp/callback (http/federation.ts). */
  async function linkIdentity(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { idp, federation } = idpOf(req);
    try {
      const { url, cookie, maxAgeMs } = await federation.begin(idp, 'link', signedIn.sessionUid, originOf(req));
      res.cookie(FLOW_COOKIE, cookie, { httpOnly: true, sameSite: 'lax', secure: secureCookies, path: '/', maxAge: maxAgeMs });
      res.redirect(303, url.href);
    } catch (error) {
      if (!(error instanceof FederationRefused)) throw error;
      await renderAccount(req, res, signedIn, error.reason === 'unknown_provider' ? 404 : 502, { errors: { identities: { key: `federation.error.${error.reason}` as MessageKey, params: { provider: error.provider?.displayName ?? '' } } } });
    }
  }

  async function unlinkIdentity(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { idp, federation } = idpOf(req);
    const outcome = await federation.unlink(signedIn.accountId, idp, originOf(req));
    if (outcome === 'last_way') return renderAccount(req, res, signedIn, 409, { errors: { identities: { key: 'account.error.lastWay' } } });
    if (outcome === 'not_linked') return renderAccount(req, res, signedIn, 404, { errors: { identities: { key: 'account.error.notLinked' } } });
    backToAccount(req, res, 'idp_unlinked');
  }

  /** A fresh sign-in, after which passkey and password changes need no password for a while. */
  function reauthenticate(req: Request, res: Response) {
    res.set('Cache-Control', 'no-store');
    startSignIn(req, res, true);
  }

  const refuse = (req: Request, res: Response, signedIn: SignedIn, form: keyof FormErrors, status: number, key: MessageKey, params?: PageMessage['params']) =>
    renderAccount(req, res, signedIn, status, { errors: { [form]: { key, params } } });

  const IDENTITY_REFUSALS: Record<'wrong_password' | 'reauthenticate', MessageKey> = { wrong_password: 'account.error.wrongPassword', reauthenticate: 'account.error.reauthenticate' };

  /** The WebAuthn options for adding a passkey, as JSON for the page's script; a refusal as { error } (the page words it). */
  async function passkeyOptions(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { password } = PasswordForm.parse(req.body);
    const outcome = await account.beginPasskeyRegistration(signedIn, password, originOf(req));
    if (typeof outcome === 'string') return res.status(401).json({ error: outcome });
    res.json(outcome.options);
  }

  async function addPasskey(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = AddPasskeyForm.parse(req.body);
    const name = PASSKEY_NAME.safeParse(fields.name);
    if (!name.success) return refuse(req, res, signedIn, 'passkeys', 400, 'account.error.passkeyName');
    const added = await account.finishPasskeyRegistration(signedIn, fields.response, name.data, originOf(req));
    if (!added.ok) return refuse(req, res, signedIn, 'passkeys', 400, 'account.error.passkeyRefused');
    backToAccount(req, res, 'passkey_added');
  }

  async function renamePasskey(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = RenamePasskeyForm.safeParse(req.body);
    if (!fields.success) return refuse(req, res, signedIn, 'passkeys', 404, 'account.error.passkeyNotFound');
    const name = PASSKEY_NAME.safeParse(fields.data.name);
    if (!name.success) return refuse(req, res, signedIn, 'passkeys', 400, 'account.error.passkeyName');
    if (!(await account.renamePasskey(signedIn, fields.data.id, name.data, originOf(req)))) return refuse(req, res, signedIn, 'passkeys', 404, 'account.error.passkeyNotFound');
    backToAccount(req, res, 'passkey_renamed');
  }

  async function removePasskey(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = RemovePasskeyForm.safeParse(req.body);
    if (!fields.success) return refuse(req, res, signedIn, 'passkeys', 404, 'account.error.passkeyNotFound');
    const outcome = await account.removePasskey(signedIn, fields.data.id, fields.data.password, originOf(req));
    if (outcome === 'not_found') return refuse(req, res, signedIn, 'passkeys', 404, 'account.error.passkeyNotFound');
    if (outcome === 'last_passkey') return refuse(req, res, signedIn, 'passkeys', 409, 'account.error.lastPasskey');
    if (outcome !== 'removed') return refuse(req, res, signedIn, 'passkeys', 401, IDENTITY_REFUSALS[outcome]);
    backToAccount(req, res, 'passkey_removed');
  }

  async function removePassword(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const { password } = PasswordForm.parse(req.body);
    if (!password) return refuse(req, res, signedIn, 'password', 400, 'account.error.currentMissing');
    const outcome = await account.removePassword(signedIn, password, originOf(req));
    if (outcome === 'no_passkey') return refuse(req, res, signedIn, 'password', 409, 'account.error.noPasskey');
    if (outcome === 'wrong_password') return refuse(req, res, signedIn, 'password', 401, 'account.error.wrongPassword');
    backToAccount(req, res, 'password_removed');
  }

  async function setPassword(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = SetPasswordForm.parse(req.body);
    if (!fields.new_password) return refuse(req, res, signedIn, 'password', 400, 'account.error.newMissing');
    if (fields.new_password !== fields.new_password_confirm) return refuse(req, res, signedIn, 'password', 400, 'account.error.mismatch');
    const outcome = await account.setPassword(signedIn, fields.new_password, originOf(req));
    if (outcome === 'reauthenticate') return refuse(req, res, signedIn, 'password', 401, 'account.error.reauthenticate');
    if (outcome === 'has_password') return refuse(req, res, signedIn, 'password', 409, 'account.error.currentMissing');
    if (typeof outcome === 'object') return refuse(req, res, signedIn, 'password', 400, POLICY_MESSAGES[outcome.problem], { min: passwordMinLength });
    backToAccount(req, res, 'password_set');
  }

  async function changeEmail(req: Request, res: Response) {
    const signedIn = await requirePostedForm(req, res);
    const fields = ChangeEmailForm.safeParse(req.body);
    if (!fields.success) return refuse(req, res, signedIn, 'email', 400, 'signup.error.email');
    const outcome = await account.changeEmail(signedIn, fields.data.email, fields.data.password, originOf(req));
    if (outcome === 'same') return refuse(req, res, signedIn, 'email', 400, 'account.error.emailSame');
    if (outcome === 'taken') return refuse(req, res, signedIn, 'email', 409, 'account.error.emailTaken');
    if (outcome !== 'changed') return refuse(req, res, signedIn, 'email', 401, IDENTITY_REFUSALS[outcome]);
    backToAccount(req, res, 'email_changed');
  }

  return router;
}
