// Queries on User: the people who sign in. Emails are stored and looked up lower-cased.
import { hasNul } from './artifacts.js';
import type { Prisma } from './client.js';
import { replaceRecoveryCodes } from './recovery-codes.js';
import type { User } from '../generated/sqlite/client.js';

export type { User };

export type UserProfile = Pick<
  User,
  'email' | 'emailVerified' | 'name' | 'givenName' | 'familyName' | 'preferredUsername' | 'picture' | 'locale'
>;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function createUserQueries(prisma: Prisma) {
  return {
    findById: async (id: string) => (hasNul(id) ? null : prisma.user.findUnique({ where: { id } })),

    findByEmail: async (email: string) => (hasNul(email) ? null : prisma.user.findUnique({ where: { email: normalizeEmail(email) } })),

    create: (id: string, profile: UserProfile, passwordHash: string) =>
      prisma.user.create({ data: { id, ...profile, email: normalizeEmail(profile.email), passwordHash } }),

    update: (id: string, changes: Partial<UserProfile> & { passwordHash?: string; disabled?: boolean }) =>
      prisma.user.update({ where: { id }, data: changes.email ? { ...changes, email: normalizeEmail(changes.email) } : changes }),

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

    /** Removes TOTP and recovery codes (an admin's reset). True when there was something to remove. */
    resetMfa: (id: string) =>
      prisma.$transaction(async (tx) => {
        const { count } = await tx.user.updateMany({ where: { id, totpSecretEncrypted: { not: null } }, data: { totpSecretEncrypted: null, totpEnabledAt: null, totpLastStep: null } });
        const codes = await tx.recoveryCode.deleteMany({ where: { userId: id } });
        return count > 0 || codes.count > 0;
      }),
  };
}

export type UserQueries = ReturnType<typeof createUserQueries>;
