// The sign-in and consent pages the engine sends people to, at /interaction/:uid.
// Each handler: load the interaction, check the prompt, call one step, finish or render.
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Interaction, InteractionSteps } from '../oidc/interactions.js';
import { describeScope } from '../oidc/provider.js';
import type { RenderPage } from '../oidc/render.js';
import { FORM_TOKEN_FIELD, type FormTokens } from './csrf.js';
import { AppError } from './errors.js';
import { chooseLanguage } from './languages.js';

const UidParam = z.object({ uid: z.string().regex(/^[\w-]{1,128}$/) });

const LoginForm = z.object({
  email: z.string().trim().default('').refine((v) => v.length > 0, 'Enter your email address.').refine((v) => v.length <= 320, 'That email address is too long.'),
  password: z.string().default('').refine((v) => v.length > 0, 'Enter your password.').refine((v) => v.length <= 1024, 'That password is too long.'),
});

/** Every form we render carries the token (csrf.ts) of the interaction it was rendered for. */
const TokenForm = z.object({ [FORM_TOKEN_FIELD]: z.string().min(1).max(128) });

/** Where the request came from, for the audit trail (req.ip honours TRUST_PROXY). */
const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

const WRONG_CREDENTIALS = 'Incorrect email or password.';

export function createInteractionRouter(steps: InteractionSteps, renderPage: RenderPage, formTokens: FormTokens): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

  router.get('/interaction/:uid', showInteraction);
  router.post('/interaction/:uid/login', form, submitLogin);
  router.post('/interaction/:uid/confirm', form, confirmConsent);
  router.post('/interaction/:uid/abort', form, abortInteraction);

  /** Loads the interaction named in the URL; the cookie must belong to that same interaction. */
  async function load(req: Request, res: Response): Promise<Interaction> {
    const params = UidParam.safeParse(req.params);
    const interaction = await steps.load(req, res);
    if (!params.success || params.data.uid !== interaction.uid) {
      throw new AppError(400, 'invalid_request', 'This sign-in page does not match your current sign-in. Go back to the app and start again.');
    }
    res.set('Cache-Control', 'no-store');
    return interaction;
  }

  function expectPrompt(interaction: Interaction, name: 'login' | 'consent') {
    if (interaction.prompt.name !== name) {
      throw new AppError(400, 'invalid_request', 'This step of the sign-in is already done or not expected. Go back to the app and start again.');
    }
  }

  /** Refuses a POST whose form was not rendered for this interaction (cross-site request forgery). */
  function checkFormToken(req: Request, interaction: Interaction) {
    const parsed = TokenForm.safeParse(req.body ?? {});
    if (!parsed.success || !formTokens.verify(interaction, parsed.data[FORM_TOKEN_FIELD])) {
      throw new AppError(403, 'invalid_form_token', 'This form was not sent from the sign-in page you have open, so nothing was done. Reload the page and try again.');
    }
  }

  async function renderLogin(req: Request, res: Response, interaction: Interaction, status: number, locals: { email?: string; error?: string }) {
    const client = await steps.describeClient(interaction.params.client_id);
    res.status(status).type('html').send(
      await renderPage('login', {
        lang: chooseLanguage(req, interaction.params.ui_locales),
        uid: interaction.uid,
        csrfToken: formTokens.issue(interaction),
        client,
        email: locals.email ?? interaction.params.login_hint ?? '',
        error: locals.error,
      }),
    );
  }

  async function renderConsent(req: Request, res: Response, interaction: Interaction) {
    const client = await steps.describeClient(interaction.params.client_id);
    const { details } = interaction.prompt;
    const scopes = (details.missingOIDCScope ?? []).filter((s) => s !== 'openid').map((s) => ({ name: s, description: describeScope(s) }));
    res.type('html').send(
      await renderPage('consent', {
        lang: chooseLanguage(req, interaction.params.ui_locales),
        uid: interaction.uid,
        csrfToken: formTokens.issue(interaction),
        client,
        scopes,
        claims: details.missingOIDCClaims ?? [],
        resources: Object.entries(details.missingResourceScopes ?? {}).map(([indicator, list]) => ({ indicator, scopes: list })),
      }),
    );
  }

  async function showInteraction(req: Request, res: Response) {
    const interaction = await load(req, res);
    if (interaction.prompt.name === 'login') return renderLogin(req, res, interaction, 200, {});
    if (interaction.prompt.name === 'consent') return renderConsent(req, res, interaction);
    throw new AppError(400, 'invalid_request', `This sign-in needs a step Gatehouse does not offer (${interaction.prompt.name}).`);
  }

  async function submitLogin(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'login');
    checkFormToken(req, interaction);
    const parsed = LoginForm.safeParse(req.body ?? {});
    const email = typeof req.body?.email === 'string' ? req.body.email.slice(0, 320) : '';
    if (!parsed.success) return renderLogin(req, res, interaction, 400, { email, error: parsed.error.issues[0]?.message });
    if (!(await steps.submitLogin(req, res, parsed.data.email, parsed.data.password, originOf(req)))) {
      return renderLogin(req, res, interaction, 401, { email, error: WRONG_CREDENTIALS });
    }
  }

  async function confirmConsent(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'consent');
    checkFormToken(req, interaction);
    await steps.confirmConsent(req, res, interaction, originOf(req));
  }

  async function abortInteraction(req: Request, res: Response) {
    const interaction = await load(req, res);
    checkFormToken(req, interaction);
    await steps.abortInteraction(req, res);
  }

  return router;
}
