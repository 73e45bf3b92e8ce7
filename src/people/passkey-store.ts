// Queries on Passkey (a person's WebAuthn credentials) and PasskeyChallenge (the challenges of
// ceremonies under way). Challenges live in the database so that a ceremony begun on one
// instance can finish on another; each is used at most once and refused once expired.
import { randomUUID } from 'node:crypto';
import { hasNul } from '../db/dialect.js';
import type { DbHandle } from '../db/client.js';
import { removeUnlessLastWay } from './sign-in-ways.js';
import type { Passkey, PasskeyChallenge } from '../generated/sqlite/client.js';

export type { Passkey, PasskeyChallenge };

export type ChallengePurpose = 'register' | 'sign_in' | 'second_factor';

export interface NewPasskey {
  userId: string;
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: readonly string[];
  name: string;
  deviceType: string;
  backedUp: boolean;
}

export function createPasskeyStore(db: DbHandle) {
  const { prisma } = db;
  return {
    /** The person's passkeys, oldest first. */
    listByUser: (userId: string) => prisma.passkey.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } }),

    countByUser: (userId: string) => prisma.passkey.count({ where: { userId } }),

    findByCredentialId: async (credentialId: string) => (hasNul(credentialId) ? null : prisma.passkey.findUnique({ where: { credentialId } })),

    /** One of the person's passkeys by its id; null when it is not theirs. */
    findOfUser: async (userId: string, id: string) => (hasNul(id) ? null : prisma.passkey.findFirst({ where: { id, userId } })),

    create: (passkey: NewPasskey, at: Date = new Date()) =>
      prisma.passkey.create({ data: { id: randomUUID(), ...passkey, transports: passkey.transports.join(','), createdAt: at } }),

    async rename(userId: string, id: string, name: string): Promise<boolean> {
      const { count } = await prisma.passkey.updateMany({ where: { id, userId }, data: { name } });
      return count === 1;
    },

    async remove(userId: string, id: string): Promise<boolean> {
      const { count } = await prisma.passkey.deleteMany({ where: { id, userId } });
      return count === 1;
    },

    /** Removes one of the person's passkeys unless it is their last way to sign in (sign-in-ways.ts). */
    removeUnlessLast: (userId: string, id: string) =>
      removeUnlessLastWay(db, userId, async (tx) => (await tx.passkey.deleteMany({ where: { id, userId } })).count),

    /**
     * Records a use: the new signature counter and when. Guarded by the counter read before the
     * check, so of two assertions racing with one counter value only one is recorded.
     */
    async recordUse(id: string, previousCounter: number, counter: number, backedUp: boolean, at: Date = new Date()): Promise<boolean> {
      const { count } = await prisma.passkey.updateMany({ where: { id, counter: previousCounter }, data: { counter, backedUp, lastUsedAt: at } });
      return count === 1;
    },

    /** Keeps a new challenge; expired ones are deleted on the way (no sweeper needed). */
    async saveChallenge(challenge: Omit<PasskeyChallenge, 'createdAt'>, now: Date = new Date()): Promise<void> {
      await prisma.passkeyChallenge.deleteMany({ where: { expiresAt: { lt: now } } });
      await prisma.passkeyChallenge.create({ data: challenge });
    },

    /**
     * Uses up a challenge: returns it when it was handed out for this purpose and binding and has
     * not expired; deleted whatever the answer, so it can never be presented twice.
     */
    async consumeChallenge(challenge: string, purpose: ChallengePurpose, boundTo: string, now: Date = new Date()): Promise<PasskeyChallenge | null> {
      if (hasNul(challenge) || challenge.length > 128) return null;
      const row = await prisma.passkeyChallenge.findUnique({ where: { challenge } });
      if (!row) return null;
      // Exactly one request gets count 1: two racing requests cannot both use it.
      const { count } = await prisma.passkeyChallenge.deleteMany({ where: { challenge } });
      if (count !== 1 || row.purpose !== purpose || row.boundTo !== boundTo || row.expiresAt <= now) return null;
      return row;
    },
  };
}

export type PasskeyStore = ReturnType<typeof createPasskeyStore>;
