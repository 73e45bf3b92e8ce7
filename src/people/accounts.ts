// People as the engine sees them: findAccount() for claims, verifyPassword() for sign-in.
//
// On /userinfo and /token (refresh, code) the engine finds the account right after reading the
// token, and the adapter reads the token's person in that same statement (artifacts/store.ts
// findWithBindings, kept for the request by oidc/request-reads.ts): findAccount takes that row
// instead of querying. The person is then as they were when the token was read, a few statements
// earlier in the same request; a person disabled, deleted or changed after that read is seen by
// the next request, as the session and the grant are.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcrypt';
import type { Account, AccountClaims, FindAccount } from 'oidc-provider';
import type { Db } from '../db/client.js';
import { createGroupsClaim, GROUPS_CLAIM, GROUPS_SCOPE } from '../groups/claims.js';
import { createUserStore, profileClaimsOf, type User } from './store.js';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import { describeHash, needsRehash, readsWholePassword, verifyPasswordHash } from './password-hashes.js';
import { BCRYPT_MAX_PASSWORD_BYTES } from './password-policy.js';
import type { SignInAttempt, SignInLimits } from './sign-in-limits.js';

/** Which claims each scope releases (the engine filters what findAccount returns by these). */
export const CLAIMS_BY_SCOPE = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  [GROUPS_SCOPE]: [GROUPS_CLAIM],
} as const;

export function userClaims(user: User): AccountClaims {
  const claims: AccountClaims = {
    sub: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    updated_at: Math.floor(user.updatedAt.getTime() / 1000),
  };
  for (const [claim, value] of Object.entries(profileClaimsOf(user))) if (value) claims[claim] = value;
  return claims;
}

/**
 * The person with this id already read in the current engine request, handed out once: null when
 * read and not found, undefined when none was read (oidc/request-reads.ts).
 */
export type ReadAheadPerson = (accountId: string) => User | null | undefined;

export function createFindAccount(db: Db, readAhead: ReadAheadPerson = () => undefined): FindAccount {
  const users = createUserStore(db);
  const groups = createGroupsClaim(db);
  return async function findAccount(ctx, id): Promise<Account | undefined> {
    const read = readAhead(id);
    const user = read !== undefined ? read : await users.findById(id);
    if (!user || user.disabled) return undefined;
    return {
      accountId: user.id,
      // The groups claim costs a query, made only for scope groups (groups/claims.ts).
      claims: async (use, scope) => ({ ...userClaims(user), ...(await groups.accountClaims(user.id, ctx.oidc.client as unknown as Record<string, unknown> | undefined, use, scope)) }),
    };
  };
}

export const hashPassword = (password: string, cost: number) => bcrypt.hash(password, cost);

/** Whether `password` matches the stored hash (bcrypt, or an imported argon2id); never for a person without a password (passkey-only). */
export const passwordMatches = async (password: string, hash: string | null): Promise<boolean> => (hash ? verifyPasswordHash(password, hash) : false);

export interface PasswordVerifier {
  /**
   * The account id when the email and password match an enabled user, otherwise null (the
   * caller shows one generic message whatever the reason, a lockout included). Records the
   * attempt, and waits longer the more recent failures the account has (sign-in-limits.ts).
   */
  verifyPassword(email: string, password: string, origin: RequestOrigin): Promise<string | null>;
  /** The same check, answering with the person's row as it was read for it (their TOTP state, say), so the sign-in need not read it again. */
  signInWithPassword(email: string, password: string, origin: RequestOrigin): Promise<User | null>;
}

export function createPasswordVerifier(db: Db, bcryptCost: number, audit: AuditLog, limits: SignInLimits): PasswordVerifier {
  const users = createUserStore(db);
  // Compared against when the email is unknown, so that case costs the same bcrypt work as a
  // wrong password and response times do not reveal which emails have accounts.
  let dummyHash: Promise<string> | undefined;
  const dummy = () => (dummyHash ??= bcrypt.hash(randomBytes(16).toString('hex'), bcryptCost));

  async function refuse(attempt: SignInAttempt, user: User | null, origin: RequestOrigin, details: Record<string, unknown>): Promise<null> {
    // Written together: one commit (on PostgreSQL one round trip) for the failure and its count.
    const [, locked] = await Promise.all([audit.record({ type: 'sign_in.failure', accountId: user?.id, ...origin, details }), attempt.failed()]);
    for (const scope of locked) {
      const { lockout: lockoutSeconds, failureWindow: windowSeconds } = limits.settings;
      await audit.record({ type: 'sign_in.locked', accountId: user?.id, ...origin, details: { scope, lockoutSeconds, windowSeconds } });
    }
    return null;
  }

  async function signInWithPassword(email: string, password: string, origin: RequestOrigin): Promise<User | null> {
    // The attempt is counted and the person read at once (on PostgreSQL, in one round trip's time).
    const [attempt, user] = await Promise.all([limits.begin(email, origin.ip), users.findByEmail(email)]);
    await sleep(attempt.delayMs);
    // Locked: not even the right password gets in, so it is not checked.
    if (attempt.locked.length) return refuse(attempt, user, origin, { reason: 'locked', locked: attempt.locked });
    // bcrypt reads only the first 72 bytes, so a longer password would match whatever follows
    // them. Refused like a wrong one, after the same bcrypt work (no password set through the
    // policy is longer, password-policy.ts). An imported argon2id hash reads every byte.
    const longerThanBcryptReads = Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_PASSWORD_BYTES;
    const tooLong = longerThanBcryptReads && !readsWholePassword(user?.passwordHash ?? null);
    // Someone without a password (passkeys only, or an upstream provider) costs the same work and never matches.
    const matches = (await verifyPasswordHash(password, user?.passwordHash ?? (await dummy()))) && !tooLong && Boolean(user?.passwordHash);
    if (!user?.passwordHash || !matches || user.disabled) {
      const reason = !user ? 'unknown_email' : user.disabled ? 'disabled' : !user.passwordHash ? 'no_password' : tooLong ? 'password_too_long' : 'wrong_password';
      return refuse(attempt, user, origin, { reason });
    }
    await Promise.all([attempt.succeeded(), audit.record({ type: 'sign_in.success', accountId: user.id, ...origin })]);
    // A longer password, right for an imported argon2id hash, keeps that hash: bcrypt could not hold it.
    if (needsRehash(user.passwordHash, bcryptCost) && !longerThanBcryptReads) await rehash(user.id, user.passwordHash, password, origin);
    return user;
  }

  return {
    signInWithPassword,
    verifyPassword: async (email, password, origin) => (await signInWithPassword(email, password, origin))?.id ?? null,
  };

  /**
   * The hash is not ours at today's settings (imported from another server, or BCRYPT_COST changed
   * since it was made): replace it while we hold the password, unless it changed meanwhile (a
   * password set by an administrator between the check and now wins).
   */
  async function rehash(accountId: string, checked: string, password: string, origin: RequestOrigin): Promise<void> {
    const upgraded = await hashPassword(password, bcryptCost);
    if (!(await users.replacePasswordHash(accountId, checked, upgraded))) return;
    await audit.record({ type: 'user.password_rehashed', accountId, ...origin, details: { from: describeHash(checked), to: describeHash(upgraded) } });
  }
}
