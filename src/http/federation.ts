// Signing in through an upstream identity provider (federation/): the sign-in page's buttons
// post to /interaction/:uid/federation/:idp, which sends the browser upstream; the upstream
// sends it back to /federation/:idp/callback (the redirect URI registered there), which hands
// a sign-in to its interaction (/interaction/:uid/federation/:idp/return, where the
// interaction's own cookie is sent) and finishes a link from the account page itself.
//
// Every refusal is a page in the person's language saying what happened and where to go back
// to; federation/sign-in.ts has already recorded it in the audit trail.
import express, { Router, type Request, type Response } from 'express';
import { errors } from 'oidc-provider';
import { z } from 'zod';
import { FederationRefused, type Federation, type Flow } from '../federation/sign-in.js';
import type { InteractionSteps } from '../oidc/interactions.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import type { AccountService } from '../people/self-service.js';
import { readCookie } from './cookies.js';
import type { FormTokens } from './csrf.js';
import { AppError, FEDERATION_STATUS } from './errors.js';
import { interactionGuards } from './interactions.js';
import { chooseLanguage } from './languages.js';
import type { MessageKey } from './messages/index.js';

/** Holds the sealed flow (state, nonce, PKCE verifier and what it is bound to) until the upstream sends the browser back. */
export const FLOW_COOKIE = 'gatehouse.federation';

const IdpParam = z.object({ idp: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/) });

const originOf = (req: Request) => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

export interface FederationRouterDeps {
  federation: Federation;
  steps: InteractionSteps;
  account?: AccountService;
  renderPage: RenderPage;
  formTokens: FormTokens;
  issuer: string;
}

export function createFederationRouter({ federation, steps, account, renderPage, formTokens, issuer }: FederationRouterDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const guards = interactionGuards(steps, formTokens);
  const secure = new URL(issuer).protocol === 'https:';

  router.post('/interaction/:uid/federation/:idp', form, startSignIn);
  router.get('/federation/:idp/callback', returnFromUpstream);
  router.get('/interaction/:uid/federation/:idp/return', finishSignIn);

  const idpOf = (req: Request) => {
    const parsed = IdpParam.safeParse(req.params);
    if (!parsed.success) throw new AppError(404, 'not_found', { key: 'federation.error.unknown_provider' });
    return parsed.data.idp;
  };

  /** A refusal as a page: what happened, and the way back (the sign-in page, or the account page). */
  async function refusalPage(req: Request, res: Response, error: unknown, back: string, uiLocales?: string) {
    if (!(error instanceof FederationRefused)) throw error;
    const key = `federation.error.${error.reason}` as MessageKey;
    res.status(FEDERATION_STATUS[error.reason]).set('Cache-Control', 'no-store').type('html').send(
      await renderPage('error', { request: req, lang: chooseLanguage(req, uiLocales), error: error.reason, message: { key, params: { provider: error.provider?.displayName ?? '' } }, back }),
    );
  }

  /** The flow sealed in this browser's cookie for this provider, removed as it is read. */
  function takeFlow(req: Request, res: Response, idp: string): Flow | null {
    const flow = federation.openFlow(readCookie(req, FLOW_COOKIE), idp);
    res.clearCookie(FLOW_COOKIE, { path: '/' });
    return flow;
  }

  async function startSignIn(req: Request, res: Response) {
    const interaction = await guards.load(req, res);
    guards.expectPrompt(interaction, 'login');
    guards.checkFormToken(req, interaction);
    try {
      const { url, cookie, maxAgeMs } = await federation.begin(idpOf(req), 'login', interaction.uid, originOf(req));
      res.cookie(FLOW_COOKIE, cookie, { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: maxAgeMs });
      res.redirect(303, url.href);
    } catch (error) {
      await refusalPage(req, res, error, `/interaction/${interaction.uid}`, interaction.params.ui_locales);
    }
  }

  /**
   * Where the upstream sends the browser back. A sign-in continues in its interaction, whose
   * cookie is sent only under /interaction/<uid>; a link is finished here for the signed-in session.
   */
  async function returnFromUpstream(req: Request, res: Response) {
    res.set('Cache-Control', 'no-store');
    const idp = idpOf(req);
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const flow = federation.openFlow(readCookie(req, FLOW_COOKIE), idp);
    if (flow?.purpose === 'login') return res.redirect(303, `/interaction/${encodeURIComponent(flow.binding)}/federation/${idp}/return?${query}`);
    res.clearCookie(FLOW_COOKIE, { path: '/' });
    try {
      const signedIn = flow && account ? await account.currentSession(req, res) : null;
      if (!flow || !signedIn || signedIn.sessionUid !== flow.binding) return await federation.refuseWithoutFlow(idp, originOf(req));
      await federation.completeLink(flow, query, signedIn.accountId, originOf(req));
      res.redirect(303, '/account?done=idp_linked');
    } catch (error) {
      await refusalPage(req, res, error, '/account');
    }
  }

  /**
   * The interaction is gone (expired while the person was upstream, or this browser never had it):
   * recorded, the flow cookie cleared, and the error handler's session-expired page shown.
   */
  async function loadOrRecordExpiry(req: Request, res: Response, idp: string) {
    try {
      return await guards.load(req, res);
    } catch (error) {
      if (error instanceof errors.SessionNotFound) await federation.recordExpiredInteraction(idp, takeFlow(req, res, idp), originOf(req));
      throw error;
    }
  }

  async function finishSignIn(req: Request, res: Response) {
    const idp = idpOf(req);
    const interaction = await loadOrRecordExpiry(req, res, idp);
    guards.expectPrompt(interaction, 'login');
    const flow = takeFlow(req, res, idp);
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    try {
      if (!flow || flow.purpose !== 'login' || flow.binding !== interaction.uid) return await federation.refuseWithoutFlow(idp, originOf(req));
      const signIn = await federation.completeSignIn(flow, query, originOf(req));
      if (signIn.kind === 'link_offered') {
        // The sign-in page, offering to link it with the password of the account that has its email.
        await steps.offerLink(req, res, signIn.link);
        return res.redirect(303, `/interaction/${interaction.uid}`);
      }
      const outcome = await steps.submitFederatedLogin(req, res, interaction, signIn);
      // The code or enrolment page, by GET.
      if (outcome === 'second_factor') res.redirect(303, `/interaction/${interaction.uid}`);
    } catch (error) {
      await refusalPage(req, res, error, `/interaction/${interaction.uid}`, interaction.params.ui_locales);
    }
  }

  return router;
}
