// The language switcher at the foot of every page: /language/<lang>?return=<path> remembers the
// choice in a cookie (a year) and goes back to the page. An app's ui_locales still wins over it.
// The way back is a path on this server only (never another site). The links are offered on
// pages reached by GET whose address carries no token (pages.ts), so no link secret ever
// travels in a `return` parameter.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import { Router } from 'express';
import { z } from 'zod';
import { LANGUAGE_COOKIE } from '../oidc/page-renderer.js';
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

const currentRequest = new AsyncLocalStorage<{ method: string; url: string }>();

/**
 * Serves `next` remembering which request a page is rendered for (pages.ts builds the switcher's
 * links from it), whether Express or the engine renders it (app.ts wraps both).
 */
export function rememberRequest(req: IncomingMessage, next: () => void): void {
  currentRequest.run({ method: req.method ?? 'GET', url: req.url ?? '/' }, next);
}

/** Where each language's link leads, or none when this page cannot be returned to safely. */
export function languageLinks(): { lang: string; href: string }[] {
  const here = currentRequest.getStore();
  if (!here || here.method !== 'GET' || /[?&](token|code|state)=/i.test(here.url) || here.url.startsWith('/language/')) return [];
  return SUPPORTED_LANGUAGES.map((lang) => ({ lang, href: `/language/${lang}?return=${encodeURIComponent(here.url)}` }));
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
