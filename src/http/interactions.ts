// The sign-in and consent pages the engine sends people to, at /interaction/:uid.
// Each handler: load the interaction, check the prompt, call one step, finish or render.
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Interaction, PendingSecondFactor } from '../oidc/interaction-state.js';
import type { InteractionSteps } from '../oidc/interactions.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import type { ProviderButton } from '../federation/sign-in.js';
import { PASSKEY_RESPONSE_FIELD } from '../people/passkeys.js';
import { HANDOFF_COOKIE, HANDOFF_COOKIE_PATH, readCookie } from './cookies.js';
import { FORM_TOKEN_FIELD, type FormTokens } from './csrf.js';
import { AppError, FEDERATION_STATUS } from './errors.js';
import { chooseLanguage } from './languages.js';
import { isMessageKey, type MessageKey } from './messages/index.js';

const UidParam = z.object({ uid: z.string().regex(/^[\w-]{1,128}$/) });

// Validation messages are catalogue keys (messages/en.ts); the page words them.
const LoginForm = z.object({
  email: z.string().trim().default('').refine((v) => v.length > 0, 'login.error.emailMissing').refine((v) => v.length <= 320, 'login.error.emailTooLong'),
  password: z.string().default('').refine((v) => v.length > 0, 'login.error.passwordMissing').refine((v) => v.length <= 1024, 'login.error.passwordTooLong'),
});

/** A TOTP code (spaces allowed: apps show "123 456") or a recovery code. */
const CodeForm = z.object({
  code: z.string().trim().default('').refine((v) => v.length > 0, 'mfa.error.codeMissing').refine((v) => v.length <= 32, 'mfa.error.codeTooLong'),
});
const RecoveryCodeForm = z.object({
  recovery_code: z.string().trim().default('').refine((v) => v.length > 0, 'mfa.error.recoveryMissing').refine((v) => v.length <= 64, 'mfa.error.recoveryTooLong'),
});

/** A form error for the page: which message, and which fields it is about. */
interface FormError {
  key: MessageKey;
  fields: string[];
}

/** The first problem zod found, as the page shows it. */
const formError = (error: z.ZodError): FormError => {
  const issue = error.issues[0];
  return { key: isMessageKey(issue?.message) ? issue.message : 'error.malformed', fields: issue ? issue.path.map(String) : [] };
};

/** A passkey's answer as @simplewebauthn/browser made it (people/passkeys.ts parses the rest). */
const PasskeyForm = z.object({ response: PASSKEY_RESPONSE_FIELD });

/** Every form we render carries the token (csrf.ts) of the interaction it was rendered for. */
const TokenForm = z.object({ [FORM_TOKEN_FIELD]: z.string().min(1).max(128) });

/** Where the request came from, for the audit trail (req.ip honours TRUST_PROXY). */
const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

const WRONG_CREDENTIALS: FormError = { key: 'login.error.wrongCredentials', fields: ['email', 'password'] };
const WRONG_CODE: FormError = { key: 'mfa.error.wrongCode', fields: ['code'] };
const WRONG_RECOVERY_CODE: FormError = { key: 'mfa.error.wrongRecoveryCode', fields: ['recovery_code'] };
const TOO_MANY_FAILURES: FormError = { key: 'login.error.tooManyCodes', fields: [] };
const PASSKEY_REFUSED: FormError = { key: 'passkey.error.refused', fields: [] };

/** What every interaction route checks first: the interaction itself, its prompt, its form token. */
export function interactionGuards(steps: InteractionSteps, formTokens: FormTokens) {
  /** Loads the interaction named in the URL; the cookie must belong to that same interaction. */
  async function load(req: Request, res: Response): Promise<Interaction> {
    const params = UidParam.safeParse(req.params);
    const interaction = await steps.load(req, res);
    if (!params.success || params.data.uid !== interaction.uid) {
      throw new AppError(400, 'invalid_request', { key: 'error.interactionMismatch' });
    }
    res.set('Cache-Control', 'no-store');
    return interaction;
  }

  function expectPrompt(interaction: Interaction, name: 'login' | 'consent') {
    if (interaction.prompt.name !== name) {
      throw new AppError(400, 'invalid_request', { key: 'error.stepDone' });
    }
  }

  /** Refuses a POST whose form was not rendered for this interaction (cross-site request forgery). */
  function checkFormToken(req: Request, interaction: Interaction) {
    const parsed = TokenForm.safeParse(req.body ?? {});
    if (!parsed.success || !formTokens.verify(interaction, parsed.data[FORM_TOKEN_FIELD])) {
      throw new AppError(403, 'invalid_form_token', { key: 'error.formToken' });
    }
  }

  return { load, expectPrompt, checkFormToken };
}

/** `identityProviders`: the sign-in page's buttons (federation/); none by default. */
export function createInteractionRouter(steps: InteractionSteps, renderPage: RenderPage, formTokens: FormTokens, identityProviders: () => Promise<ProviderButton[]> = async () => []): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const { load, expectPrompt, checkFormToken } = interactionGuards(steps, formTokens);

  router.get('/interaction/:uid', showInteraction);
  router.post('/interaction/:uid/login', form, submitLogin);
  router.post('/interaction/:uid/mfa', form, submitTotpCode);
  router.post('/interaction/:uid/recovery', form, submitRecoveryCode);
  router.post('/interaction/:uid/enroll', form, confirmEnrolment);
  router.post('/interaction/:uid/continue', form, continueAfterEnrolment);
  router.post('/interaction/:uid/passkey/options', form, passkeyOptions);
  router.post('/interaction/:uid/passkey', form, submitPasskey);
  router.post('/interaction/:uid/confirm', form, confirmConsent);
  router.post('/interaction/:uid/abort', form, abortInteraction);
  router.post('/interaction/:uid/verify-email/resend', form, resendVerification);
  router.post('/interaction/:uid/verify-email/continue', form, continueAfterVerification);

  /** A posted second-factor form: its interaction at the login prompt, its form token, and the step owed. */
  async function loadSecondFactor(req: Request, res: Response, stage: PendingSecondFactor['stage']) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'login');
    checkFormToken(req, interaction);
    return { interaction, pending: expectSecondFactor(interaction, stage) };
  }

  /** The second factor this interaction owes after its password step; refused without one. */
  function expectSecondFactor(interaction: Interaction, stage: PendingSecondFactor['stage']): PendingSecondFactor {
    const pending = steps.pendingSecondFactor(interaction);
    if (!pending || pending.stage !== stage) {
      throw new AppError(400, 'invalid_request', { key: 'error.stepNotExpected' });
    }
    return pending;
  }

  /** The sign-in page; while an upstream identity waits to be linked (federation/), it says so and asks for that account's password. */
  async function renderLogin(req: Request, res: Response, interaction: Interaction, status: number, locals: { email?: string; error?: FormError }) {
    const client = await steps.describeClient(interaction.params.client_id);
    const link = steps.pendingLink(interaction);
    res.status(status).type('html').send(
      await renderPage('login', {
        request: req,
        lang: chooseLanguage(req, interaction.params.ui_locales),
        uid: interaction.uid,
        csrfToken: formTokens.issue(interaction),
        client,
        email: locals.email ?? link?.email ?? interaction.params.login_hint ?? '',
        error: locals.error,
        link: link && { provider: link.providerName, email: link.email },
        identityProviders: await identityProviders(),
      }),
    );
  }

  /** The page for the second factor still owed: the code, the enrolment, or the recovery codes. */
  async function renderSecondFactor(req: Request, res: Response, interaction: Interaction, pending: PendingSecondFactor, status: number, locals: { error?: FormError; recoveryError?: FormError; recoveryCodes?: string[]; sent?: boolean }) {
    const page = {
      request: req,
      lang: chooseLanguage(req, interaction.params.ui_locales),
      uid: interaction.uid,
      csrfToken: formTokens.issue(interaction),
      client: await steps.describeClient(interaction.params.client_id),
      error: locals.error,
    };
    if (pending.stage === 'verify_email') {
      return res.status(status).type('html').send(await renderPage('email-verify-required', { ...page, sent: locals.sent ?? false }));
    }
    if (pending.stage === 'code') {
      const methods = await steps.secondFactorMethods(pending);
      return res.status(status).type('html').send(await renderPage('mfa-code', { ...page, methods, recoveryError: locals.recoveryError }));
    }
    if (pending.stage === 'enrolled') {
      return res.status(status).type('html').send(await renderPage('mfa-recovery-codes', { ...page, codes: locals.recoveryCodes ?? [] }));
    }
    const enrolment = await steps.describeEnrolment(pending);
    if (!enrolment) throw new AppError(400, 'invalid_request', { key: 'error.enrolmentGone' });
    const secretGroups = enrolment.secret.match(/.{1,4}/g)?.join(' ') ?? enrolment.secret;
    res.status(status).type('html').send(await renderPage('mfa-enroll', { ...page, qrCode: enrolment.qrCode, secret: secretGroups }));
  }

  async function renderConsent(req: Request, res: Response, interaction: Interaction) {
    const client = await steps.describeClient(interaction.params.client_id);
    const { requested, granted } = await steps.describeConsent(interaction);
    res.type('html').send(
      await renderPage('consent', {
        request: req,
        lang: chooseLanguage(req, interaction.params.ui_locales),
        uid: interaction.uid,
        csrfToken: formTokens.issue(interaction),
        client,
        requested,
        granted,
      }),
    );
  }

  async function showInteraction(req: Request, res: Response) {
    const interaction = await load(req, res);
    if (interaction.prompt.name === 'login') {
      const pending = steps.pendingSecondFactor(interaction);
      if (pending) return renderSecondFactor(req, res, interaction, pending, 200, {});
      if (await signInWithHandoff(req, res, interaction)) return;
      return renderLogin(req, res, interaction, 200, {});
    }
    if (interaction.prompt.name === 'consent') return renderConsent(req, res, interaction);
    throw new AppError(400, 'invalid_request', { key: 'error.unsupportedPrompt', params: { prompt: interaction.prompt.name } });
  }

  /** Just after accepting an invitation: the handoff in its cookie (used up, the cookie cleared) signs in; false shows the sign-in page. */
  async function signInWithHandoff(req: Request, res: Response, interaction: Interaction): Promise<boolean> {
    const secret = readCookie(req, HANDOFF_COOKIE);
    if (!secret) return false;
    res.clearCookie(HANDOFF_COOKIE, { path: HANDOFF_COOKIE_PATH });
    const outcome = await steps.signInWithHandoff(req, res, interaction, secret, originOf(req));
    if (outcome === 'second_factor') res.redirect(303, `/interaction/${interaction.uid}`);
    return outcome !== 'unused';
  }

  async function submitLogin(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'login');
    checkFormToken(req, interaction);
    const parsed = LoginForm.safeParse(req.body ?? {});
    const email = typeof req.body?.email === 'string' ? req.body.email.slice(0, 320) : '';
    if (!parsed.success) return renderLogin(req, res, interaction, 400, { email, error: formError(parsed.error) });
    const outcome = await steps.submitLogin(req, res, interaction, parsed.data.email, parsed.data.password, originOf(req));
    if (outcome === 'wrong') return renderLogin(req, res, interaction, 401, { email, error: WRONG_CREDENTIALS });
    // The pending link was refused and forgotten: the plain sign-in page, saying nothing was linked.
    if (outcome === 'link_account_mismatch' || outcome === 'link_expired') {
      return renderLogin(req, res, { ...interaction, result: undefined }, FEDERATION_STATUS[outcome], { email, error: { key: `federation.error.${outcome}`, fields: [] } });
    }
    // The code or enrolment page, by GET, so reloading it never re-sends the password.
    if (outcome === 'second_factor') res.redirect(303, `/interaction/${interaction.uid}`);
  }

  async function submitTotpCode(req: Request, res: Response) {
    const { interaction, pending } = await loadSecondFactor(req, res, 'code');
    const parsed = CodeForm.safeParse(req.body ?? {});
    if (!parsed.success) return renderSecondFactor(req, res, interaction, pending, 400, { error: formError(parsed.error) });
    const outcome = await steps.submitTotpCode(req, res, interaction, pending, parsed.data.code, originOf(req));
    if (outcome === 'wrong') return renderSecondFactor(req, res, interaction, pending, 401, { error: WRONG_CODE });
    if (outcome === 'too_many_failures') return renderLogin(req, res, interaction, 401, { error: TOO_MANY_FAILURES });
  }

  async function submitRecoveryCode(req: Request, res: Response) {
    const { interaction, pending } = await loadSecondFactor(req, res, 'code');
    const parsed = RecoveryCodeForm.safeParse(req.body ?? {});
    if (!parsed.success) return renderSecondFactor(req, res, interaction, pending, 400, { recoveryError: formError(parsed.error) });
    const outcome = await steps.submitRecoveryCode(req, res, interaction, pending, parsed.data.recovery_code, originOf(req));
    if (outcome === 'wrong') return renderSecondFactor(req, res, interaction, pending, 401, { recoveryError: WRONG_RECOVERY_CODE });
    if (outcome === 'too_many_failures') return renderLogin(req, res, interaction, 401, { error: TOO_MANY_FAILURES });
  }

  async function confirmEnrolment(req: Request, res: Response) {
    const { interaction, pending } = await loadSecondFactor(req, res, 'enroll');
    const parsed = CodeForm.safeParse(req.body ?? {});
    if (!parsed.success) return renderSecondFactor(req, res, interaction, pending, 400, { error: formError(parsed.error) });
    const outcome = await steps.confirmEnrolment(req, res, interaction, pending, parsed.data.code, originOf(req));
    if (outcome === 'wrong') return renderSecondFactor(req, res, interaction, pending, 401, { error: WRONG_CODE });
    if (outcome === 'too_many_failures') return renderLogin(req, res, interaction, 401, { error: TOO_MANY_FAILURES });
    // Shown in this response only: only their hashes are kept.
    return renderSecondFactor(req, res, interaction, { ...pending, stage: 'enrolled' }, 200, { recoveryCodes: outcome });
  }

  async function continueAfterEnrolment(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'login');
    checkFormToken(req, interaction);
    await steps.finishAfterEnrolment(req, res, expectSecondFactor(interaction, 'enrolled'), originOf(req));
  }

  /** A posted passkey request: its interaction at the login prompt, its form token, and the second step owed if the password was given. */
  async function loadPasskeyStep(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'login');
    checkFormToken(req, interaction);
    const pending = steps.pendingSecondFactor(interaction);
    if (pending && pending.stage !== 'code') throw new AppError(400, 'invalid_request', { key: 'error.stepNotExpected' });
    return { interaction, pending };
  }

  /** The second step's passkey options when a password step was passed, else a passwordless sign-in's (JSON for the page's script). */
  async function passkeyOptions(req: Request, res: Response) {
    const { interaction, pending } = await loadPasskeyStep(req, res);
    res.json(await steps.passkeyOptions(interaction, pending));
  }

  async function submitPasskey(req: Request, res: Response) {
    const { interaction, pending } = await loadPasskeyStep(req, res);
    const { response } = PasskeyForm.parse(req.body ?? {});
    const outcome = await steps.submitPasskey(req, res, interaction, pending, response, originOf(req));
    if (outcome === 'too_many_failures') return renderLogin(req, res, interaction, 401, { error: TOO_MANY_FAILURES });
    // A passwordless sign-in whose address REQUIRE_VERIFIED_EMAIL still wants verified.
    if (outcome === 'second_factor') return res.redirect(303, `/interaction/${interaction.uid}`);
    if (outcome !== 'wrong') return;
    if (pending) return renderSecondFactor(req, res, interaction, { ...pending, failures: pending.failures + 1 }, 401, { error: PASSKEY_REFUSED });
    return renderLogin(req, res, interaction, 401, { error: PASSKEY_REFUSED });
  }

  async function confirmConsent(req: Request, res: Response) {
    const interaction = await load(req, res);
    expectPrompt(interaction, 'consent');
    checkFormToken(req, interaction);
    await steps.confirmConsent(req, res, interaction, originOf(req));
  }

  /** REQUIRE_VERIFIED_EMAIL: the link again (limited per account and address, like reset links). */
  async function resendVerification(req: Request, res: Response) {
    const { interaction, pending } = await loadSecondFactor(req, res, 'verify_email');
    const outcome = await steps.resendVerification(pending, originOf(req));
    if (outcome === 'too_many') return renderSecondFactor(req, res, interaction, pending, 429, { error: { key: 'reset.error.tooMany', fields: [] } });
    return renderSecondFactor(req, res, interaction, pending, 200, { sent: true });
  }

  async function continueAfterVerification(req: Request, res: Response) {
    const { interaction, pending } = await loadSecondFactor(req, res, 'verify_email');
    const outcome = await steps.continueAfterVerification(req, res, interaction, pending, originOf(req));
    if (outcome === 'unverified') return renderSecondFactor(req, res, interaction, pending, 400, { error: { key: 'verify.required.notYet', fields: [] } });
    if (outcome === 'second_factor') res.redirect(303, `/interaction/${interaction.uid}`);
  }

  async function abortInteraction(req: Request, res: Response) {
    const interaction = await load(req, res);
    checkFormToken(req, interaction);
    await steps.abortInteraction(req, res);
  }

  return router;
}
