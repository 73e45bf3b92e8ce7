// The AccountLink table: single-use links sent by mail, stored as the SHA-256 of their secret
// (the mail holds the only copy of the secret). A new link of a purpose revokes the person's
// older ones of that purpose; using one is a conditional update, so it works exactly once.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { DbHandle } from '../db/client.js';
import { dialectOf } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';

/** `invitation_sign_in`: the sign-in handoff after accepting an invitation (sign-in-handoff.ts), never mailed. */
export type LinkPurpose = 'password_reset' | 'email_verification' | 'invitation' | 'invitation_sign_in';

/** 32 random bytes, base64url: what goes in the link. */
export const newLinkSecret = () => randomBytes(32).toString('base64url');

export const hashLinkSecret = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/** A well-formed secret: 43 base64url characters. Anything else is refused before a look-up. */
export const LINK_SECRET = /^[\w-]{43}$/;

export interface AccountLinkRow {
  id: string;
  purpose: string;
  userId: string;
  email: string;
  details: unknown;
  expiresAt: Date;
}

export function createLinkStore(db: DbHandle) {
  const { prisma } = db;
  const dialect = dialectOf(db.flavour);
  // SQL on the executor, as every background job's statement (server.ts, startBackgroundJobs).
  const expired = { name: 'account_link_prune', text: dialect.sql('DELETE FROM "AccountLink" WHERE "expiresAt" < ?') };
  return {
    /** Revokes the person's unused links of this purpose and stores a new one; the secret to send. */
    async issue({ purpose, userId, email, details, expiresAt }: { purpose: LinkPurpose; userId: string; email: string; details?: Record<string, string> | undefined; expiresAt: Date }, now: Date = new Date()) {
      await prisma.accountLink.updateMany({ where: { userId, purpose, usedAt: null, revokedAt: null }, data: { revokedAt: now } });
      const secret = newLinkSecret();
      await prisma.accountLink.create({ data: { id: randomUUID(), purpose, tokenHash: hashLinkSecret(secret), userId, email, details: details ?? undefined, expiresAt, createdAt: now } });
      return secret;
    },

    /** The link this secret opens, when it is unused, unrevoked and unexpired. */
    async findUsable(purpose: LinkPurpose, secret: string, now: Date = new Date()): Promise<AccountLinkRow | null> {
      if (!LINK_SECRET.test(secret)) return null;
      return prisma.accountLink.findFirst({
        where: { tokenHash: hashLinkSecret(secret), purpose, usedAt: null, revokedAt: null, expiresAt: { gt: now } },
        select: { id: true, purpose: true, userId: true, email: true, details: true, expiresAt: true },
      });
    },

    /** Marks it used; false when it was used, revoked or expired meanwhile (another tab, a replay). */
    async use(id: string, now: Date = new Date()): Promise<boolean> {
      const { count } = await prisma.accountLink.updateMany({ where: { id, usedAt: null, revokedAt: null, expiresAt: { gt: now } }, data: { usedAt: now } });
      return count === 1;
    },

    /** Deletes links that expired before `before`. */
    async pruneExpired(before: Date): Promise<number> {
      return executorOf(db).changes(expired, [dialect.time(before)]);
    },
  };
}
