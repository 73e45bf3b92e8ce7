// The message catalogues and t(): every string a page shows comes from here. A missing key
// in a catalogue fails tsc (each satisfies `Messages`); an unknown key fails the render.
import type { Language } from '../../config/index.js';
import { en, type MessageKey, type Messages } from './en.js';
import { ko } from './ko.js';

export type { MessageKey, Messages } from './en.js';

export const CATALOGUES: Readonly<Record<Language, Messages>> = { en, ko };

export type MessageParams = Readonly<Record<string, string | number>>;

/** A message to show, chosen now and worded later, in the page's language. */
export interface PageMessage {
  readonly key: MessageKey;
  readonly params?: MessageParams;
}

export const isMessageKey = (key: unknown): key is MessageKey => typeof key === 'string' && Object.hasOwn(en, key);

/** The message in `language`, `{name}` placeholders replaced (left as they are when not given). */
export function translate(language: Language, key: MessageKey, params: MessageParams = {}): string {
  const text = CATALOGUES[language][key];
  if (text === undefined) throw new Error(`unknown message key "${String(key)}"`);
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
}

export interface Translator {
  /** The message as plain text (templates escape it with <%= %>). */
  (key: string, params?: MessageParams): string;
  /**
   * The message as HTML, for <%- %>: the text and every parameter escaped, each parameter
   * wrapped in <strong> (names of apps and products inside a sentence).
   */
  strong(key: string, params?: MessageParams): string;
  /** Whether the catalogue has the key (for scopes and claims we may not know). */
  has(key: string): boolean;
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function createTranslator(language: Language): Translator {
  const known = (key: string): MessageKey => {
    if (!isMessageKey(key)) throw new Error(`unknown message key "${key}"`);
    return key;
  };
  const t = ((key: string, params?: MessageParams) => translate(language, known(key), params)) as Translator;
  t.strong = (key, params = {}) =>
    escapeHtml(CATALOGUES[language][known(key)]).replace(/\{(\w+)\}/g, (whole, name: string) =>
      Object.hasOwn(params, name) ? `<strong>${escapeHtml(String(params[name]))}</strong>` : whole,
    );
  t.has = isMessageKey;
  return t;
}

/** A scope in plain words: ours from the catalogue, any other by its name. */
export function describeScope(t: Translator, scope: string): string {
  return t.has(`scope.${scope}`) ? t(`scope.${scope}`) : t('scope.other', { scope });
}

/** A request to see a claim, in plain words: "See your email address". */
export function describeClaim(t: Translator, claim: string): string {
  return t.has(`claim.${claim}`) ? t('consent.claim', { claim: t(`claim.${claim}`) }) : t('consent.claimOther', { claim });
}
