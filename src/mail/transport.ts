// Sending one mail: over SMTP when SMTP_URL is set, otherwise (development only; loadConfig
// refuses production without it when a feature needs mail) written to MAIL_DIR as an .eml
// file, with its links printed, so every flow works right after `npm start`.
//
// smtp:// upgrades with STARTTLS and requires it (SMTP_ALLOW_PLAINTEXT=true lets a mail catcher
// or a local relay without TLS through); smtps:// is TLS from the start. Certificates are always
// verified. The password stays inside nodemailer: its own logging is off, and SMTP_URL is only
// ever shown with the password masked (config/effective.ts, core/logger.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/index.js';
import type { MailMessage } from './schema.js';

export interface SentMail {
  /** What the server answered (e.g. "250 2.0.0 Ok: queued as …"), or where the file was written. */
  response: string;
  messageId: string;
}

export interface MailTransport {
  /** Where mails go, without credentials: smtp://host:port, or the folder. */
  readonly via: string;
  send(message: MailMessage): Promise<SentMail>;
  close(): void;
}

/** A refusal the same mail would get again (an SMTP 5xx answer): not retried. */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

/**
 * nodemailer is loaded and its transporter made with the first mail, not at start-up (most
 * instances send none for a while). `current()` is the transporter once made.
 */
function lazyTransporter(make: (mailer: typeof Nodemailer) => Transporter): { get(): Promise<Transporter>; current(): Transporter | undefined } {
  let made: Transporter | undefined;
  let making: Promise<Transporter> | undefined;
  return {
    get: () => (making ??= import('nodemailer').then((mailer) => (made = make(mailer)))),
    current: () => made,
  };
}

export type MailSettings = Pick<Config['mail'], 'smtpUrl' | 'from' | 'timeout' | 'allowPlaintext' | 'dir'>;

export function createMailTransport(mail: MailSettings, { print = (line: string) => console.log(line), issuer }: { print?: (line: string) => void; issuer: string }): MailTransport {
  return mail.smtpUrl ? smtpTransport(mail, mail.smtpUrl) : fileTransport(mail, issuer, print);
}

function smtpTransport(mail: MailSettings, smtpUrl: string): MailTransport {
  const url = new URL(smtpUrl);
  const secure = url.protocol === 'smtps:';
  const port = url.port ? Number(url.port) : secure ? 465 : 587;
  const timeoutMs = mail.timeout * 1000;
  const options = {
    host: url.hostname,
    port,
    secure,
    requireTLS: !secure && !mail.allowPlaintext,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    tls: { rejectUnauthorized: true, servername: url.hostname },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  };
  const transporter = lazyTransporter((mailer) => mailer.createTransport(options));
  return {
    via: `${url.protocol}//${url.host}`,
    async send(message) {
      const smtp = await transporter.get();
      try {
        const info = await smtp.sendMail({ from: mail.from, to: message.to, subject: message.subject, text: message.text, html: message.html });
        return { response: String(info.response), messageId: String(info.messageId) };
      } catch (error) {
        const code = (error as { responseCode?: unknown }).responseCode;
        const reason = describeSmtpError(error);
        if (typeof code === 'number' && code >= 500) throw new PermanentDeliveryError(reason);
        throw new Error(reason);
      }
    },
    close: () => transporter.current()?.close(),
  };
}

/** One line: the SMTP answer when there was one, else the connection error's code and message (never credentials). */
function describeSmtpError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, response } = error as { code?: unknown; response?: unknown };
  return [typeof code === 'string' ? code : undefined, typeof response === 'string' ? response : error.message].filter(Boolean).join(': ');
}

function fileTransport(mail: MailSettings, issuer: string, print: (line: string) => void): MailTransport {
  const transporter = lazyTransporter((mailer) => mailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }));
  return {
    via: mail.dir,
    async send(message) {
      const info = await (await transporter.get()).sendMail({ from: mail.from, to: message.to, subject: message.subject, text: message.text, html: message.html });
      await mkdir(mail.dir, { recursive: true, mode: 0o700 });
      const file = join(mail.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${String(info.messageId).replace(/[^\w.-]/g, '')}.eml`);
      await writeFile(file, info.message as Buffer, { mode: 0o600 });
      // Development only, on stdout, not in the structured log (which never shows a link's token).
      const links = message.text.match(/https?:\/\/\S+/g)?.filter((link) => link.startsWith(issuer)) ?? [];
      print([`Mail to ${message.to}: "${message.subject}", written to ${file}`, ...links.map((link) => `  ${link}`)].join('\n'));
      return { response: `written to ${file}`, messageId: String(info.messageId) };
    },
    close: () => {},
  };
}
