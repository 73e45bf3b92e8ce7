// Accepting an invitation (people/invitation-acceptance.ts): /invitation?token=… shows a form to
// choose a password, or (with JavaScript and WebAuthn) to set up a passkey instead, and only a
// POST uses the link (a mail scanner that opens links creates nothing). The account is created
// with its address verified, and the browser lands signed in: the sign-in handoff's secret goes
// in an HttpOnly cookie for the next sign-in page only (cookies.ts), and the browser goes on to
// the invited app's sign-in or to /account, whose authorization request that page answers.
// A link that is forged, used, expired, revoked or superseded gets one clear page and changes
// nothing. Like every page, these are no-store and Referrer-Policy: no-referrer
// (security-headers.ts); the request log masks the token (core/logger.ts).
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import type { DbHandle } from '../db/client.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { acceptInvitation, acceptInvitationWithPasskey, checkInvitation, invitationPasskeyOptions, type Accepted } from '../people/invitation-acceptance.js';
import { PASSKEY_NAME, PASSKEY_RESPONSE_FIELD, type Passkeys } from '../people/passkeys.js';
import { HANDOFF_TTL_SECONDS } from '../people/sign-in-handoff.js';
import { POLICY_MESSAGES } from './account.js';
import { HANDOFF_COOKIE, HANDOFF_COOKIE_PATH } from './cookies.js';
import { FORM_TOKEN_FIELD, type BrowserFormTokens } from './csrf.js';
import { chooseLanguage } from './languages.js';
import type { MessageKey } from './messages/index.js';

const TokenQuery = z.object({ token: z.string().max(128) });
const AcceptForm = z.object({ token: z.string().max(128), password: z.string().max(1024), password_confirm: z.string().max(1024) });
const PasskeyOptionsForm = z.object({ token: z.string().max(128) });
const PasskeyForm = z.object({ token: z.string().max(128), name: z.string().max(1024).default(''), response: PASSKEY_RESPONSE_FIELD });

export interface InvitationRouterDeps {
  db: DbHandle;
  audit: AuditLog;
  /** The WebAuthn ceremonies (people/passkeys.ts): a passkey instead of a password. */
  passkeys: Passkeys;
  renderPage: RenderPage;
  formTokens: BrowserFormTokens;
  issuer: string;
  passwords: { minLength: number; bcryptCost: number };
}

interface FormState {
  error?: { key: MessageKey; fields: string[] };
  passkeyError?: MessageKey;
  passkeyName?: string;
}

export function createInvitationRouter({ db, audit, passkeys, renderPage, formTokens, issuer, passwords }: InvitationRouterDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 10 });
  const secureCookies = new URL(issuer).protocol === 'https:';
  const acceptance = { db, audit, issuer, passwords, passkeys };

  router.get('/invitation', showInvitation);
  router.post('/invitation', form, acceptWithPassword);
  router.post('/invitation/passkey/options', form, passkeyOptions);
  router.post('/invitation/passkey', form, acceptWithPasskey);

  const page = async (req: Request, res: Response, status: number, view: string, locals: Record<string, unknown> = {}) =>
    res.status(status).type('html').send(await renderPage(view, { request: req, lang: chooseLanguage(req), ...locals }));
  const renderInvalid = (req: Request, res: Response) => page(req, res, 400, 'invitation-invalid');
  const renderForm = async (req: Request, res: Response, status: number, token: string, email: string, state: FormState = {}) =>
    page(req, res, status, 'invitation', {
      csrfToken: formTokens.issue(req, res),
      token,
      email,
      min: passwords.minLength,
      error: state.error,
      passkeyError: state.passkeyError,
      passkeyName: state.passkeyName,
    });
  const formTokenGood = (req: Request) => formTokens.verify(req, (req.body as Record<string, unknown> | undefined)?.[FORM_TOKEN_FIELD]);
  const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

  /** The account exists: the handoff goes in its cookie, and the browser on to sign in there. */
  function landSignedIn(res: Response, accepted: Accepted) {
    res.cookie(HANDOFF_COOKIE, accepted.handoff, { httpOnly: true, sameSite: 'lax', secure: secureCookies, path: HANDOFF_COOKIE_PATH, maxAge: HANDOFF_TTL_SECONDS * 1000 });
    res.redirect(303, accepted.next);
  }

  async function showInvitation(req: Request, res: Response) {
    const parsed = TokenQuery.safeParse(req.query);
    const invitation = parsed.success ? await checkInvitation(db, parsed.data.token) : null;
    if (!parsed.success || !invitation) return renderInvalid(req, res);
    await renderForm(req, res, 200, parsed.data.token, invitation.email);
  }

  async function acceptWithPassword(req: Request, res: Response) {
    const parsed = AcceptForm.safeParse(req.body ?? {});
    const invitation = parsed.success ? await checkInvitation(db, parsed.data.token) : null;
    if (!parsed.success || !invitation) return renderInvalid(req, res);
    const { token, password, password_confirm: confirm } = parsed.data;
    if (!formTokenGood(req)) return renderForm(req, res, 403, token, invitation.email, { error: { key: 'reset.error.formToken', fields: [] } });
    if (!password) return renderForm(req, res, 400, token, invitation.email, { error: { key: 'reset.error.passwordMissing', fields: ['password'] } });
    if (password !== confirm) return renderForm(req, res, 400, token, invitation.email, { error: { key: 'reset.error.mismatch', fields: ['password_confirm'] } });
    const result = await acceptInvitation(acceptance, token, password, originOf(req));
    if (result.outcome === 'invalid') return renderInvalid(req, res);
    if (result.outcome === 'rejected') return renderForm(req, res, 400, token, invitation.email, { error: { key: POLICY_MESSAGES[result.problem], fields: ['password'] } });
    landSignedIn(res, result);
  }

  /** WebAuthn options for the page's script (JSON); its errors are codes the script words. */
  async function passkeyOptions(req: Request, res: Response) {
    const parsed = PasskeyOptionsForm.safeParse(req.body ?? {});
    if (!formTokenGood(req)) return res.status(403).json({ error: 'form_token' });
    const options = parsed.success ? await invitationPasskeyOptions(acceptance, parsed.data.token) : null;
    if (!options) return res.status(400).json({ error: 'invalid' });
    res.json(options);
  }

  async function acceptWithPasskey(req: Request, res: Response) {
    const parsed = PasskeyForm.safeParse(req.body ?? {});
    const invitation = parsed.success ? await checkInvitation(db, parsed.data.token) : null;
    if (!parsed.success || !invitation) return renderInvalid(req, res);
    const { token, response } = parsed.data;
    const name = PASSKEY_NAME.safeParse(parsed.data.name);
    const refuse = (status: number, passkeyError: MessageKey) => renderForm(req, res, status, token, invitation.email, { passkeyError, passkeyName: parsed.data.name.slice(0, 64) });
    if (!formTokenGood(req)) return refuse(403, 'reset.error.formToken');
    if (!name.success) return refuse(400, 'invitation.passkey.nameMissing');
    const result = await acceptInvitationWithPasskey(acceptance, token, response, name.data, originOf(req));
    if (result.outcome === 'invalid') return renderInvalid(req, res);
    if (result.outcome === 'passkey_refused') return refuse(400, 'invitation.passkey.refused');
    landSignedIn(res, result);
  }

  return router;
}
