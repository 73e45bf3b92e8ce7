// People as the engine sees them: findAccount() for claims, verifyPassword() for sign-in.
import { randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { Account, AccountClaims, FindAccount } from 'oidc-provider';
import type { Db } from '../db/client.js';
import { createUserQueries, type User } from '../db/users.js';
import type { AuditLog, RequestOrigin } from './audit.js';

/** Which claims each scope releases (the engine filters what findAccount returns by these). */
export const CLAIMS_BY_SCOPE = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
} as const;

export function userClaims(user: User): AccountClaims {
  const claims: AccountClaims = {
    sub: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    updated_at: Math.floor(user.updatedAt.getTime() / 1000),
  };
  const optional = {
    name: user.name,
    given_name: user.givenName,
    family_name: user.familyName,
    preferred_username: user.preferredUsername,
    picture: user.picture,
    locale: user.locale,
  };
  for (const [claim, value] of Object.entries(optional)) if (value) claims[claim] = value;
  return claims;
}

export function createFindAccount(db: Db): FindAccount {
  const users = createUserQueries(db.prisma);
  return async function findAccount(_ctx, id): Promise<Account | undefined> {
    const user = await users.findById(id);
    if (!user || user.disabled) return undefined;
    return { accountId: user.id, claims: () => userClaims(user) };
  };
}

export const hashPassword = (password: string, cost: number) => bcrypt.hash(password, cost);

export interface PasswordVerifier {
  /**
   * The account id when the email and password match an enabled user, otherwise null (the
   * caller shows one generic message whatever the reason). Records the attempt.
   */
  verifyPassword(email: string, password: string, origin: RequestOrigin): Promise<string | null>;
}

export function createPasswordVerifier(db: Db, bcryptCost: number, audit: AuditLog): PasswordVerifier {
  const users = createUserQueries(db.prisma);
  // Compared against when the email is unknown, so that case costs the same bcrypt work as a
  // wrong password and response times do not reveal which emails have accounts.
  let dummyHash: Promise<string> | undefined;
  const dummy = () => (dummyHash ??= bcrypt.hash(randomBytes(16).toString('hex'), bcryptCost));

  return {
    async verifyPassword(email, password, origin) {
      const user = await users.findByEmail(email);
      const matches = await bcrypt.compare(password, user?.passwordHash ?? (await dummy()));
      if (!user || !matches || user.disabled) {
        const reason = !user ? 'unknown_email' : user.disabled ? 'disabled' : 'wrong_password';
        await audit.record({ type: 'sign_in.failure', accountId: user?.id, ...origin, details: { reason } });
        return null;
      }
      await audit.record({ type: 'sign_in.success', accountId: user.id, ...origin });
      // The cost was raised since this hash was made: upgrade it while we hold the password.
      if (bcrypt.getRounds(user.passwordHash) !== bcryptCost) {
        await users.update(user.id, { passwordHash: await hashPassword(password, bcryptCost) });
      }
      return user.id;
    },
  };
}
