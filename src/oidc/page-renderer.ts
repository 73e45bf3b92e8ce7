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

export type RenderPage = (view: string, locals: Record<string, unknown> & { lang?: string; languageHints?: LanguageHints }) => Promise<string>;

/** For pages the engine renders: its own parsed ui_locales, else the query's, and Accept-Language. */
export function languageHintsOf(ctx: KoaContextWithOIDC): LanguageHints {
  const params = ctx.oidc?.params as { ui_locales?: unknown } | undefined;
  return { uiLocales: params?.ui_locales ?? ctx.query?.ui_locales, accepted: ctx.acceptsLanguages() };
}
