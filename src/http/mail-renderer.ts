// Renders the mails in views/mail/ (templates in BRAND_TEMPLATES_DIR/mail/ replace them): for
// each, <name>.html.ejs and <name>.text.ejs, and the subject `mail.<name>.subject` from the
// catalogue. The HTML part escapes every value (<%= %>) and loads nothing but the configured
// logo; the text part is plain text (no HTML escaping, line breaks removed from values). Every
// link is built from ISSUER by the caller; the logo, when it is a path, becomes ISSUER + path.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ejs from 'ejs';
import type { Config } from '../config/index.js';
import type { ComposeMail } from '../mail/compose.js';
import type { Outbox } from '../mail/outbox.js';
import type { AccountMail } from '../people/email-verification.js';
import { isLanguage, preferredLanguage } from './languages.js';
import { createTranslator } from './messages/index.js';
import { BRAND_ASSETS, VIEWS_DIR } from './pages.js';

export type MailRendererSettings = Pick<Config, 'defaultLanguage' | 'branding' | 'issuer'>;

/** One line of plain text: no line breaks (a name cannot start a new paragraph or fake a link line). */
const plain = (value: unknown) => String(value ?? '').replace(/[\r\n\u2028\u2029]+/g, ' ');

export function createMailRenderer({ defaultLanguage, branding, issuer }: MailRendererSettings): ComposeMail {
  const templates = new Map<string, ejs.TemplateFunction>();
  const fileOf = (name: string) => {
    const override = branding.templatesDir ? join(branding.templatesDir, 'mail', name) : undefined;
    return override && existsSync(override) ? override : join(VIEWS_DIR, 'mail', name);
  };
  const templateOf = (name: string, text: boolean) => {
    const key = `${text ? 'text' : 'html'}:${name}`;
    let template = templates.get(key);
    if (!template) {
      const file = fileOf(name);
      template = ejs.compile(readFileSync(file, 'utf8'), { filename: file, root: VIEWS_DIR, async: false, ...(text ? { escape: plain } : {}) });
      templates.set(key, template);
    }
    return template;
  };
  const logo = branding.logoFile ? `${issuer}${BRAND_ASSETS.logo}` : branding.logoUrl?.startsWith('/') ? `${issuer}${branding.logoUrl}` : branding.logoUrl;
  const brand = { productName: branding.productName, color: branding.primaryColor, logoUrl: logo, supportUrl: branding.supportUrl, issuer };

  return async ({ template, to, language, locals }) => {
    const lang = isLanguage(language) ? language : (preferredLanguage(language ?? undefined) ?? defaultLanguage);
    const t = createTranslator(lang);
    const data = { ...locals, brand, lang, t };
    return {
      to,
      subject: plain(t(`mail.${template}.subject`, { product: branding.productName })),
      html: templateOf(`${template}.html.ejs`, false)(data),
      text: templateOf(`${template}.text.ejs`, true)(data),
    };
  };
}

/** What sending account mails (verification links, notices to the old address) needs: the server's and the CLI's. */
export function accountMailOf(config: MailRendererSettings & Pick<Config, 'recovery'>, outbox: Outbox): AccountMail {
  return { outbox, composeMail: createMailRenderer(config), issuer: config.issuer, verificationTtlSeconds: config.recovery.verificationTtl, invitationTtlSeconds: config.recovery.invitationTtl };
}
