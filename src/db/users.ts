// Queries on User: the people who sign in. Emails are stored and looked up lower-cased.
import type { Prisma } from './client.js';
import type { User } from '../generated/sqlite/client.js';

export type { User };

export type UserProfile = Pick<
  User,
  'email' | 'emailVerified' | 'name' | 'givenName' | 'familyName' | 'preferredUsername' | 'picture' | 'locale'
>;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function createUserQueries(prisma: Prisma) {
  return {
    findById: (id: string) => prisma.user.findUnique({ where: { id } }),

    findByEmail: (email: string) => prisma.user.findUnique({ where: { email: normalizeEmail(email) } }),

    create: (id: string, profile: UserProfile, passwordHash: string) =>
      prisma.user.create({ data: { id, ...profile, email: normalizeEmail(profile.email), passwordHash } }),

    update: (id: string, changes: Partial<UserProfile> & { passwordHash?: string; disabled?: boolean }) =>
      prisma.user.update({ where: { id }, data: changes.email ? { ...changes, email: normalizeEmail(changes.email) } : changes }),
  };
}

export type UserQueries = ReturnType<typeof createUserQueries>;
