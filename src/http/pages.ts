// Renders our EJS pages (views/) to HTML. Output is escaped by default (<%= %>); the only raw
// insertions are our own partials and the engine's generated logout form.
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { RenderPage } from '../oidc/render.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));
export const ASSETS_DIR = fileURLToPath(new URL('../../views/assets', import.meta.url));

export interface PageDefaults {
  productName: string;
}

export function createPageRenderer(defaults: PageDefaults = { productName: 'Gatehouse' }): RenderPage {
  return (view, locals) =>
    ejs.renderFile(`${VIEWS_DIR}/${view}.ejs`, { ...defaults, lang: 'en', ...locals }, { async: false, cache: true, root: VIEWS_DIR });
}
