// Which language a page is rendered in: the first of the request's `ui_locales` (OpenID
// Connect Core 3.1.2.1) that we have, then the browser's Accept-Language, then English.
import type { Request } from 'express';

export const SUPPORTED_LANGUAGES = ['en'] as const;
export type Language = (typeof SUPPORTED_LANGUAGES)[number];

const primary = (tag: string) => tag.trim().toLowerCase().split('-')[0] ?? '';
const supported = (tag: string): Language | undefined => SUPPORTED_LANGUAGES.find((language) => language === primary(tag));

export function chooseLanguage(req: Request, uiLocales?: string): Language {
  for (const tag of (uiLocales ?? '').split(' ')) {
    const language = supported(tag);
    if (language) return language;
  }
  for (const tag of req.acceptsLanguages()) {
    const language = supported(tag);
    if (language) return language;
  }
  return 'en';
}
