// Forgotten passwords: a person asks for a link by email, and the link lets them choose a new
// password once. The answer to the request is the same whether or not the address belongs to
// someone (the page pads its timing, http/password-reset.ts); a disabled person, an unknown
// address, or an address over its limit gets no mail. The link's secret is stored hashed
// (link-store.ts), lives PASSWORD_RESET_TTL, and a newer one revokes the older ones. The mail is
// queued in the same transaction as its link (mail/outbox.ts). Choosing the new password applies
// the policy, uses the link, and ends every session, grant and token of the person: whoever
// knew the old password is out. Two-step verification is untouched and still asked at sign-in.
import { createHash } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { RateLimiterRes } from 'rate-limiter-flexible';
import { createArtifactStore } from '../artifacts/store.js';
import { actorDetails, type Actor, type AuditLog, type RequestOrigin } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { counter, ipKey } from '../core/counters.js';
import type { Db, Prisma } from '../db/client.js';
import type { ComposeMail } from '../mail/compose.js';
import type { Outbox } from '../mail/outbox.js';
import { createLinkStore } from './link-store.js';
import { findPasswordProblem, type PasswordProblem } from './password-policy.js';
import { createUserStore, normalizeEmail, type User } from './store.js';

export interface PasswordResetDeps {
  db: Db;
  outbox: Outbox;
  composeMail: ComposeMail;
  audit: AuditLog;
  config: Pick<Config, 'issuer' | 'recovery' | 'passwords'>;
  now?: () => Date;
}

export type ResetRequestOutcome = 'answered' | 'too_many';

export type ResetOutcome = { outcome: 'reset'; email: string; interaction: string | undefined } | { outcome: 'invalid' } | { outcome: 'rejected'; problem: PasswordProblem };

export interface PasswordReset {
  /** Queues a link for the person with this address, if there is one who may have it. The same outcome either way, unless the IP is over its limit. */
  requestLink(email: string, origin: RequestOrigin & { language?: string | undefined; interaction?: string | undefined }): Promise<ResetRequestOutcome>;
  /** An administrator sends the person a link (no limits apply); false when they are disabled or gone. Audited with the actor. */
  sendLink(userId: string, actor: Actor): Promise<boolean>;
  /** The address a usable link is for; null when it is unknown, used, expired or superseded. */
  checkLink(secret: string): Promise<{ email: string } | null>;
  resetPassword(secret: string, password: string, origin: RequestOrigin): Promise<ResetOutcome>;
}

const addressKey = (email: string) => createHash('sha256').update(normalizeEmail(email), 'utf8').digest('base64url');
const isOverLimit = (error: unknown): error is RateLimiterRes => !(error instanceof Error);

export function createPasswordReset({ db, outbox, composeMail, audit, config, now = () => new Date() }: PasswordResetDeps): PasswordReset {
  const { recovery } = config;
  const perIp = counter(db, 'password-reset:ip', recovery.maxPerIp, recovery.window);
  const perAddress = counter(db, 'password-reset:address', recovery.maxPerAddress, recovery.window);
  const users = createUserStore(db);
  const links = createLinkStore(db);

  /** Counts one request; false when the key is over its limit. */
  async function within(limit: typeof perIp, key: string): Promise<boolean> {
    try {
      await limit.consume(key);
      return true;
    } catch (error) {
      if (isOverLimit(error)) return false;
      throw error;
    }
  }

  /** A new link for the person (older ones stop working), and its mail, queued together. */
  async function queueLink(user: User, language: string | undefined, interaction: string | undefined) {
    const at = now();
    const minutes = Math.round(recovery.resetTtl / 60);
    await db.prisma.$transaction(async (tx) => {
      const handle = { prisma: tx as unknown as Prisma, flavour: db.flavour };
      const details = interaction ? { interaction } : undefined;
      const secret = await createLinkStore(handle).issue({ purpose: 'password_reset', userId: user.id, email: user.email, details, expiresAt: new Date(at.getTime() + recovery.resetTtl * 1000) }, at);
      const link = `${config.issuer}/password/reset?token=${secret}`;
      const message = await composeMail({ template: 'password-reset', to: user.email, language: user.locale ?? language, locals: { name: user.name, email: user.email, link, minutes } });
      await outbox.queueMail(handle, message, 'password_reset');
    });
    outbox.wake();
  }

  return {
    async requestLink(email, origin) {
      if (!(await within(perIp, ipKey(origin.ip)))) return 'too_many';
      // Counted for unknown addresses too: the limit tells nothing about who has an account.
      if (!(await within(perAddress, addressKey(email)))) return 'answered';
      const user = await users.findByEmail(email);
      if (!user || user.disabled) return 'answered';
      await queueLink(user, origin.language, origin.interaction);
      await audit.record({ type: 'password.reset_requested', accountId: user.id, ip: origin.ip, userAgent: origin.userAgent });
      return 'answered';
    },

    async sendLink(userId, actor) {
      const user = await users.findById(userId);
      if (!user || user.disabled) return false;
      await queueLink(user, undefined, undefined);
      await audit.record({ type: 'password.reset_requested', accountId: user.id, ip: actor.ip, userAgent: actor.userAgent, details: actorDetails(actor) });
      return true;
    },

    async checkLink(secret) {
      const link = await links.findUsable('password_reset', secret, now());
      if (!link) return null;
      const user = await users.findById(link.userId);
      // The address changed since, or the person was disabled: the link no longer applies.
      if (!user || user.disabled || user.email !== link.email) return null;
      return { email: user.email };
    },

    async resetPassword(secret, password, origin) {
      const link = await links.findUsable('password_reset', secret, now());
      const user = link && (await users.findById(link.userId));
      if (!link || !user || user.disabled || user.email !== link.email) return { outcome: 'invalid' };
      const problem = findPasswordProblem(password, { minLength: config.passwords.minLength, email: user.email });
      if (problem) return { outcome: 'rejected', problem };
      const passwordHash = await bcrypt.hash(password, config.passwords.bcryptCost);
      const used = await db.prisma.$transaction(async (tx) => {
        const handle = { prisma: tx as unknown as Prisma, flavour: db.flavour };
        if (!(await createLinkStore(handle).use(link.id, now()))) return false;
        await createUserStore(handle).update(user.id, { passwordHash });
        return true;
      });
      if (!used) return { outcome: 'invalid' };
      // Every session, and every grant with the codes and tokens issued under it.
      const artifacts = createArtifactStore(db);
      const sessionsEnded = await artifacts.destroyByAccount('Session', user.id);
      const grants = await artifacts.listByAccount('Grant', user.id, now());
      for (const grant of grants) await artifacts.destroyByGrantId(grant.id);
      await audit.record({ type: 'password.reset', accountId: user.id, ...origin, details: { via: 'mail', sessions_ended: sessionsEnded, grants_ended: grants.length } });
      const details = link.details as { interaction?: unknown } | null;
      return { outcome: 'reset', email: user.email, interaction: typeof details?.interaction === 'string' ? details.interaction : undefined };
    },
  };
}
