// The sign-in handoff: how a person who has just accepted an invitation lands signed in without
// being asked again for the password (or passkey) they chose a moment ago. Accepting issues it,
// in the same transaction that creates the account (invitation-acceptance.ts); the page puts its
// secret in an HttpOnly, SameSite=Lax cookie scoped to /interaction (http/invitation.ts) and
// sends the browser on to /account or the invited app, which starts an authorization request.
// The next sign-in page that browser is shown redeems it (oidc/interactions.ts): the first
// factor is given, and the usual steps follow (a verified address, a second factor the client
// requires, consent).
//
// It is a row of the AccountLink table (link-store.ts, purpose `invitation_sign_in`): only the
// SHA-256 of its secret is stored, it lasts HANDOFF_TTL_SECONDS, and it is used up by the first
// sign-in page that presents it, whether or not it matches there. It matches only the client it
// was issued for (the invited app, or the account page's own client) and, when the request names
// one, the same login_hint; and only while the account exists and is enabled.
import { z } from 'zod';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { DbHandle } from '../db/client.js';
import { createLinkStore } from './link-store.js';
import { createUserStore, normalizeEmail } from './store.js';

/** Long enough for a few redirects and a slow app, short enough that a left-open tab does not keep it. */
export const HANDOFF_TTL_SECONDS = 300;

const PURPOSE = 'invitation_sign_in';

/** What the person proved when accepting: a password (amr `pwd`), or a user-verified passkey (`hwk`, `user`). */
export type HandoffMethod = 'password' | 'passkey';

const Details = z.object({ client_id: z.string(), method: z.enum(['password', 'passkey']) });

export interface RedeemedHandoff {
  accountId: string;
  method: HandoffMethod;
}

/** Issues a handoff for this account and client in `handle`'s transaction (older ones are revoked); the secret for the cookie. */
export function issueSignInHandoff(handle: DbHandle, { accountId, email, clientId, method }: { accountId: string; email: string; clientId: string; method: HandoffMethod }, now: Date = new Date()): Promise<string> {
  const expiresAt = new Date(now.getTime() + HANDOFF_TTL_SECONDS * 1000);
  return createLinkStore(handle).issue({ purpose: PURPOSE, userId: accountId, email, details: { client_id: clientId, method }, expiresAt }, now);
}

export interface SignInHandoffs {
  /**
   * Uses the handoff up and returns who it signs in when it matches this request: its client and
   * login_hint. Records sign_in.success (method `invitation`) like every sign-in; null otherwise.
   */
  redeem(secret: string, request: { clientId: string; loginHint?: string | undefined }, origin: RequestOrigin): Promise<RedeemedHandoff | null>;
}

/** `audit`: the log sign-ins are recorded through (the metrics count them on the way). */
export function createSignInHandoffs({ db, audit, now = () => new Date() }: { db: DbHandle; audit: AuditLog; now?: () => Date }): SignInHandoffs {
  const links = createLinkStore(db);
  return {
    async redeem(secret, { clientId, loginHint }, origin) {
      const at = now();
      const link = await links.findUsable(PURPOSE, secret, at);
      // Used up here whatever follows: it serves the next sign-in page only, once.
      if (!link || !(await links.use(link.id, at))) return null;
      const details = Details.safeParse(link.details);
      if (!details.success || details.data.client_id !== clientId) return null;
      if (loginHint !== undefined && normalizeEmail(loginHint) !== link.email) return null;
      const user = await createUserStore(db).findById(link.userId);
      if (!user || user.disabled || user.email !== link.email) return null;
      await audit.record({ type: 'sign_in.success', accountId: user.id, clientId, ...origin, details: { method: 'invitation', factor: details.data.method } });
      return { accountId: user.id, method: details.data.method };
    },
  };
}
