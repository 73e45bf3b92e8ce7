// Queries on RecoveryCode: one-time codes a person can use instead of their authenticator app.
// Only hashes are stored (people/mfa.ts makes and checks them); a code is used at most once.
import { randomUUID } from 'node:crypto';
import type { DbHandle, Prisma } from '../db/client.js';

export function createRecoveryCodeStore({ prisma }: DbHandle) {
  return {
    /** The person's unused codes (id and hash only). */
    listUnused: (userId: string) =>
      prisma.recoveryCode.findMany({ where: { userId, usedAt: null }, select: { id: true, codeHash: true } }),

    /** Marks a code used; false when it was already used (a concurrent request won). */
    async markUsed(id: string, at: Date = new Date()): Promise<boolean> {
      const { count } = await prisma.recoveryCode.updateMany({ where: { id, usedAt: null }, data: { usedAt: at } });
      return count === 1;
    },

    countUnused: (userId: string) => prisma.recoveryCode.count({ where: { userId, usedAt: null } }),
  };
}

/** Replaces a person's codes; meant to run inside a transaction with the write that needs it. */
export async function replaceRecoveryCodes(tx: Pick<Prisma, 'recoveryCode'>, userId: string, codeHashes: readonly string[]): Promise<void> {
  await tx.recoveryCode.deleteMany({ where: { userId } });
  await tx.recoveryCode.createMany({ data: codeHashes.map((codeHash) => ({ id: randomUUID(), userId, codeHash })) });
}

export type RecoveryCodeStore = ReturnType<typeof createRecoveryCodeStore>;
