// Queries on Setting: per-deployment values created once and shared by every instance.
import type { DbHandle } from './client.js';

export function createSettingStore({ prisma }: DbHandle) {
  return {
    async get(key: string): Promise<string | null> {
      return (await prisma.setting.findUnique({ where: { key } }))?.valueEncrypted ?? null;
    },

    /** Stores the value unless the key exists; returns whichever value is stored (first writer wins). */
    async getOrCreate(key: string, valueEncrypted: string): Promise<string> {
      try {
        await prisma.setting.create({ data: { key, valueEncrypted } });
        return valueEncrypted;
      } catch (error) {
        if ((error as { code?: string }).code !== 'P2002') throw error;
        return (await prisma.setting.findUniqueOrThrow({ where: { key } })).valueEncrypted;
      }
    },

    async set(key: string, valueEncrypted: string): Promise<void> {
      await prisma.setting.update({ where: { key }, data: { valueEncrypted } });
    },
  };
}
