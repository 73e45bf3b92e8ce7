// What a mail is made from. The templates live in views/mail/ and are rendered by the pages'
// renderer (http/mail-renderer.ts), which server.ts hands to whoever queues mail: a subject from
// the message catalogue, an HTML and a plain-text part, in the person's language, with the
// branding. Mails are composed when they are queued, so the worker only sends.
import type { MailMessage } from './schema.js';

export const MAIL_TEMPLATES = ['password-reset', 'email-verification', 'email-changed', 'sign-up-existing', 'invitation'] as const;
export type MailTemplate = (typeof MAIL_TEMPLATES)[number];

export interface MailRequest {
  template: MailTemplate;
  to: string;
  /** The person's language (their `locale`, or the page's); the default language when unknown. */
  language?: string | null | undefined;
  /** What the template shows: names and other user input are escaped by the template. */
  locals: Record<string, unknown>;
}

export type ComposeMail = (request: MailRequest) => Promise<MailMessage>;
