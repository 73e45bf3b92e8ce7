// Queries on User: the people who sign in. Emails are stored and looked up lower-cased.
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import { toUser, userColumns, type RawUser } from '../db/user-row.js';
import { replaceRecoveryCodes } from './recovery-code-store.js';
import { removeUnlessLastWay } from './sign-in-ways.js';
import type { User } from '../generated/sqlite/client.js';

export type { User };

export type UserProfile = Pick<
  User,
  'email' | 'emailVerified' | 'name' | 'givenName' | 'familyName' | 'preferredUsername' | 'picture' | 'locale'
>;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/**
 * Whether the person has a password. Someone without one (null) signs in with a passkey
 * (people/passkeys.ts) or through an upstream identity provider (federation/); no password
 * matches, and they cannot remove their last other way to sign in.
 */
export const hasPassword = <T extends Pick<User, 'passwordHash'>>(user: T): user is T & { passwordHash: string } => user.passwordHash !== null;

/** The optional profile claims (OpenID Connect Core 5.1) and the User column each is kept in. */
export const PROFILE_CLAIM_COLUMNS = {
  name: 'name',
  given_name: 'givenName',
  family_name: 'familyName',
  preferred_username: 'preferredUsername',
  picture: 'picture',
  locale: 'locale',
} as const satisfies Record<string, keyof UserProfile>;

export type ProfileClaim = keyof typeof PROFILE_CLAIM_COLUMNS;

/** A person's optional profile, by claim name (null where not set). */
export function profileClaimsOf(user: Pick<User, (typeof PROFILE_CLAIM_COLUMNS)[ProfileClaim]>): Record<ProfileClaim, string | null> {
  return Object.fromEntries(Object.entries(PROFILE_CLAIM_COLUMNS).map(([claim, column]) => [claim, user[column]])) as Record<ProfileClaim, string | null>;
}

/** The profile columns from claim names; a claim not given is cleared. */
export function profileColumnsOf(claims: Partial<Record<ProfileClaim, string | null>>): Pick<UserProfile, (typeof PROFILE_CLAIM_COLUMNS)[ProfileClaim]> {
  return Object.fromEntries(Object.entries(PROFILE_CLAIM_COLUMNS).map(([claim, column]) => [column, claims[claim as ProfileClaim] ?? null])) as Pick<UserProfile, (typeof PROFILE_CLAIM_COLUMNS)[ProfileClaim]>;
}

/** `text` as a LIKE pattern matching it anywhere, literally: its `%` and `_` (and the escape `!`) escaped. */
export const containsPattern = (text: string) => `%${text.replace(/[!%_]/g, '!$&')}%`;

export function createUserStore(db: DbHandle) {
  const { prisma } = db;
  // Written in SQL and kept prepared (db/executor.ts): sign-ins and the pages look people up all the time; the engine's
  // lookups on userinfo, refresh and code redemption mostly take the person read with the token instead (people/accounts.ts).
  // Columns and row mapping: db/user-row.ts, shared with that token lookup.
  const dialect = dialectOf(db.flavour);
  const columns = userColumns();
  const byId = { name: 'user_by_id', text: dialect.sql(`SELECT ${columns} FROM "User" WHERE "id" = ?`) };
  const byEmail = { name: 'user_by_email', text: dialect.sql(`SELECT ${columns} FROM "User" WHERE "email" = ?`) };
  const sql = executorOf(db);
  // Written in SQL for ESCAPE: Prisma's `contains` passes % and _ through as wildcards, and
  // SQLite's LIKE has no escape character unless the statement names one.
  const searched = `FROM "User" WHERE "email" LIKE ? ESCAPE '!' OR "name" LIKE ? ESCAPE '!'`;
  const search = { page: dialect.sql(`SELECT ${columns} ${searched} ORDER BY "email" ASC LIMIT ? OFFSET ?`), count: dialect.sql(`SELECT COUNT(*) AS "total" ${searched}`) };
  return {
    async findById(id: string): Promise<User | null> {
      if (hasNul(id)) return null;
      const [raw] = await sql.rows<RawUser>(byId, [id]);
      return raw ? toUser(raw) : null;
    },

    /**
     * A page of people ordered by email, and how many there are. With `search`: those whose email
     * contains it in any case (emails are stored lower-cased) or whose name contains it (as
     * written on PostgreSQL, ASCII in any case on SQLite); every character in it, `%` and `_`
     * included, stands for itself.
     */
    async list({ search: text, offset, limit }: { search?: string | undefined; offset: number; limit: number }): Promise<{ users: User[]; total: number }> {
      if (!text) {
        const [users, total] = await Promise.all([prisma.user.findMany({ orderBy: { email: 'asc' }, skip: offset, take: limit }), prisma.user.count()]);
        return { users, total };
      }
      if (hasNul(text)) return { users: [], total: 0 };
      const patterns = [containsPattern(text.toLowerCase()), containsPattern(text)];
      const [rows, [counted]] = await Promise.all([
        prisma.$queryRawUnsafe<RawUser[]>(search.page, ...patterns, limit, offset),
        prisma.$queryRawUnsafe<{ total: unknown }[]>(search.count, ...patterns),
      ]);
      return { users: rows.map(toUser), total: Number(counted?.total ?? 0) };
    },

    /** Every password sign-in looks the person up by email (kept prepared, as findById). */
    async findByEmail(email: string): Promise<User | null> {
      if (hasNul(email)) return null;
      const [raw] = await sql.rows<RawUser>(byEmail, [normalizeEmail(email)]);
      return raw ? toUser(raw) : null;
    },

    /** The people with these (already normalized) emails. */
    findManyByEmail: (emails: readonly string[]) => prisma.user.findMany({ where: { email: { in: [...emails] } } }),

    create: (id: string, profile: UserProfile, passwordHash: string | null) =>
      prisma.user.create({ data: { id, ...profile, email: normalizeEmail(profile.email), passwordHash } }),

    update: (id: string, changes: Partial<UserProfile> & { passwordHash?: string; disabled?: boolean }) =>
      prisma.user.update({ where: { id }, data: changes.email ? { ...changes, email: normalizeEmail(changes.email) } : changes }),

    /** Leaves the person without a password, unless that leaves them no way to sign in (sign-in-ways.ts). */
    removePasswordUnlessLast: (id: string) =>
      removeUnlessLastWay(db, id, async (tx) => (await tx.user.updateMany({ where: { id, passwordHash: { not: null } }, data: { passwordHash: null } })).count),

    /** Replaces the password hash only if it is still `expected` (the one just checked); false otherwise. */
    async replacePasswordHash(id: string, expected: string, passwordHash: string): Promise<boolean> {
      const { count } = await prisma.user.updateMany({ where: { id, passwordHash: expected }, data: { passwordHash } });
      return count === 1;
    },

    /** Sets a password where there is none; false when one was set meanwhile. */
    async setPasswordWhereNone(id: string, passwordHash: string): Promise<boolean> {
      const { count } = await prisma.user.updateMany({ where: { id, passwordHash: null }, data: { passwordHash } });
      return count === 1;
    },

    /**
     * Keeps a new, not yet confirmed TOTP secret (encrypted) for the person. Never replaces a
     * confirmed one: false when TOTP is already enabled.
     */
    async startTotpEnrolment(id: string, secretEncrypted: string): Promise<boolean> {
      const { count } = await prisma.user.updateMany({ where: { id, totpEnabledAt: null }, data: { totpSecretEncrypted: secretEncrypted, totpLastStep: null } });
      return count === 1;
    },

    /**
     * Confirms the pending secret the person proved they hold and replaces their recovery codes,
     * together. False (nothing written) when that secret is no longer the pending one.
     */
    enableTotp: (id: string, secretEncrypted: string, recoveryCodeHashes: readonly string[], at: Date = new Date()) =>
      prisma.$transaction(async (tx) => {
        const { count } = await tx.user.updateMany({ where: { id, totpEnabledAt: null, totpSecretEncrypted: secretEncrypted }, data: { totpEnabledAt: at } });
        if (count !== 1) return false;
        await replaceRecoveryCodes(tx, id, recoveryCodeHashes);
        return true;
      }),

    /**
     * Records that a TOTP time step was used; false when it (or a later one) already was, so a
     * code, even sent twice at once, signs in only once.
     */
    async claimTotpStep(id: string, step: number): Promise<boolean> {
      const { count } = await prisma.user.updateMany({
        where: { id, OR: [{ totpLastStep: null }, { totpLastStep: { lt: step } }] },
        data: { totpLastStep: step },
      });
      return count === 1;
    },

    /** The same TOTP secret sealed anew (newest secret, current format); false when it changed meanwhile. */
    async resealTotpSecret(id: string, was: string, sealed: string): Promise<boolean> {
      const { count } = await prisma.user.updateMany({ where: { id, totpSecretEncrypted: was }, data: { totpSecretEncrypted: sealed } });
      return count === 1;
    },

    /** Removes TOTP and recovery codes (an admin's reset). True when there was something to remove. */
    resetMfa: (id: string) =>
      prisma.$transaction(async (tx) => {
        const { count } = await tx.user.updateMany({ where: { id, totpSecretEncrypted: { not: null } }, data: { totpSecretEncrypted: null, totpEnabledAt: null, totpLastStep: null } });
        const codes = await tx.recoveryCode.deleteMany({ where: { userId: id } });
        return count > 0 || codes.count > 0;
      }),
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
