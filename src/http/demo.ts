// Development only: where the demo client's sign-in lands, showing what an app receives and a
// curl command that exchanges the code. The command is meant to be pasted into a shell, so every
// value in it is single-quoted, and a `code` outside the engine's alphabet gets no command at
// all. The demo client's secret is in it only for a browser on this machine (it is also printed
// in the console at start-up); anyone else sees a placeholder.
import { Router, type Request } from 'express';
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

/** The engine's authorization codes are base64url. */
const ENGINE_CODE = /^[\w-]{1,512}$/;

/** Shown in the command instead of the secret to browsers on other machines. */
export const DEMO_SECRET_PLACEHOLDER = '<client secret, printed in the console>';

/** A POSIX shell word that stands for `value` exactly: single quotes, each ' written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Whether the request comes from this machine, by the address Express computes (TRUST_PROXY applies). */
export function isLoopback(ip: string | undefined): boolean {
  if (!ip) return false;
  return ip === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(ip);
}

export function createDemoRouter(demo: Demo, issuer: string, renderPage: RenderPage): Router {
  const router = Router();
  router.get(DEMO_CALLBACK_PATH, async function showDemoCallback(req: Request, res) {
    const query = CallbackQuery.parse(req.query);
    const badCode = query.code !== undefined && !ENGINE_CODE.test(query.code);
    const local = isLoopback(req.ip);
    const secret = local ? demo.clientSecret : DEMO_SECRET_PLACEHOLDER;
    const exchange =
      query.code && !badCode
        ? `curl -s -u ${shellQuote(`${demo.clientId}:${secret}`)} -d grant_type=authorization_code -d code=${shellQuote(query.code)} --data-urlencode ${shellQuote(`redirect_uri=${demo.redirectUri}`)} ${shellQuote(`${issuer}/token`)}`
        : undefined;
    res
      .status(badCode ? 400 : 200)
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(await renderPage('demo-callback', { ...query, request: req, lang: chooseLanguage(req), exchange, badCode, secretHidden: !local, authorizeUrl: demo.authorizeUrl }));
  });
  return router;
}
