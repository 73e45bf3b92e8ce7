// Proving an email address: `email_verified` becomes true only by following a link sent to that
// address (or when an administrator says so). When the address changes (admin API, CLI), it is
// no longer verified: a link goes to the new address and a notice to the old one, queued in the
// same transaction as the change. The link is single use, stored hashed (link-store.ts), valid
// EMAIL_VERIFICATION_TTL, and proves only the address it was sent to.
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { counter, ipKey } from '../core/counters.js';
import type { Db, DbHandle, Prisma } from '../db/client.js';
import type { ComposeMail } from '../mail/compose.js';
import type { Outbox } from '../mail/outbox.js';
import { createLinkStore } from './link-store.js';
import { createUserStore, type User } from './store.js';

/** What sending these mails needs; absent, an address change sends none. */
export interface AccountMail {
  outbox: Outbox;
  composeMail: ComposeMail;
  issuer: string;
  verificationTtlSeconds: number;
  /** INVITATION_TTL (people/invitations.ts). */
  invitationTtlSeconds: number;
}

/** In `handle`'s transaction: a link to `user.email` (their new address) and, when given, a notice to the old one. */
export async function queueEmailChangeMails(handle: DbHandle, mail: AccountMail, user: Pick<User, 'id' | 'email' | 'name' | 'locale'>, oldEmail: string | undefined, now: Date = new Date()): Promise<void> {
  const secret = await createLinkStore(handle).issue({ purpose: 'email_verification', userId: user.id, email: user.email, expiresAt: new Date(now.getTime() + mail.verificationTtlSeconds * 1000) }, now);
  const hours = Math.round(mail.verificationTtlSeconds / 3600);
  const link = `${mail.issuer}/email/verify?token=${secret}`;
  const verification = await mail.composeMail({ template: 'email-verification', to: user.email, language: user.locale, locals: { name: user.name, email: user.email, link, hours } });
  await mail.outbox.queueMail(handle, verification, 'email_verification');
  if (oldEmail && oldEmail !== user.email) {
    const notice = await mail.composeMail({ template: 'email-changed', to: oldEmail, language: user.locale, locals: { name: user.name, oldEmail, newEmail: user.email } });
    await mail.outbox.queueMail(handle, notice, 'email_changed');
  }
}

/** The address a usable verification link is for; null when unknown, used, expired, superseded or no longer the person's address. */
export async function checkVerificationLink(db: DbHandle, secret: string, now: Date = new Date()): Promise<{ email: string } | null> {
  const link = await createLinkStore(db).findUsable('email_verification', secret, now);
  const user = link && (await createUserStore(db).findById(link.userId));
  return link && user && !user.disabled && user.email === link.email ? { email: user.email } : null;
}

/** Uses the link and marks the address verified; false (nothing changed) when the link does not apply. */
export async function verifyEmail(db: DbHandle, audit: AuditLog, secret: string, origin: RequestOrigin, now: Date = new Date()): Promise<boolean> {
  const links = createLinkStore(db);
  const link = await links.findUsable('email_verification', secret, now);
  const user = link && (await createUserStore(db).findById(link.userId));
  if (!link || !user || user.disabled || user.email !== link.email) return false;
  if (!(await links.use(link.id, now))) return false;
  // The address must still be the one the link was sent to when it is marked.
  const { count } = await db.prisma.user.updateMany({ where: { id: user.id, email: link.email }, data: { emailVerified: true } });
  if (count !== 1) return false;
  await audit.record({ type: 'email.verified', accountId: user.id, ...origin, details: { via: 'mail' } });
  return true;
}

/**
 * REQUIRE_VERIFIED_EMAIL at sign-in (oidc/interactions.ts): whether the person's address is
 * verified, and its link sent again, at most MAIL_LINKS_PER_ADDRESS times per account and
 * MAIL_LINKS_PER_IP per address in MAIL_LINK_WINDOW.
 */
export function createEmailGate({ db, mail, recovery }: { db: Db; mail: AccountMail; recovery: Pick<Config['recovery'], 'maxPerAddress' | 'maxPerIp' | 'window'> }) {
  const users = createUserStore(db);
  const perAccount = counter(db, 'verify-resend:account', recovery.maxPerAddress, recovery.window);
  const perIp = counter(db, 'verify-resend:ip', recovery.maxPerIp, recovery.window);
  const within = (limit: typeof perIp, key: string) =>
    limit.consume(key).then(
      () => true,
      (error: unknown) => {
        if (error instanceof Error) throw error;
        return false;
      },
    );
  return {
    isVerified: async (accountId: string) => (await users.findById(accountId))?.emailVerified === true,
    async resend(accountId: string, origin: RequestOrigin): Promise<'sent' | 'too_many'> {
      if (!(await within(perIp, ipKey(origin.ip))) || !(await within(perAccount, accountId))) return 'too_many';
      const user = await users.findById(accountId);
      if (!user || user.disabled || user.emailVerified) return 'sent';
      await db.prisma.$transaction((tx) => queueEmailChangeMails({ prisma: tx as unknown as Prisma, flavour: db.flavour }, mail, user, undefined));
      mail.outbox.wake();
      return 'sent';
    },
  };
}
