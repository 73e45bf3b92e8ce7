// The console's own short session, on top of the engine's sign-in session. A console session
// starts only from a fresh sign-in as the console's client (index.ts) and lives in a cookie of
// its own (path /console, HttpOnly, SameSite=Strict): a MAC'd record of which engine session
// and account it belongs to, when it started and when it was last used. Nothing is stored
// server-side, and every instance sharing SECRETS reads it. It ends after CONSOLE_SESSION_TTL
// unused or CONSOLE_SESSION_ABSOLUTE_TTL after it started, and with the engine session it is
// bound to (signing out anywhere, an admin ending it, disabling the account).
import { createHmac } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { formTokenKeys } from '../../core/secrets.js';
import { readCookie } from '../cookies.js';
import { madeWithAnyKey } from '../csrf.js';

export const CONSOLE_COOKIE = 'gatehouse.console';
export const CONSOLE_PATH = '/console';

/** What the cookie says: the engine session's uid, its account, and when (epoch ms) it started and was last used. */
const ConsoleSessionRecord = z.object({ sid: z.string().min(1).max(128), acc: z.string().min(1).max(256), start: z.number().int(), seen: z.number().int() });
export type ConsoleSessionRecord = z.infer<typeof ConsoleSessionRecord>;

export interface ConsoleSessionSettings {
  secrets: readonly string[];
  /** Seconds unused after which it ends. */
  idleTtl: number;
  /** Seconds after its start after which it ends. */
  absoluteTtl: number;
  secure: boolean;
  now: () => Date;
}

export interface ConsoleSessions {
  /** The request's console session when its cookie is genuine and neither idle nor too old; undefined otherwise. */
  read(req: Request): ConsoleSessionRecord | undefined;
  /** Sets the cookie: a new session (`start` omitted) or the same one used now. */
  write(res: Response, session: { sid: string; acc: string; start?: number }): void;
  clear(res: Response): void;
}

export function createConsoleSessions({ secrets, idleTtl, absoluteTtl, secure, now }: ConsoleSessionSettings): ConsoleSessions {
  const keys = formTokenKeys(secrets);
  const mac = (key: Buffer, payload: string) => createHmac('sha256', key).update(`console-session/v1.${payload}`).digest('base64url');
  const cookieOptions = { httpOnly: true, sameSite: 'strict' as const, secure, path: CONSOLE_PATH };

  return {
    read(req) {
      const [payload = '', tag = ''] = (readCookie(req, CONSOLE_COOKIE) ?? '').split('.');
      if (!payload || !tag || payload.length > 1024 || !madeWithAnyKey(keys, tag, (key) => mac(key, payload))) return undefined;
      let decoded: unknown;
      try {
        decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        return undefined;
      }
      const parsed = ConsoleSessionRecord.safeParse(decoded);
      if (!parsed.success) return undefined;
      const at = now().getTime();
      const { start, seen } = parsed.data;
      if (at - seen > idleTtl * 1000 || at - start > absoluteTtl * 1000 || seen > at + 60_000) return undefined;
      return parsed.data;
    },
    write(res, { sid, acc, start }) {
      const at = now().getTime();
      const payload = Buffer.from(JSON.stringify({ sid, acc, start: start ?? at, seen: at })).toString('base64url');
      // The browser forgets it at the absolute end; the idle end is checked on reading.
      const left = (start ?? at) + absoluteTtl * 1000 - at;
      res.cookie(CONSOLE_COOKIE, `${payload}.${mac(keys[0] as Buffer, payload)}`, { ...cookieOptions, maxAge: Math.max(left, 0) });
    },
    clear(res) {
      res.clearCookie(CONSOLE_COOKIE, cookieOptions);
    },
  };
}
