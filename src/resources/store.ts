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
  const dialect = dialectOf(db.flavour);
  const byId = { name: 'resource_by_id', text: dialect.sql(`SELECT ${COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "Resource" WHERE "id" = ?`) };
  // Introspection by a resource server (every such request) and a key rotation (its keys' retirement date) read these.
  const introspectors = {
    name: 'resource_introspectors',
    text: dialect.sql(`SELECT "id", "introspectionClients" FROM "Resource" WHERE ${dialect.containsText('"introspectionClients"')}`),
  };
  const longestJwtTtl = { name: 'resource_longest_jwt_ttl', text: `SELECT MAX("accessTokenTtl") AS "ttl" FROM "Resource" WHERE "accessTokenFormat" <> 'opaque'` };
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
      if (!clientId || hasNul(clientId)) return [];
      // The statement finds the lists holding the id anywhere; a resource counts only where it is one of the list's names.
      const rows = await sql.rows<{ id: string; introspectionClients: string }>(introspectors, [clientId]);
      return rows.filter((r) => r.introspectionClients.split(' ').includes(clientId)).map((r) => r.id);
    },

    /** The longest lifetime of a resource's JWT access tokens, in seconds; null without such a resource. */
    async longestJwtAccessTokenTtl(): Promise<number | null> {
      const [row] = await sql.rows<{ ttl: unknown }>(longestJwtTtl, []);
      return row?.ttl == null ? null : Number(row.ttl);
    },
  };
}

export type ResourceStore = ReturnType<typeof createResourceStore>;
