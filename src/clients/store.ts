// Queries on Client: registered OAuth clients, their RFC 7591 metadata stored whole (secrets
// already sealed by the caller, clients/secrets.ts). The one writer of the Client table: the
// engine's adapter, the admin API and CLI (service.ts) and the seed all write through here.
import { dialectOf, hasNul, readJson } from '../db/dialect.js';
import type { DbHandle } from '../db/client.js';
import { executorOf } from '../db/executor.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string };

/** A stored client with its timestamps (what the admin API shows). */
export interface ClientRow {
  id: string;
  metadata: unknown;
  createdAt: Date;
  updatedAt: Date;
}

export function createClientStore(db: DbHandle) {
  const { prisma } = db;
  const sql = executorOf(db);
  // The engine looks a client up on every request that names one (reused for CLIENT_CACHE_TTL):
  // a hand-written statement on the executor, not a query of Prisma's builder.
  const metadataById = { name: 'client_metadata', text: dialectOf(db.flavour).sql('SELECT "metadata" FROM "Client" WHERE "id" = ?') };
  return {
    list: (): Promise<ClientRow[]> => prisma.client.findMany({ orderBy: { id: 'asc' } }),

    get: async (clientId: string): Promise<ClientRow | null> => (hasNul(clientId) ? null : prisma.client.findUnique({ where: { id: clientId } })),

    /** The stored metadata of each of these clients that exists, by client_id. */
    async findMany(clientIds: readonly string[]): Promise<Map<string, unknown>> {
      const rows = await prisma.client.findMany({ where: { id: { in: [...clientIds] } }, select: { id: true, metadata: true } });
      return new Map(rows.map((row) => [row.id, row.metadata]));
    },

    /** Adds a client; a client_id already taken fails with Prisma's unique violation (P2002). */
    insert: (metadata: ClientMetadata): Promise<ClientRow> => prisma.client.create({ data: { id: metadata.client_id, metadata: metadata as object } }),

    /** Replaces an existing client's metadata. */
    replace: (metadata: ClientMetadata): Promise<ClientRow> => prisma.client.update({ where: { id: metadata.client_id }, data: { metadata: metadata as object } }),

    /** Deletes a client; false when there was none. */
    async remove(clientId: string): Promise<boolean> {
      const { count } = await prisma.client.deleteMany({ where: { id: clientId } });
      return count > 0;
    },

    async find(clientId: string): Promise<ClientMetadata | null> {
      if (hasNul(clientId)) return null;
      const [row] = await sql.rows<{ metadata: unknown }>(metadataById, [clientId]);
      return row ? ({ ...readJson<object>(row.metadata), client_id: clientId } as ClientMetadata) : null;
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
