// Self-service sign-up (SIGNUP=open): a person creates their own account with an email address
// and a password. The account starts with email_verified false and its verification link is
// queued in the same transaction as the account (mail/outbox.ts). Until the link is followed the
// account cannot sign in to an app: SIGNUP=open turns the REQUIRE_VERIFIED_EMAIL gate on
// (server.ts), for every unverified address. An address that already has an account gets the same
// answer as a new one, and its owner a notice instead of a second account. SIGNUP_DOMAINS limits
// the addresses; SIGNUPS_PER_IP limits the attempts from one network in MAIL_LINK_WINDOW.
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { counter, ipKey } from '../core/counters.js';
import type { Db, Prisma } from '../db/client.js';
import { queueEmailChangeMails, type AccountMail } from './email-verification.js';
import { findPasswordProblem, type PasswordProblem } from './password-policy.js';
import { createUserStore, normalizeEmail } from './store.js';

export interface SignUpDeps {
  db: Db;
  mail: AccountMail;
  audit: AuditLog;
  config: Pick<Config, 'signUp' | 'recovery' | 'passwords'>;
}

export interface SignUpInput {
  email: string;
  name?: string | undefined;
  password: string;
}

/** `answered`: created, or the address had an account (its owner was told); the page says the same either way. */
export type SignUpOutcome = { outcome: 'answered' } | { outcome: 'domain_refused' } | { outcome: 'too_many' } | { outcome: 'rejected'; problem: PasswordProblem };

export type SignUp = (input: SignUpInput, origin: RequestOrigin & { language?: string | undefined }) => Promise<SignUpOutcome>;

/** The domain of an address, lower-cased. */
const domainOf = (email: string) => normalizeEmail(email).slice(email.lastIndexOf('@') + 1);

export function createSignUp({ db, mail, audit, config }: SignUpDeps): SignUp {
  const perIp = counter(db, 'sign-up:ip', config.signUp.maxPerIp, config.recovery.window);
  const users = createUserStore(db);
  const allowed = config.signUp.domains;

  return async function signUp({ email, name, password }, origin) {
    if (allowed && !allowed.includes(domainOf(email))) return { outcome: 'domain_refused' };
    const problem = findPasswordProblem(password, { minLength: config.passwords.minLength, email });
    if (problem) return { outcome: 'rejected', problem };
    try {
      await perIp.consume(ipKey(origin.ip));
    } catch (error) {
      if (error instanceof Error) throw error;
      return { outcome: 'too_many' };
    }
    // Hashed whether or not the address is taken, so the answer takes as long either way.
    const passwordHash = await bcrypt.hash(password, config.passwords.bcryptCost);
    const existing = await users.findByEmail(email);
    if (existing) {
      if (!existing.disabled) {
        const notice = await mail.composeMail({ template: 'sign-up-existing', to: existing.email, language: existing.locale ?? origin.language, locals: { name: existing.name, email: existing.email } });
        await mail.outbox.queueMail(db, notice, 'sign_up_existing');
        mail.outbox.wake();
      }
      await audit.record({ type: 'user.sign_up_existing', accountId: existing.id, ip: origin.ip, userAgent: origin.userAgent });
      return { outcome: 'answered' };
    }
    const created = await db.prisma.$transaction(async (tx) => {
      const handle = { prisma: tx as unknown as Prisma, flavour: db.flavour };
      const user = await createUserStore(handle).create(randomUUID(), { email, emailVerified: false, name: name ?? null, givenName: null, familyName: null, preferredUsername: null, picture: null, locale: origin.language ?? null }, passwordHash);
      await queueEmailChangeMails(handle, mail, user, undefined);
      return user;
    }).catch((error: unknown) => {
      // Someone signed up with the same address at the same moment: answered the same.
      if ((error as { code?: string }).code === 'P2002') return null;
      throw error;
    });
    if (!created) return { outcome: 'answered' };
    mail.outbox.wake();
    await audit.record({ type: 'user.created', accountId: created.id, ip: origin.ip, userAgent: origin.userAgent, details: { via: 'sign_up' } });
    return { outcome: 'answered' };
  };
}
