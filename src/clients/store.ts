// Queries on Client: registered OAuth clients, their RFC 7591 metadata stored whole.
import { hasNul } from '../artifacts/store.js';
import type { DbHandle } from '../db/client.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string };

export function createClientStore({ prisma }: DbHandle) {
  return {
    async find(clientId: string): Promise<ClientMetadata | null> {
      if (hasNul(clientId)) return null;
      const row = await prisma.client.findUnique({ where: { id: clientId }, select: { metadata: true } });
      return row ? ({ ...(row.metadata as object), client_id: clientId } as ClientMetadata) : null;
    },

    async save(metadata: ClientMetadata): Promise<'created' | 'updated' | 'unchanged'> {
      const id = metadata.client_id;
      const existing = await prisma.client.findUnique({ where: { id }, select: { metadata: true } });
      if (existing && sameJson(existing.metadata, metadata)) return 'unchanged';
      await prisma.client.upsert({ where: { id }, create: { id, metadata: metadata as object }, update: { metadata: metadata as object } });
      return existing ? 'updated' : 'created';
    },

    async destroy(clientId: string): Promise<void> {
      await prisma.client.deleteMany({ where: { id: clientId } });
    },
  };
}

/** Deep equality that ignores key order (PostgreSQL's jsonb reorders keys). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export type ClientStore = ReturnType<typeof createClientStore>;
