// Development only: where the demo client's sign-in lands, showing what an app receives.
import { Router } from 'express';
import { z } from 'zod';
import type { Demo } from '../seed/demo.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { DEMO_CALLBACK_PATH } from '../seed/demo.js';
import { chooseLanguage } from './languages.js';

const CallbackQuery = z.object({
  code: z.string().max(512).optional(),
  state: z.string().max(512).optional(),
  iss: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
});

export function createDemoRouter(demo: Demo, issuer: string, renderPage: RenderPage): Router {
  const router = Router();
  router.get(DEMO_CALLBACK_PATH, async function showDemoCallback(req, res) {
    const query = CallbackQuery.parse(req.query);
    const exchange = query.code
      ? `curl -s -u '${demo.clientId}:${demo.clientSecret}' -d grant_type=authorization_code -d code='${query.code}' --data-urlencode 'redirect_uri=${demo.redirectUri}' ${issuer}/token`
      : undefined;
    res.set('Cache-Control', 'no-store').type('html').send(await renderPage('demo-callback', { ...query, lang: chooseLanguage(req), exchange, authorizeUrl: demo.authorizeUrl }));
  });
  return router;
}
