// Queries on Resource: the APIs access tokens can be issued for (RFC 8707).
import type { DbHandle } from '../db/client.js';
import type { Resource } from '../generated/sqlite/client.js';

export type { Resource };

export type ResourceInput = Pick<Resource, 'id' | 'name' | 'scope' | 'accessTokenFormat' | 'accessTokenTtl' | 'introspectionClients'>;

export function createResourceStore({ prisma }: DbHandle) {
  return {
    find: (id: string) => prisma.resource.findUnique({ where: { id } }),

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
