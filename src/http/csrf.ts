// Cross-site request forgery tokens for the forms we render at /interaction/:uid (the engine's
// own forms carry its `xsrf`). A token is an HMAC, under a key derived from SECRETS, over the
// interaction it was rendered for: its uid (in the URL), its `cid` (a random value the engine
// keeps server-side and never shows) and the signed-in session's uid, if any. So it is good
// only for that interaction in the browser whose interaction cookie leads to it; nothing is
// stored, and every instance sharing SECRETS verifies it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Interaction } from '../oidc/interactions.js';
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

export function createSessionFormTokens(secrets: readonly string[]): SessionFormTokens {
  const keys = formTokenKeys(secrets);
  const mac = (key: Buffer, session: { sessionId: string; accountId: string }) =>
    createHmac('sha256', key).update(JSON.stringify(['account/v1', session.sessionId, session.accountId])).digest('base64url');
  return {
    issue: (session) => mac(keys[0] as Buffer, session),
    verify: (session, token) => madeWithAnyKey(keys, token, (key) => mac(key, session)),
  };
}

/** Whether `token` is the MAC under any key still in SECRETS, compared in constant time. */
function madeWithAnyKey(keys: readonly Buffer[], token: string, macWith: (key: Buffer) => string): boolean {
  const given = Buffer.from(token);
  return keys.some((key) => {
    const expected = Buffer.from(macWith(key));
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
