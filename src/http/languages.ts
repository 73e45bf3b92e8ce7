// Which language a page is rendered in: the first of the request's `ui_locales` (OpenID
// Connect Core 3.1.2.1) that we have, then the language the person chose with the switcher
// (a cookie, language-switch.ts), then the browser's Accept-Language, then the configured
// DEFAULT_LANGUAGE (applied by the renderer, pages.ts, when this finds nothing).
import type { Request } from 'express';
import { SUPPORTED_LANGUAGES, type Language } from '../config/index.js';
import { LANGUAGE_COOKIE } from '../oidc/page-renderer.js';
import { readCookie } from './cookies.js';

export { SUPPORTED_LANGUAGES, type Language };

const primary = (tag: string) => tag.trim().toLowerCase().split('-')[0] ?? '';
const supported = (tag: string): Language | undefined => SUPPORTED_LANGUAGES.find((language) => language === primary(tag));

export const isLanguage = (value: unknown): value is Language => SUPPORTED_LANGUAGES.includes(value as Language);

/** From a space-separated ui_locales value and the accepted languages, best first. */
export function preferredLanguage(uiLocales: unknown, accepted: readonly string[] = []): Language | undefined {
  const asked = typeof uiLocales === 'string' ? uiLocales.slice(0, 256).split(' ') : [];
  for (const tag of [...asked, ...accepted]) {
    const language = supported(tag);
    if (language) return language;
  }
  return undefined;
}

/** The language this request asks for, or undefined to use DEFAULT_LANGUAGE. */
export function chooseLanguage(req: Request, uiLocales?: string): Language | undefined {
  const chosen = readCookie(req, LANGUAGE_COOKIE);
  return preferredLanguage(uiLocales, [...(chosen ? [chosen] : []), ...req.acceptsLanguages()]);
}
