// The language switcher at the foot of every page: /language/<lang>?return=<path> remembers the
// choice in a cookie (a year) and goes back to the page. An app's ui_locales still wins over it.
// The way back is a path on this server only (never another site). The links are offered on
// pages reached by GET whose address carries no token (pages.ts), so no link secret ever
// travels in a `return` parameter.
import { Router } from 'express';
import { z } from 'zod';
import { LANGUAGE_COOKIE, type PageRequest } from '../oidc/page-renderer.js';
import { SUPPORTED_LANGUAGES } from './languages.js';

const ONE_YEAR_MS = 365 * 86_400_000;

const Switch = z.object({
  lang: z.enum(SUPPORTED_LANGUAGES),
  return: z
    .string()
    .max(2048)
    .regex(/^\/(?![/\\])[^\s\\]*$/)
    .optional()
    .catch(undefined),
});

/**
 * Where each language's link leads, or none when this page cannot be returned to safely: only
 * a page answering a GET whose address carries no token. The page's caller names the request
 * (RenderPage's `request`); no AsyncLocalStorage of our own carries it, since on Node 20 every
 * one enabled is copied into every promise the process makes afterwards.
 */
export function languageLinks(request: PageRequest | undefined): { lang: string; href: string }[] {
  const here = request?.originalUrl ?? request?.url;
  if (request?.method !== 'GET' || !here || /[?&](token|code|state)=/i.test(here) || here.startsWith('/language/')) return [];
  return SUPPORTED_LANGUAGES.map((lang) => ({ lang, href: `/language/${lang}?return=${encodeURIComponent(here)}` }));
}

export function createLanguageSwitchRouter({ secure }: { secure: boolean }): Router {
  const router = Router();
  router.get('/language/:lang', function switchLanguage(req, res) {
    const parsed = Switch.safeParse({ lang: req.params.lang, return: req.query.return });
    if (!parsed.success) {
      res.status(400).type('text').send('Unknown language.');
      return;
    }
    res.cookie(LANGUAGE_COOKIE, parsed.data.lang, { maxAge: ONE_YEAR_MS, httpOnly: true, sameSite: 'lax', secure, path: '/' });
    res.redirect(303, parsed.data.return ?? '/account');
  });
  return router;
}
