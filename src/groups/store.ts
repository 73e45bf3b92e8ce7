// Queries on Group and GroupMember: the one writer of both tables. Tokens carry group names
// (the `groups` claim), so a name is unique and looked up exactly as stored; a group keeps its id
// when renamed, and its memberships with it.
//
// Groups sit below people/ (a person's view and claims name their groups), so the few fields of
// a member that a group's views show (email, name) are read here rather than through people/.
import { randomUUID } from 'node:crypto';
import type { DbHandle } from '../db/client.js';
import { dialectOf, hasNul } from '../db/dialect.js';
import { executorOf } from '../db/executor.js';
import type { Group } from '../generated/sqlite/client.js';

export type { Group };

export interface GroupWithCount extends Group {
  memberCount: number;
}

/** Who a member is, as a group's views show them. */
export interface MemberRow {
  userId: string;
  email: string;
  name: string | null;
  addedAt: Date;
}

export function createGroupStore(db: DbHandle) {
  const { prisma } = db;
  // Written in SQL and kept prepared (db/executor.ts): the groups claim reads it for every token
  // and userinfo response with scope groups, in one statement.
  const namesOfUser = { name: 'group_names_of_user', text: dialectOf(db.flavour).sql(`SELECT g."name" FROM "GroupMember" m JOIN "Group" g ON g."id" = m."groupId" WHERE m."userId" = ?`) };
  const sql = executorOf(db);
  const withCounts = async (groups: Group[]): Promise<GroupWithCount[]> => {
    if (groups.length === 0) return [];
    const counts = await prisma.groupMember.groupBy({ by: ['groupId'], where: { groupId: { in: groups.map((g) => g.id) } }, _count: { _all: true } });
    const byId = new Map(counts.map((row) => [row.groupId, row._count._all]));
    return groups.map((group) => ({ ...group, memberCount: byId.get(group.id) ?? 0 }));
  };

  async function peopleById(userIds: readonly string[]): Promise<Map<string, { email: string; name: string | null }>> {
    if (userIds.length === 0) return new Map();
    const rows = await prisma.user.findMany({ where: { id: { in: [...new Set(userIds)] } }, select: { id: true, email: true, name: true } });
    return new Map(rows.map((row) => [row.id, { email: row.email, name: row.name }]));
  }

  return {
    list: async () => withCounts(await prisma.group.findMany({ orderBy: { name: 'asc' } })),
    findByName: (name: string) => prisma.group.findUnique({ where: { name } }),
    findById: (id: string) => prisma.group.findUnique({ where: { id } }),
    /** The groups with these names that exist, in name order. */
    findByNames: (names: readonly string[]) => prisma.group.findMany({ where: { name: { in: [...names] } }, orderBy: { name: 'asc' } }),

    create: (input: { name: string; description: string | null }) => prisma.group.create({ data: { id: randomUUID(), ...input } }),
    /** Renames or redescribes; null when there is no such group. */
    async update(id: string, changes: { name?: string; description?: string | null }): Promise<Group | null> {
      const { count } = await prisma.group.updateMany({ where: { id }, data: changes });
      return count === 1 ? prisma.group.findUnique({ where: { id } }) : null;
    },
    /** Deletes the group and its memberships; how many people were in it (null: no such group). */
    delete: (id: string) =>
      prisma.$transaction(async (tx) => {
        const members = await tx.groupMember.deleteMany({ where: { groupId: id } });
        const { count } = await tx.group.deleteMany({ where: { id } });
        return count === 1 ? members.count : null;
      }),

    /** The ids of a group's members, oldest membership first. */
    memberIds: async (groupId: string) => (await prisma.groupMember.findMany({ where: { groupId }, orderBy: [{ createdAt: 'asc' }, { userId: 'asc' }], select: { userId: true } })).map((row) => row.userId),
    /** The names of the groups a person belongs to, sorted: what the `groups` claim says. */
    async namesOf(userId: string): Promise<string[]> {
      if (hasNul(userId)) return [];
      const rows = await sql.rows<{ name: string }>(namesOfUser, [userId]);
      // Sorted here, not by the database: PostgreSQL's collation may order letters by case otherwise.
      return rows.map((row) => row.name).sort(byName);
    },
    /** The names of the groups of each of these people (absent: in none), each list sorted. */
    async namesOfMany(userIds: readonly string[]): Promise<Map<string, string[]>> {
      const byUser = new Map<string, string[]>();
      if (userIds.length === 0) return byUser;
      const rows = await prisma.groupMember.findMany({ where: { userId: { in: [...userIds] } }, select: { groupId: true, userId: true } });
      if (rows.length === 0) return byUser;
      const groups = await prisma.group.findMany({ where: { id: { in: [...new Set(rows.map((row) => row.groupId))] } }, select: { id: true, name: true } });
      const names = new Map(groups.map((group) => [group.id, group.name]));
      for (const row of rows) {
        const name = names.get(row.groupId);
        if (name !== undefined) byUser.set(row.userId, [...(byUser.get(row.userId) ?? []), name]);
      }
      for (const list of byUser.values()) list.sort(byName);
      return byUser;
    },
    /** Whether the person is in the group of that name (the claim's one prepared statement). */
    async isMember(userId: string, groupName: string): Promise<boolean> {
      return (await this.namesOf(userId)).includes(groupName);
    },

    countMembers: (groupId: string) => prisma.groupMember.count({ where: { groupId } }),
    /** A group's members with their email and name, oldest membership first. */
    async members(groupId: string): Promise<MemberRow[]> {
      const rows = await prisma.groupMember.findMany({ where: { groupId }, orderBy: [{ createdAt: 'asc' }, { userId: 'asc' }], select: { userId: true, createdAt: true } });
      const people = await peopleById(rows.map((row) => row.userId));
      return rows.flatMap((row) => {
        const person = people.get(row.userId);
        return person ? [{ userId: row.userId, email: person.email, name: person.name, addedAt: row.createdAt }] : [];
      });
    },
    /** The people with these ids that exist: their email and name, by id. */
    people: peopleById,

    /** Adds people to a group; the ids that were not members before. */
    async addMembers(groupId: string, userIds: readonly string[]): Promise<string[]> {
      const existing = new Set((await prisma.groupMember.findMany({ where: { groupId, userId: { in: [...userIds] } }, select: { userId: true } })).map((row) => row.userId));
      const added = [...new Set(userIds)].filter((id) => !existing.has(id));
      if (added.length > 0) await prisma.groupMember.createMany({ data: added.map((userId) => ({ groupId, userId })) });
      return added;
    },
    /** Removes people from a group; the ids that were members. */
    async removeMembers(groupId: string, userIds: readonly string[]): Promise<string[]> {
      const present = (await prisma.groupMember.findMany({ where: { groupId, userId: { in: [...userIds] } }, select: { userId: true } })).map((row) => row.userId);
      if (present.length > 0) await prisma.groupMember.deleteMany({ where: { groupId, userId: { in: present } } });
      return present;
    },
    /** Makes a person's groups exactly these (ids); what was added and removed. */
    setGroupsOf: (userId: string, groupIds: readonly string[]) =>
      prisma.$transaction(async (tx) => {
        const current = new Set((await tx.groupMember.findMany({ where: { userId }, select: { groupId: true } })).map((row) => row.groupId));
        const wanted = new Set(groupIds);
        const added = [...wanted].filter((id) => !current.has(id));
        const removed = [...current].filter((id) => !wanted.has(id));
        if (removed.length > 0) await tx.groupMember.deleteMany({ where: { userId, groupId: { in: removed } } });
        if (added.length > 0) await tx.groupMember.createMany({ data: added.map((groupId) => ({ groupId, userId })) });
        return { added, removed };
      }),
  };
}

/** Code-unit order: the same on every database and collation. */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export type GroupStore = ReturnType<typeof createGroupStore>;
