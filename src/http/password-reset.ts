// The forgotten-password pages: ask for a link (/password/forgot), choose a new password with it
// (/password/reset?token=…). Handlers parse, check the form token, call one function of
// people/password-reset.ts, then render. Asking for a link answers with the same page, status
// and (padded) timing whether or not the address has an account. A link that is forged, used,
// expired or superseded gets one clear page and changes nothing. Like every page, these are
// no-store and Referrer-Policy: no-referrer (security-headers.ts), so the token in the URL
// neither stays in a cache nor reaches another site; the request log masks it (core/logger.ts).
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { PasswordReset } from '../people/password-reset.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { POLICY_MESSAGES } from './account.js';
import type { BrowserFormTokens } from './csrf.js';
import { FORM_TOKEN_FIELD } from './csrf.js';
import { chooseLanguage } from './languages.js';
import type { MessageKey } from './messages/index.js';

/** Every answer to a link request takes at least this long, so its timing tells nothing. */
export const RESET_REQUEST_MIN_MS = 400;

const InteractionUid = z.string().regex(/^[\w-]{1,128}$/);
const ForgotQuery = z.object({ interaction: InteractionUid.optional().catch(undefined) });
const ForgotForm = z.object({
  email: z.string().trim().max(320).pipe(z.email()),
  interaction: InteractionUid.optional().catch(undefined),
});
const TokenQuery = z.object({ token: z.string().max(128) });
const ResetForm = z.object({ token: z.string().max(128), password: z.string().max(1024), password_confirm: z.string().max(1024) });

export interface PasswordResetRouterDeps {
  reset: PasswordReset;
  renderPage: RenderPage;
  formTokens: BrowserFormTokens;
  passwordMinLength: number;
  resetTtlSeconds: number;
}

export function createPasswordResetRouter({ reset, renderPage, formTokens, passwordMinLength, resetTtlSeconds }: PasswordResetRouterDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  router.get('/password/forgot', showForgotForm);
  router.post('/password/forgot', form, requestResetLink);
  router.get('/password/reset', showResetForm);
  router.post('/password/reset', form, submitNewPassword);

  const page = async (req: Request, res: Response, status: number, view: string, locals: Record<string, unknown>) =>
    res.status(status).type('html').send(await renderPage(view, { request: req, lang: chooseLanguage(req), ...locals }));
  const minutes = Math.round(resetTtlSeconds / 60);

  function renderForgot(req: Request, res: Response, status: number, locals: { email?: string; interaction?: string | undefined; error?: MessageKey }) {
    return page(req, res, status, 'password-forgot', { csrfToken: formTokens.issue(req, res), email: locals.email ?? '', interaction: locals.interaction, error: locals.error });
  }

  function renderInvalid(req: Request, res: Response) {
    return page(req, res, 400, 'password-reset-invalid', {});
  }

  async function showForgotForm(req: Request, res: Response) {
    const { interaction } = ForgotQuery.parse(req.query);
    await renderForgot(req, res, 200, { interaction });
  }

  async function requestResetLink(req: Request, res: Response) {
    const started = Date.now();
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = typeof body.email === 'string' ? body.email.slice(0, 320) : '';
    if (!formTokens.verify(req, body[FORM_TOKEN_FIELD])) return renderForgot(req, res, 403, { email: typed, error: 'reset.error.formToken' });
    const parsed = ForgotForm.safeParse(body);
    if (!parsed.success) return renderForgot(req, res, 400, { email: typed, error: 'reset.error.emailInvalid' });
    const { email, interaction } = parsed.data;
    const outcome = await reset.requestLink(email, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, language: chooseLanguage(req), interaction });
    const wait = RESET_REQUEST_MIN_MS - (Date.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (outcome === 'too_many') return renderForgot(req, res, 429, { email, interaction, error: 'reset.error.tooMany' });
    await page(req, res, 200, 'password-reset-sent', { email, minutes, interaction });
  }

  async function renderChoose(req: Request, res: Response, status: number, token: string, email: string, error?: { key: MessageKey; fields: string[] }) {
    await page(req, res, status, 'password-reset', { csrfToken: formTokens.issue(req, res), token, email, min: passwordMinLength, error });
  }

  async function showResetForm(req: Request, res: Response) {
    const parsed = TokenQuery.safeParse(req.query);
    const link = parsed.success ? await reset.checkLink(parsed.data.token) : null;
    if (!parsed.success || !link) return renderInvalid(req, res);
    await renderChoose(req, res, 200, parsed.data.token, link.email);
  }

  async function submitNewPassword(req: Request, res: Response) {
    const parsed = ResetForm.safeParse(req.body ?? {});
    const link = parsed.success ? await reset.checkLink(parsed.data.token) : null;
    if (!parsed.success || !link) return renderInvalid(req, res);
    const { token, password, password_confirm: confirm } = parsed.data;
    const body = req.body as Record<string, unknown>;
    if (!formTokens.verify(req, body[FORM_TOKEN_FIELD])) return renderChoose(req, res, 403, token, link.email, { key: 'reset.error.formToken', fields: [] });
    if (!password) return renderChoose(req, res, 400, token, link.email, { key: 'reset.error.passwordMissing', fields: ['password'] });
    if (password !== confirm) return renderChoose(req, res, 400, token, link.email, { key: 'reset.error.mismatch', fields: ['password_confirm'] });
    const result = await reset.resetPassword(token, password, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
    if (result.outcome === 'invalid') return renderInvalid(req, res);
    if (result.outcome === 'rejected') return renderChoose(req, res, 400, token, link.email, { key: POLICY_MESSAGES[result.problem], fields: ['password'] });
    await page(req, res, 200, 'password-reset-done', { continueTo: result.interaction ? `/interaction/${result.interaction}` : '/account' , toApp: Boolean(result.interaction) });
  }

  return router;
}
