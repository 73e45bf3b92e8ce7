// The groups store on SQLite and PostgreSQL: names are unique, a rename keeps the memberships,
// a person's groups can be set exactly (what was added and removed is reported), and deleting a
// group takes its memberships with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGroupStore } from '../../src/groups/store.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';

describe.each(await flavours())('the groups store on %s', (flavour) => {
  let db: MigratedDb;
  const store = () => createGroupStore(db);

  beforeAll(async () => {
    db = await migratedDb(flavour);
  });
  afterAll(async () => db?.drop());

  it('refuses a second group with the same name (P2002), and keeps memberships across a rename', async () => {
    const staff = await store().create({ name: 'staff', description: 'Everyone employed' });
    await expect(store().create({ name: 'staff', description: null })).rejects.toMatchObject({ code: 'P2002' });
    expect(await store().addMembers(staff.id, ['u1', 'u2', 'u1'])).toEqual(['u1', 'u2']);
    expect(await store().addMembers(staff.id, ['u2', 'u3'])).toEqual(['u3']);
    const renamed = await store().update(staff.id, { name: 'employees' });
    expect(renamed).toMatchObject({ id: staff.id, name: 'employees', description: 'Everyone employed' });
    expect(await store().namesOf('u1')).toEqual(['employees']);
    expect(await store().isMember('u1', 'employees')).toBe(true);
    expect(await store().isMember('u1', 'staff')).toBe(false);
    expect(await store().update('no-such-id', { name: 'x' })).toBeNull();
  });

  it('sets a person\'s groups exactly and lists them by name with member counts', async () => {
    const admins = await store().create({ name: 'admins', description: null });
    const ops = await store().create({ name: 'ops', description: null });
    const employees = (await store().findByName('employees'))!;
    expect(await store().setGroupsOf('u1', [admins.id, ops.id])).toEqual({ added: [admins.id, ops.id], removed: [employees.id] });
    expect(await store().namesOf('u1')).toEqual(['admins', 'ops']);
    expect(await store().setGroupsOf('u1', [ops.id])).toEqual({ added: [], removed: [admins.id] });
    expect((await store().list()).map((g) => [g.name, g.memberCount])).toEqual([['admins', 0], ['employees', 2], ['ops', 1]]);
    expect(await store().removeMembers(employees.id, ['u2', 'u9'])).toEqual(['u2']);
    expect(await store().memberIds(employees.id)).toEqual(['u3']);
  });

  it('deletes a group with its memberships', async () => {
    const ops = (await store().findByName('ops'))!;
    expect(await store().delete(ops.id)).toBe(1);
    expect(await store().delete(ops.id)).toBeNull();
    expect(await store().namesOf('u1')).toEqual([]);
    expect(await db.prisma.groupMember.count({ where: { groupId: ops.id } })).toBe(0);
  });
});
