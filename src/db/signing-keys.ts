// Queries on SigningKey: token signing keys, private halves encrypted by the caller.
import type { Prisma } from './client.js';

export interface StoredKey {
  id: string;
  alg: string;
  generation: number;
  publicJwk: Record<string, unknown>;
  privateJwkEncrypted: string;
  createdAt: Date;
}

export function createSigningKeyQueries(prisma: Prisma) {
  return {
    /** Keys not retired, newest generation first within each algorithm. */
    async listActive(): Promise<StoredKey[]> {
      const rows = await prisma.signingKey.findMany({
        where: { retiredAt: null },
        orderBy: [{ alg: 'asc' }, { generation: 'desc' }],
      });
      return rows as StoredKey[];
    },

    /**
     * Inserts a key unless (alg, generation) is already taken, which is how concurrent first
     * starts agree on one key: the loser's insert is refused and it uses the winner's key.
     */
    async insertIfGenerationFree(key: Omit<StoredKey, 'createdAt'>): Promise<boolean> {
      try {
        await prisma.signingKey.create({ data: { ...key, publicJwk: key.publicJwk as object } });
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === 'P2002') return false;
        throw error;
      }
    },

    async reencrypt(id: string, privateJwkEncrypted: string): Promise<void> {
      await prisma.signingKey.update({ where: { id }, data: { privateJwkEncrypted } });
    },
  };
}

export type SigningKeyQueries = ReturnType<typeof createSigningKeyQueries>;
