// The engine's self-submitting form (response_mode=form_post, and a logout request without a
// session) is a page of plain English with no language. We render the same form through our
// template: the same action and hidden fields, the engine's script verbatim (its hash is
// already in the page's CSP), our words in the page's language, a button without JavaScript.
import type { EngineHook } from '../core/engine-types.js';
import { z } from 'zod';
import { enginePageOf, type RenderPage } from './page-renderer.js';

/** How the engine's page begins (lib/response_modes/form_post.js); tests pin it. */
const ENGINE_FORM_POST = /^<!DOCTYPE html>\s*<html>\s*<head>[\s\S]*?<title>Submitting Callback<\/title>/;

const EngineFormPost = z.object({
  action: z.string().min(1),
  hidden: z.array(z.tuple([z.string().regex(/^[\w-]+$/), z.string()])),
  script: z.string().min(1),
});

const decodeEntities = (text: string) =>
  text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function parseEngineFormPost(html: string) {
  const action = /<form method="post" action="([^"]*)">/.exec(html)?.[1];
  const hidden = [...html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"\/>/g)].map(([, name = '', value = '']) => [name, decodeEntities(value)]);
  return EngineFormPost.safeParse({ action: action === undefined ? undefined : decodeEntities(action), hidden, script: /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] });
}

/** Post-processing of the engine's answer (installed by oidc/hooks.ts). */
export function renderFormPostPages(renderPage: RenderPage): EngineHook {
  return {
    after(ctx) {
      if (typeof ctx.body !== 'string' || !ENGINE_FORM_POST.test(ctx.body)) return;
      const form = parseEngineFormPost(ctx.body);
      // Anything unexpected: leave the engine's page as it is rather than break the flow.
      if (!form.success) return;
      return renderPage('form-post', { ...enginePageOf(ctx), ...form.data }).then((page) => {
        ctx.body = page;
      });
    },
  };
}
