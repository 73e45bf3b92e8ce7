// A person's ways to sign in: a password, a passkey (passkey-store.ts) or an upstream identity
// (federation/). Whatever removes one of them on the person's own behalf goes through
// removeUnlessLastWay, so that no removal, nor two at once, leaves someone with no way back in.
// (An administrator may still remove a lost passkey: that is the recovery path, SECURITY.md.)
import type { DbHandle } from '../db/client.js';
import type { Prisma } from '../generated/sqlite/client.js';

export type Transaction = Prisma.TransactionClient;

class LastWayToSignIn extends Error {}

/**
 * Runs `remove` (which answers how many rows it removed) and keeps it only when the person still
 * has a way to sign in afterwards. The check and the removal are one transaction that locks the
 * person's row first (PostgreSQL: FOR UPDATE; SQLite: the first write takes the database's write
 * lock before anything is read), so of two removals racing for the last two ways one waits, sees
 * the other's, and is rolled back.
 */
export async function removeUnlessLastWay(db: DbHandle, userId: string, remove: (tx: Transaction) => Promise<number>): Promise<'removed' | 'not_found' | 'last_way'> {
  try {
    return await db.prisma.$transaction(async (tx) => {
      if (db.flavour === 'postgresql') await tx.$queryRawUnsafe('SELECT "id" FROM "User" WHERE "id" = $1 FOR UPDATE', userId);
      if ((await remove(tx)) === 0) return 'not_found' as const;
      if (!(await hasWayToSignIn(tx, userId))) throw new LastWayToSignIn();
      return 'removed' as const;
    });
  } catch (error) {
    if (error instanceof LastWayToSignIn) return 'last_way';
    throw error;
  }
}

async function hasWayToSignIn(tx: Transaction, userId: string): Promise<boolean> {
  const user = await tx.user.findUnique({ where: { id: userId }, select: { passwordHash: true } });
  return !user || user.passwordHash !== null || (await countOtherWays(tx, userId)) > 0;
}

/** The person's passkeys and upstream identities (read only: those tables keep their one writer each). */
export async function countOtherWays(prisma: Transaction, userId: string): Promise<number> {
  return (await prisma.passkey.count({ where: { userId } })) + (await prisma.linkedIdentity.count({ where: { userId } }));
}
