// A real SMTP server (smtp-server) on 127.0.0.1 that keeps every message it accepts, and a small
// MIME reader for what Gatehouse sends: the subject, the plain-text and the HTML part, decoded.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { freePort } from './ports.js';

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** Headers of the whole message, lower-cased names. */
  headers: Record<string, string>;
  raw: string;
}

export interface TestSmtpServer {
  readonly port: number;
  /** SMTP_URL for Gatehouse (plaintext, so SMTP_ALLOW_PLAINTEXT=true goes with it). */
  readonly url: string;
  readonly received: ReceivedMail[];
  /** Resolves with the `n`-th message (from 1) once it has arrived. */
  waitFor(n?: number, timeoutMs?: number): Promise<ReceivedMail>;
  /** Starts listening (when started with `listening: false`). */
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** With `listening: false` the port is reserved but refuses connections until listen(). `answer` may refuse a message (e.g. 451). */
export async function startSmtpServer({ listening = true, user, password }: { listening?: boolean; user?: string; password?: string } = {}): Promise<TestSmtpServer> {
  const port = await freePort();
  const received: ReceivedMail[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: user ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !user,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) callback(null, { user });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({ ...readMime(raw), from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw });
        waiters.splice(0).forEach((wake) => wake());
        callback();
      });
    },
  });
  let isListening = false;
  const listen = () =>
    new Promise<void>((resolve) => {
      server.listen(port, '127.0.0.1', () => {
        isListening = true;
        resolve();
      });
    });
  if (listening) await listen();
  const auth = user ? `${encodeURIComponent(user)}:${encodeURIComponent(password ?? '')}@` : '';
  return {
    port,
    url: `smtp://${auth}127.0.0.1:${port}`,
    received,
    async waitFor(n = 1, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${received.length} of ${n} mails arrived within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return received[n - 1] as ReceivedMail;
    },
    listen,
    close: () => (isListening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve()),
  };
}

/** RFC 2047 encoded words (=?UTF-8?B?…?= and =?UTF-8?Q?…?=) decoded. */
function decodeWords(value: string): string {
  return value.replace(/\s*=\?([^?]+)\?([BbQq])\?([^?]*)\?=\s*/g, (_m, _charset: string, encoding: string, text: string) =>
    encoding.toUpperCase() === 'B' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

function decodeQuotedPrintable(text: string): string {
  const bytes = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

function splitHeaders(part: string): { headers: Record<string, string>; body: string } {
  const at = part.search(/\r?\n\r?\n/);
  const head = at === -1 ? part : part.slice(0, at);
  const body = at === -1 ? '' : part.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decodeBody(headers: Record<string, string>, body: string): string {
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}

/** The parts of a message as nodemailer builds them: text/plain and text/html, maybe inside multipart/alternative. */
export function readMime(raw: string): Omit<ReceivedMail, 'from' | 'to' | 'raw'> {
  const { headers, body } = splitHeaders(raw);
  const parts = { text: '', html: '' };
  const walk = (partHeaders: Record<string, string>, partBody: string) => {
    const type = partHeaders['content-type'] ?? 'text/plain';
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (/^multipart\//i.test(type) && boundary) {
      for (const section of partBody.split(`--${boundary}`).slice(1)) {
        if (section.startsWith('--')) break;
        const inner = splitHeaders(section.replace(/^\r?\n/, ''));
        walk(inner.headers, inner.body);
      }
    } else if (/^text\/html/i.test(type)) parts.html = decodeBody(partHeaders, partBody).replace(/\r?\n$/, '');
    else if (/^text\/plain/i.test(type)) parts.text = decodeBody(partHeaders, partBody).replace(/\r?\n$/, '');
  };
  walk(headers, body);
  return { subject: decodeWords(headers.subject ?? ''), headers, ...parts };
}

/** The first link in `text` that starts with `prefix`. */
export function linkIn(text: string, prefix: string): string {
  const link = text.match(/https?:\/\/[^\s"<>]+/g)?.find((candidate) => candidate.startsWith(prefix));
  if (!link) throw new Error(`no link starting with ${prefix} in:\n${text}`);
  return link.replace(/&amp;/g, '&');
}

/**
 * Without SMTP_URL each mail is an .eml file in MAIL_DIR (mail/transport.ts): delivers what is
 * queued, then returns the link starting with ISSUER + `path` in the newest file.
 */
export async function newestMailLink(server: { gatehouse: { outbox: { drain(): Promise<unknown> } }; config: { mail: { dir: string } }; issuer: string }, path: string): Promise<string> {
  await server.gatehouse.outbox.drain();
  const dir = server.config.mail.dir;
  const newest = readdirSync(dir).filter((name) => name.endsWith('.eml')).sort().at(-1) as string;
  return linkIn(readMime(readFileSync(join(dir, newest), 'utf8')).text, `${server.issuer}${path}`);
}
