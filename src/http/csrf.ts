// Cross-site request forgery tokens for the forms we render at /interaction/:uid (the engine's
// own forms carry its `xsrf`). A token is an HMAC, under a key derived from SECRETS, over the
// interaction it was rendered for: its uid (in the URL), its `cid` (a random value the engine
// keeps server-side and never shows) and the signed-in session's uid, if any. So it is good
// only for that interaction in the browser whose interaction cookie leads to it; nothing is
// stored, and every instance sharing SECRETS verifies it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { readCookie } from './cookies.js';
import type { Interaction } from '../oidc/interaction-state.js';
import { formTokenKeys } from '../core/secrets.js';

/** The form field that carries the token (views/login.ejs and consent.ejs spell it out too). */
export const FORM_TOKEN_FIELD = 'csrf_token';

export interface FormTokens {
  issue(interaction: Interaction): string;
  verify(interaction: Interaction, token: string): boolean;
}

export function createFormTokens(secrets: readonly string[]): FormTokens {
  const keys = formTokenKeys(secrets);
  const mac = (key: Buffer, interaction: Interaction) =>
    createHmac('sha256', key)
      .update(JSON.stringify(['v1', interaction.uid, interaction.cid, interaction.session?.uid ?? '']))
      .digest('base64url');

  return {
    issue: (interaction) => mac(keys[0] as Buffer, interaction),
    // Any secret still in SECRETS verifies, so a page rendered before a rotation still submits.
    verify: (interaction, token) => madeWithAnyKey(keys, token, (key) => mac(key, interaction)),
  };
}

/**
 * Tokens for the account page's forms, bound the same way to the signed-in session they were
 * rendered for: the session's id (the secret value in its cookie, rotated at each sign-in) and
 * its account. A page rendered for another session, or before signing in again, submits nothing.
 */
export interface SessionFormTokens {
  issue(session: { sessionId: string; accountId: string }): string;
  verify(session: { sessionId: string; accountId: string }, token: string): boolean;
}

/** `purpose` keeps one page's tokens from another's: the console's (http/console/) are not the account page's. */
export function createSessionFormTokens(secrets: readonly string[], purpose: 'account/v1' | 'console/v1' = 'account/v1'): SessionFormTokens {
  const keys = formTokenKeys(secrets);
  const mac = (key: Buffer, session: { sessionId: string; accountId: string }) =>
    createHmac('sha256', key).update(JSON.stringify([purpose, session.sessionId, session.accountId])).digest('base64url');
  return {
    issue: (session) => mac(keys[0] as Buffer, session),
    verify: (session, token) => madeWithAnyKey(keys, token, (key) => mac(key, session)),
  };
}

/** Whether `token` is the MAC under any key still in SECRETS, compared in constant time. */
export function madeWithAnyKey(keys: readonly Buffer[], token: string, macWith: (key: Buffer) => string): boolean {
  const given = Buffer.from(token);
  return keys.some((key) => {
    const expected = Buffer.from(macWith(key));
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** The cookie that binds the forms of pages used without a session or interaction (forgotten password). */
export const BROWSER_FORM_COOKIE = 'gatehouse.forms';

/**
 * Tokens for forms on pages that have neither an interaction nor a session (the forgotten
 * password pages): bound to a random value in a cookie of their own (HttpOnly, SameSite=Lax),
 * set when the form is first shown. Another site can neither read that cookie nor make a
 * matching token.
 */
export interface BrowserFormTokens {
  issue(req: Request, res: Response): string;
  verify(req: Request, token: unknown): boolean;
}

export function createBrowserFormTokens(secrets: readonly string[], { secure }: { secure: boolean }): BrowserFormTokens {
  const keys = formTokenKeys(secrets);
  const mac = (key: Buffer, value: string) => createHmac('sha256', key).update(JSON.stringify(['browser/v1', value])).digest('base64url');
  return {
    issue(req, res) {
      let value = readCookie(req, BROWSER_FORM_COOKIE);
      if (!value || !/^[\w-]{43}$/.test(value)) {
        value = randomBytes(32).toString('base64url');
        res.cookie(BROWSER_FORM_COOKIE, value, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
      }
      return mac(keys[0] as Buffer, value);
    },
    verify(req, token) {
      const value = readCookie(req, BROWSER_FORM_COOKIE);
      if (!value || typeof token !== 'string' || token.length > 128) return false;
      return madeWithAnyKey(keys, token, (key) => mac(key, value));
    },
  };
}
