// The sign-up pages (SIGNUP=open; otherwise not mounted, so /signup is a 404): a form for the
// email, an optional name and a password (/signup), then "check your mail". The handler parses,
// checks the form token, calls people/sign-up.ts, then renders. A new address and one that has an
// account get the same page, status and (padded) timing.
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { RenderPage } from '../oidc/page-renderer.js';
import type { SignUp } from '../people/sign-up.js';
import { POLICY_MESSAGES } from './account.js';
import { FORM_TOKEN_FIELD, type BrowserFormTokens } from './csrf.js';
import { chooseLanguage } from './languages.js';
import type { MessageKey } from './messages/index.js';
import { RESET_REQUEST_MIN_MS } from './password-reset.js';

const InteractionUid = z.string().regex(/^[\w-]{1,128}$/);
const SignUpQuery = z.object({ interaction: InteractionUid.optional().catch(undefined) });
const SignUpForm = z.object({
  email: z.string().trim().max(320).pipe(z.email()),
  name: z.string().trim().max(200).optional().transform((value) => value || undefined),
  password: z.string().max(1024),
  password_confirm: z.string().max(1024),
  interaction: InteractionUid.optional().catch(undefined),
});

interface FormState {
  email?: string;
  name?: string;
  interaction?: string | undefined;
  error?: { key: MessageKey; fields: string[] };
}

export function createSignUpRouter({ signUp, renderPage, formTokens, passwordMinLength }: { signUp: SignUp; renderPage: RenderPage; formTokens: BrowserFormTokens; passwordMinLength: number }): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  router.get('/signup', showForm);
  router.post('/signup', form, submit);

  const page = async (req: Request, res: Response, status: number, view: string, locals: Record<string, unknown>) =>
    res.status(status).type('html').send(await renderPage(view, { request: req, lang: chooseLanguage(req), ...locals }));

  const renderForm = (req: Request, res: Response, status: number, state: FormState) =>
    page(req, res, status, 'signup', { csrfToken: formTokens.issue(req, res), email: state.email ?? '', name: state.name ?? '', interaction: state.interaction, error: state.error, min: passwordMinLength });

  async function showForm(req: Request, res: Response) {
    await renderForm(req, res, 200, SignUpQuery.parse(req.query));
  }

  async function submit(req: Request, res: Response) {
    const started = Date.now();
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = (field: string) => (typeof body[field] === 'string' ? body[field].slice(0, 320) : '');
    const kept = { email: typed('email'), name: typed('name'), interaction: SignUpQuery.parse({ interaction: body.interaction }).interaction };
    if (!formTokens.verify(req, body[FORM_TOKEN_FIELD])) return renderForm(req, res, 403, { ...kept, error: { key: 'reset.error.formToken', fields: [] } });
    const parsed = SignUpForm.safeParse(body);
    if (!parsed.success) {
      const field = String(parsed.error.issues[0]?.path[0] ?? 'email');
      return renderForm(req, res, 400, { ...kept, error: field === 'name' ? { key: 'signup.error.name', fields: ['name'] } : field === 'email' ? { key: 'signup.error.email', fields: ['email'] } : { key: 'reset.error.passwordMissing', fields: ['password'] } });
    }
    const { email, name, password, password_confirm: confirm, interaction } = parsed.data;
    if (!password) return renderForm(req, res, 400, { ...kept, error: { key: 'reset.error.passwordMissing', fields: ['password'] } });
    if (password !== confirm) return renderForm(req, res, 400, { ...kept, error: { key: 'reset.error.mismatch', fields: ['password_confirm'] } });
    const language = chooseLanguage(req);
    const result = await signUp({ email, name, password }, { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, language });
    if (result.outcome === 'domain_refused') return renderForm(req, res, 400, { ...kept, error: { key: 'signup.error.domain', fields: ['email'] } });
    if (result.outcome === 'rejected') return renderForm(req, res, 400, { ...kept, error: { key: POLICY_MESSAGES[result.problem], fields: ['password'] } });
    if (result.outcome === 'too_many') return renderForm(req, res, 429, { ...kept, error: { key: 'reset.error.tooMany', fields: [] } });
    const wait = RESET_REQUEST_MIN_MS - (Date.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await page(req, res, 200, 'signup-sent', { email, interaction });
  }

  return router;
}
