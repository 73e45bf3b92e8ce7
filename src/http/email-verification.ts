// Following a link that proves an email address: /email/verify?token=… shows a button, and only
// its POST uses the link (a mail scanner that opens links verifies nothing). A link that is
// forged, used, expired or superseded gets one clear page and changes nothing.
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import type { DbHandle } from '../db/client.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { checkVerificationLink, verifyEmail } from '../people/email-verification.js';
import { FORM_TOKEN_FIELD, type BrowserFormTokens } from './csrf.js';
import { chooseLanguage } from './languages.js';

const TokenInput = z.object({ token: z.string().max(128) });

export function createEmailVerificationRouter({ db, audit, renderPage, formTokens }: { db: DbHandle; audit: AuditLog; renderPage: RenderPage; formTokens: BrowserFormTokens }): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 5 });

  router.get('/email/verify', showVerification);
  router.post('/email/verify', form, confirmVerification);

  const page = async (req: Request, res: Response, status: number, view: string, locals: Record<string, unknown> = {}) =>
    res.status(status).type('html').send(await renderPage(view, { request: req, lang: chooseLanguage(req), ...locals }));

  async function showVerification(req: Request, res: Response) {
    const parsed = TokenInput.safeParse(req.query);
    const link = parsed.success ? await checkVerificationLink(db, parsed.data.token) : null;
    if (!parsed.success || !link) return page(req, res, 400, 'email-verify-invalid');
    await page(req, res, 200, 'email-verify', { email: link.email, token: parsed.data.token, csrfToken: formTokens.issue(req, res) });
  }

  async function confirmVerification(req: Request, res: Response) {
    const parsed = TokenInput.safeParse(req.body ?? {});
    if (!parsed.success) return page(req, res, 400, 'email-verify-invalid');
    const link = await checkVerificationLink(db, parsed.data.token);
    if (!link) return page(req, res, 400, 'email-verify-invalid');
    if (!formTokens.verify(req, (req.body as Record<string, unknown>)[FORM_TOKEN_FIELD])) {
      return page(req, res, 403, 'email-verify', { email: link.email, token: parsed.data.token, csrfToken: formTokens.issue(req, res), error: 'reset.error.formToken' });
    }
    const verified = await verifyEmail(db, audit, parsed.data.token, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
    if (!verified) return page(req, res, 400, 'email-verify-invalid');
    await page(req, res, 200, 'email-verified', { email: link.email });
  }

  return router;
}
