// How the engine's configuration reaches our pages: views live with the HTTP layer, which
// hands this function in at the composition root.
import type { KoaContextWithOIDC } from 'oidc-provider';

/** What the page's language is chosen from when the caller has not chosen it (`lang`). */
export interface LanguageHints {
  /** The request's ui_locales parameter, as given. */
  uiLocales?: unknown;
  /** The browser's Accept-Language, best first. */
  accepted?: readonly string[];
}

/** The cookie the language switcher sets (http/language-switch.ts): after ui_locales, before Accept-Language. */
export const LANGUAGE_COOKIE = 'gatehouse.lang';

/**
 * The request a page answers (Express's or the engine's, the same node:http object): the
 * language switcher links back to it when it is a GET. `originalUrl` is Express's, which its
 * routers leave whole while they strip their mount path from `url`.
 */
export interface PageRequest {
  readonly method?: string;
  readonly url?: string;
  readonly originalUrl?: string;
}

export type RenderPage = (view: string, locals: Record<string, unknown> & { lang?: string; languageHints?: LanguageHints; request?: PageRequest }) => Promise<string>;

/**
 * For pages the engine renders: the request, and what the language is chosen from: its own
 * parsed ui_locales, else the query's, then the chosen language, then Accept-Language.
 */
export function enginePageOf(ctx: KoaContextWithOIDC): { languageHints: LanguageHints; request: PageRequest } {
  const params = ctx.oidc?.params as { ui_locales?: unknown } | undefined;
  const chosen = ctx.cookies.get(LANGUAGE_COOKIE, { signed: false });
  return { languageHints: { uiLocales: params?.ui_locales ?? ctx.query?.ui_locales, accepted: [...(chosen ? [chosen] : []), ...ctx.acceptsLanguages()] }, request: ctx.req };
}
