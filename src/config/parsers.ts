// The value parsers the settings table is written with. Each takes the text a person wrote (an
// environment variable, or a file value turned into text) and gives the typed value, or one
// message saying what is expected, with an example.
import { availableParallelism } from 'node:os';
import { z } from 'zod';

const DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** "3600", "90s", "15m", "12h", "14d" → seconds. */
export function duration(example: string, { zeroMeansOff = false } = {}) {
  return z.string().trim().transform((value, ctx) => {
    const match = /^(\d+)\s*([smhd]?)$/.exec(value);
    const seconds = match ? Number(match[1]) * DURATION_UNITS[(match[2] || 's') as keyof typeof DURATION_UNITS] : NaN;
    if (!Number.isSafeInteger(seconds) || seconds < 0 || (seconds === 0 && !zeroMeansOff)) {
      const off = zeroMeansOff ? '0 (off) or ' : '';
      ctx.addIssue({ code: 'custom', message: `must be ${off}a positive duration in seconds or with a unit s/m/h/d (e.g. ${example})` });
      return z.NEVER;
    }
    return seconds;
  });
}

/** true/1/yes/on or false/0/no/off. */
function yesOrNo(value: string, example: string, ctx: z.RefinementCtx): boolean {
  const word = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(word)) return true;
  if (['false', '0', 'no', 'off'].includes(word)) return false;
  ctx.addIssue({ code: 'custom', message: `must be true or false (e.g. ${example})` });
  return z.NEVER;
}

export function boolean(example: string) {
  return z.string().transform((value, ctx) => yesOrNo(value, example, ctx));
}

/** A boolean whose default depends on other settings: unset or empty is undefined, worked out later. */
export function booleanOrUnset(example: string) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => (value?.trim() ? yesOrNo(value, example, ctx) : undefined));
}

export function integer(min: number, max: number, example: string) {
  return z.string().trim().transform((value, ctx) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max} (e.g. ${example})` });
      return z.NEVER;
    }
    return n;
  });
}

/** Text that may be left out; empty counts as left out. */
export const optionalText = z.string().trim().optional().transform((value) => value || undefined);

/** Text that must be there; `example` shows what. */
export const text = (example: string) => z.string().trim().min(1, `must not be empty (e.g. ${example})`);

/** More workers than this on one machine is a configuration mistake, not a plan. */
const MAX_WORKERS = 64;

/** WEB_CONCURRENCY: a worker count, or auto for one per CPU. */
export const workerCount = z.string().trim().toLowerCase().transform((value, ctx) => {
  if (value === 'auto') return Math.min(availableParallelism(), MAX_WORKERS);
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_WORKERS) {
    ctx.addIssue({ code: 'custom', message: `must be auto (one per CPU) or a whole number from 1 to ${MAX_WORKERS} (e.g. 4)` });
    return z.NEVER;
  }
  return n;
});

/** Express's `trust proxy`: false, true, a hop count, or proxy addresses/subnets. */
export const trustProxy = z.string().trim().transform((value, ctx): boolean | number | string => {
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  const parts = value.split(',').map((p) => p.trim());
  const looksLikeAddress = (p: string) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(p) || ['loopback', 'linklocal', 'uniquelocal'].includes(p);
  if (parts.every((p) => p && looksLikeAddress(p))) return parts.join(',');
  ctx.addIssue({ code: 'custom', message: 'must be true, false, a hop count or proxy addresses (e.g. 1 or 10.0.0.0/8)' });
  return z.NEVER;
});

/** Comma-separated millisecond delays, at most ten; empty: none. */
export const millisecondList = z
  .string()
  .trim()
  .regex(/^(\d{1,6}(,\d{1,6}){0,9})?$/, 'must be up to 10 comma-separated millisecond delays, or empty for no retries (e.g. 1000,3000)')
  .transform((value) => value.split(',').filter(Boolean).map(Number));

export const SECRETS_EXAMPLE = 'the output of `openssl rand -base64 32`';

/** Comma-separated secrets of 32+ characters, newest first; unset or empty: none. Never echoes a secret. */
export const secretList = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const secrets = value?.trim() ? value.split(',').map((s) => s.trim()) : [];
    secrets.forEach((secret, i) => {
      if (secret.length < 32) ctx.addIssue({ code: 'custom', message: `secret #${i + 1} is ${secret.length} characters; each needs at least 32 (e.g. ${SECRETS_EXAMPLE})` });
    });
    return secrets;
  });

export type DatabaseFlavour = 'sqlite' | 'postgresql';

export const DATABASE_URL_EXAMPLE = 'postgresql://gatehouse:secret@127.0.0.1:5432/gatehouse';

/** file:… for SQLite, postgresql://… (or postgres://…) for PostgreSQL. */
export const databaseUrl = z
  .string()
  .trim()
  .refine((url) => flavourOf(url) !== undefined, `must start with file: (SQLite) or postgresql:// (e.g. file:./data/gatehouse.db or ${DATABASE_URL_EXAMPLE})`);

export function flavourOf(url: string): DatabaseFlavour | undefined {
  if (/^file:.+/.test(url)) return 'sqlite';
  if (/^postgres(ql)?:\/\/.+/.test(url)) return 'postgresql';
  return undefined;
}

/** A link for people to follow: http(s) or mailto:. */
export const supportUrl = optionalText.refine(
  (url) => url === undefined || (URL.canParse(url) && ['https:', 'http:', 'mailto:'].includes(new URL(url).protocol)),
  'must be an http(s) or mailto: URL (e.g. https://help.example.com or mailto:help@example.com)',
);

/** smtp://[user:pass@]host[:port] (STARTTLS) or smtps://… (TLS); unset or empty: none. Never echoes a password. */
export const smtpUrl = optionalText.refine(
  (url) => url === undefined || (URL.canParse(url) && ['smtp:', 'smtps:'].includes(new URL(url).protocol) && new URL(url).hostname !== ''),
  'must be smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (e.g. smtps://id%40acme.example:secret@smtp.acme.example:465)',
);

/** Comma-separated email domains, lower-cased; unset or empty: none (no restriction). */
export const domainList = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const domains = (value ?? '').split(',').map((d) => d.trim().toLowerCase()).filter(Boolean);
    if (domains.every((d) => /^(?=.{1,253}$)([a-z0-9](-*[a-z0-9])*)(\.[a-z0-9](-*[a-z0-9])*)+$/.test(d))) return domains.length ? domains : undefined;
    ctx.addIssue({ code: 'custom', message: 'must be comma-separated email domains (e.g. example.com,example.org)' });
    return z.NEVER;
  });
