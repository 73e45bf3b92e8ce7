// Queries on Resource: the APIs access tokens can be issued for (RFC 8707).
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul, readTime } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import type { Resource } from '../generated/sqlite/client.js';

export type { Resource };

export type ResourceInput = Pick<Resource, 'id' | 'name' | 'scope' | 'accessTokenFormat' | 'accessTokenTtl' | 'introspectionClients'>;

const COLUMNS = ['id', 'name', 'scope', 'accessTokenFormat', 'accessTokenTtl', 'introspectionClients', 'createdAt', 'updatedAt'] as const;

export function createResourceStore(db: DbHandle) {
  const { prisma } = db;
  // Written in SQL and kept prepared: the engine looks the resource up on every token request that names one (db/executor.ts).
  const sql = executorOf(db);
  const byId = { name: 'resource_by_id', text: dialectOf(db.flavour).sql(`SELECT ${COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "Resource" WHERE "id" = ?`) };
  return {
    async find(id: string): Promise<Resource | null> {
      if (hasNul(id)) return null;
      const [raw] = await sql.rows<Record<(typeof COLUMNS)[number], unknown>>(byId, [id]);
      if (!raw) return null;
      return { ...(raw as unknown as Resource), accessTokenTtl: Number(raw.accessTokenTtl), createdAt: readTime(raw.createdAt) as Date, updatedAt: readTime(raw.updatedAt) as Date };
    },

    list: () => prisma.resource.findMany({ orderBy: { id: 'asc' } }),

    save: (resource: ResourceInput) => prisma.resource.upsert({ where: { id: resource.id }, create: resource, update: resource }),

    /** Resources whose tokens the given client may introspect. */
    async introspectableBy(clientId: string): Promise<string[]> {
      const rows = await prisma.resource.findMany({ where: { introspectionClients: { contains: clientId } }, select: { id: true, introspectionClients: true } });
      return rows.filter((r) => r.introspectionClients.split(' ').includes(clientId)).map((r) => r.id);
    },
  };
}

export type ResourceStore = ReturnType<typeof createResourceStore>;
