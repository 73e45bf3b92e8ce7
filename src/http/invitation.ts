// Accepting an invitation (people/invitations.ts): /invitation?token=… shows a form to choose a
// password, and only its POST uses the link (a mail scanner that opens links creates nothing).
// The account is created with its address verified; the person then signs in with the new
// password (the sign-in page has their email filled in), or goes to the app the invitation names.
// A link that is forged, used, expired, revoked or superseded gets one clear page and changes
// nothing. Like every page, these are no-store and Referrer-Policy: no-referrer
// (security-headers.ts); the request log masks the token (core/logger.ts).
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import type { DbHandle } from '../db/client.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { acceptInvitation, checkInvitation } from '../people/invitations.js';
import { POLICY_MESSAGES } from './account.js';
import { FORM_TOKEN_FIELD, type BrowserFormTokens } from './csrf.js';
import { chooseLanguage } from './languages.js';
import type { MessageKey } from './messages/index.js';

const TokenQuery = z.object({ token: z.string().max(128) });
const AcceptForm = z.object({ token: z.string().max(128), password: z.string().max(1024), password_confirm: z.string().max(1024) });

export interface InvitationRouterDeps {
  db: DbHandle;
  audit: AuditLog;
  renderPage: RenderPage;
  formTokens: BrowserFormTokens;
  passwords: { minLength: number; bcryptCost: number };
}

export function createInvitationRouter({ db, audit, renderPage, formTokens, passwords }: InvitationRouterDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  router.get('/invitation', showInvitation);
  router.post('/invitation', form, acceptWithPassword);

  const page = async (req: Request, res: Response, status: number, view: string, locals: Record<string, unknown> = {}) =>
    res.status(status).type('html').send(await renderPage(view, { lang: chooseLanguage(req), ...locals }));
  const renderInvalid = (req: Request, res: Response) => page(req, res, 400, 'invitation-invalid');
  const renderForm = async (req: Request, res: Response, status: number, token: string, email: string, error?: { key: MessageKey; fields: string[] }) =>
    page(req, res, status, 'invitation', { csrfToken: formTokens.issue(req, res), token, email, min: passwords.minLength, error });

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
    if (!formTokens.verify(req, (req.body as Record<string, unknown>)[FORM_TOKEN_FIELD])) return renderForm(req, res, 403, token, invitation.email, { key: 'reset.error.formToken', fields: [] });
    if (!password) return renderForm(req, res, 400, token, invitation.email, { key: 'reset.error.passwordMissing', fields: ['password'] });
    if (password !== confirm) return renderForm(req, res, 400, token, invitation.email, { key: 'reset.error.mismatch', fields: ['password_confirm'] });
    const result = await acceptInvitation({ db, audit, passwords }, token, password, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
    if (result.outcome === 'invalid') return renderInvalid(req, res);
    if (result.outcome === 'rejected') return renderForm(req, res, 400, token, invitation.email, { key: POLICY_MESSAGES[result.problem], fields: ['password'] });
    await page(req, res, 200, 'invitation-done', { email: result.email, app: result.app, signIn: `/account?${new URLSearchParams({ login_hint: result.email })}` });
  }

  return router;
}
