// Renders our EJS pages (views/) to HTML, in the page's language and with the deployment's
// branding. Output is escaped by default (<%= %>); the only raw insertions are our own
// partials, t.strong() (which escapes) and the engine's generated logout form. Templates in
// BRAND_TEMPLATES_DIR replace the built-in ones of the same name, includes too.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import ejs from 'ejs';
import type { Config } from '../config/index.js';
import { packagePath } from '../config/package-root.js';
import type { RenderPage } from '../oidc/page-renderer.js';
import { languageLinks } from './language-switch.js';
import { isLanguage, preferredLanguage, SUPPORTED_LANGUAGES } from './languages.js';
import { createTranslator, describeClaim, describeScope } from './messages/index.js';

export const VIEWS_DIR = packagePath('views');
export const ASSETS_DIR = packagePath('views', 'assets');

/** @simplewebauthn/browser's UMD build (the global SimpleWebAuthnBrowser), served at WEBAUTHN_SCRIPT_PATH for views/assets/passkeys.js. */
export const WEBAUTHN_SCRIPT_FILE = join(dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')), '..', 'dist', 'bundle', 'index.umd.min.js');
export const WEBAUTHN_SCRIPT_PATH = '/assets/webauthn/simplewebauthn-browser.js';

/** Where the branding router (branding.ts) serves the operator's files. */
export const BRAND_ASSETS = { stylesheet: '/assets/brand.css', customCss: '/assets/custom.css', logo: '/assets/brand-logo' } as const;

export type PageSettings = Pick<Config, 'defaultLanguage' | 'branding'> & { readonly recovery?: Pick<Config['recovery'], 'passwordReset'>; readonly signUp?: Pick<Config['signUp'], 'mode'> };

const DEFAULT_SETTINGS: PageSettings = {
  defaultLanguage: 'en',
  branding: { productName: 'Gatehouse', logoUrl: undefined, logoFile: undefined, primaryColor: '#1d4ed8', supportUrl: undefined, cssFile: undefined, templatesDir: undefined },
};

/** A template file: the override folder's when it has one, else the built-in. */
function viewResolver(overrideDir: string | undefined) {
  const within = (dir: string, name: string) => {
    const file = normalize(join(dir, extname(name) ? name : `${name}.ejs`));
    return file.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`) ? file : undefined;
  };
  return (name: string): string => {
    const relative = name.replace(/^\/+/, '');
    const override = overrideDir ? within(overrideDir, relative) : undefined;
    if (override && existsSync(override)) return override;
    const builtIn = within(VIEWS_DIR, relative);
    if (!builtIn) throw new Error(`template "${name}" is outside the views folder`);
    return builtIn;
  };
}

export function createPageRenderer({ defaultLanguage, branding, recovery, signUp }: PageSettings = DEFAULT_SETTINGS): RenderPage {
  const resolveView = viewResolver(branding.templatesDir);
  // Our own caches, not EJS's global one: a compiled template keeps the includer it was compiled
  // with, and two renderers (tests, or another override folder) must not share them. Partials are
  // compiled once too: EJS keeps an included template only in `ejs.cache`, so that is this
  // renderer's own cache while one of its templates renders (rendering is synchronous).
  const sources = new Map<string, string>();
  const templates = new Map<string, ejs.TemplateFunction>();
  const partials = new Map<string, ejs.TemplateFunction>();
  const partialCache = { get: (file: string) => partials.get(file), set: (file: string, fn: ejs.TemplateFunction) => void partials.set(file, fn), remove: (file: string) => void partials.delete(file), reset: () => partials.clear() };
  const sourceOf = (file: string) => sources.get(file) ?? sources.set(file, readFileSync(file, 'utf8')).get(file)!;
  // Templates name partials from the views folder (`include('/partials/top')`): EJS resolves such
  // a name against `root` without asking the file system, and this includer maps it to the
  // override or the built-in. (A relative name costs EJS an existence check per include.)
  const includer = (original: string) => {
    const filename = resolveView(original);
    return { filename, template: sourceOf(filename) };
  };
  const templateOf = (file: string) => {
    let template = templates.get(file);
    if (!template) {
      template = ejs.compile(sourceOf(file), { filename: file, root: VIEWS_DIR, includer: includer as unknown as ejs.IncluderCallback, async: false, cache: true });
      templates.set(file, template);
    }
    return template;
  };
  const render = (file: string, data: ejs.Data) => {
    const template = templateOf(file);
    const shared = ejs.cache;
    ejs.cache = partialCache;
    try {
      return template(data);
    } finally {
      ejs.cache = shared;
    }
  };
  const brand = {
    logoUrl: branding.logoFile ? BRAND_ASSETS.logo : branding.logoUrl,
    supportUrl: branding.supportUrl,
    stylesheets: [BRAND_ASSETS.stylesheet, ...(branding.cssFile ? [BRAND_ASSETS.customCss] : [])],
  };
  return (view, { languageHints, request, ...locals }) => {
    const lang = isLanguage(locals.lang) ? locals.lang : (preferredLanguage(languageHints?.uiLocales, languageHints?.accepted) ?? defaultLanguage);
    const t = createTranslator(lang);
    const page = {
      productName: branding.productName,
      brand,
      languages: SUPPORTED_LANGUAGES,
      // The switcher at the foot of the page (views/partials/languages.ejs).
      languageLinks: languageLinks(request),
      // The sign-in page links to the forgotten-password pages (views/partials/login-recovery.ejs).
      passwordReset: recovery?.passwordReset ?? false,
      // SIGNUP=open: the sign-in page links to /signup (views/partials/login-recovery.ejs).
      signUpOpen: signUp?.mode === 'open',
      ...locals,
      lang,
      t,
      describeScope: (scope: string) => describeScope(t, scope),
      describeClaim: (claim: string) => describeClaim(t, claim),
    };
    return Promise.resolve().then(() => render(resolveView(view), page));
  };
}
