// Managing groups, on SQLite and PostgreSQL: the management layer the admin API, the CLI and the
// console share. Names are validated and unique, unknown people and groups are refused naming the
// field, a person's groups are set exactly, and every change is audited with its actor (and the
// person, for memberships).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import {
  addGroupMembers,
  createGroup,
  deleteGroup,
  getGroup,
  GroupMemberView,
  GroupView,
  listGroupMembers,
  listGroups,
  removeGroupMembers,
  setUserGroups,
  updateGroup,
  userGroups,
  type GroupManagementDeps,
} from '../../src/groups/service.js';
import { flavours, migratedDb, type MigratedDb } from '../helpers/databases.js';
import { newPerson } from '../helpers/fixtures.js';
import { addUserTo } from '../helpers/gatehouse.js';

describe.each(await flavours())('group management on %s', (flavour) => {
  let db: MigratedDb;
  let deps: GroupManagementDeps;
  const actor = { via: 'admin' as const, clientId: 'ops-console', ip: '127.0.0.1' };
  const people: { id: string; email: string; name: string }[] = [];

  beforeAll(async () => {
    db = await migratedDb(flavour);
    deps = { db, audit: createAuditLog(db, createLogger({ logLevel: 'silent' })) };
    for (let i = 0; i < 3; i++) {
      const person = newPerson();
      people.push({ ...person, id: await addUserTo(db, person) });
    }
  });
  afterAll(async () => db?.drop());

  const order = (id: string) => people.findIndex((person) => person.id === id);
  const issuesOf = async (promise: Promise<unknown>) => {
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  };
  const events = (types: string[]) => db.prisma.auditEvent.findMany({ where: { type: { in: types as never[] } }, orderBy: { at: 'asc' } });

  it('creates groups with valid, unique, case-sensitive names', async () => {
    const admins = await createGroup(deps, { name: 'admins', description: 'Run Gatehouse' }, actor);
    expect(GroupView.parse(admins)).toMatchObject({ name: 'admins', description: 'Run Gatehouse', member_count: 0 });
    await createGroup(deps, { name: 'Admins' }, actor);
    await createGroup(deps, { name: 'team:ops@example.com' }, actor);
    await expect(createGroup(deps, { name: 'admins' }, actor)).rejects.toThrow(new ConflictError('a group named admins already exists'));
    expect(await issuesOf(createGroup(deps, { name: 'two words', colour: 'red' }, actor))).toEqual([expect.stringMatching(/^name: must be 1 to 64 characters/), 'colour: is not a known field']);
    expect(await issuesOf(createGroup(deps, { name: '-leading' }, actor))).toEqual([expect.stringMatching(/^name: must be 1 to 64/)]);
    expect(await issuesOf(createGroup(deps, { name: 'x'.repeat(65) }, actor))).toEqual([expect.stringMatching(/^name: must be 1 to 64/)]);
    expect(await issuesOf(createGroup(deps, {}, actor))).toEqual(['name: is required']);
    expect((await listGroups(deps)).map((group) => group.name)).toEqual(expect.arrayContaining(['admins', 'Admins', 'team:ops@example.com']));
    await expect(getGroup(deps, 'ADMINS')).rejects.toThrow(new NotFoundError('there is no group ADMINS'));
  });

  it('adds and removes members by id, refusing unknown people by field, and counts them', async () => {
    const [ann, ben] = people as [(typeof people)[0], (typeof people)[0]];
    const members = await addGroupMembers(deps, 'admins', { user_ids: [ann.id, ben.id, ann.id] }, actor);
    // Added together, they share a time: their order is then by id.
    expect(members.map((member) => GroupMemberView.parse(member)).sort((a, b) => order(a.id) - order(b.id))).toEqual([
      { id: ann.id, email: ann.email, name: ann.name, added_at: expect.any(String) },
      { id: ben.id, email: ben.email, name: ben.name, added_at: expect.any(String) },
    ]);
    expect(await issuesOf(addGroupMembers(deps, 'admins', { user_ids: [ann.id, 'nobody'] }, actor))).toEqual(['user_ids.1: there is no user nobody']);
    expect(await issuesOf(addGroupMembers(deps, 'admins', { user_ids: [] }, actor))).toEqual(['user_ids: must list at least one user id']);
    await expect(addGroupMembers(deps, 'nope', { user_ids: [ann.id] }, actor)).rejects.toBeInstanceOf(NotFoundError);
    expect((await getGroup(deps, 'admins')).member_count).toBe(2);
    expect(await removeGroupMembers(deps, 'admins', { user_ids: [ben.id, 'nobody'] }, actor)).toEqual([expect.objectContaining({ id: ann.id })]);
    expect(await listGroupMembers(deps, 'admins')).toEqual([expect.objectContaining({ id: ann.id })]);

    const added = await events(['group.members_added']);
    expect(added.map((event) => [event.accountId, event.details])).toEqual(expect.arrayContaining([
      [ann.id, { via: 'admin', by: 'ops-console', group: 'admins' }],
      [ben.id, { via: 'admin', by: 'ops-console', group: 'admins' }],
    ]));
    expect(added).toHaveLength(2);
    expect(added[0]?.ip).toBe('127.0.0.1');
    expect((await events(['group.members_removed'])).map((event) => event.accountId)).toEqual([ben.id]);
  });

  it("sets a person's groups exactly, by name, naming every group that does not exist", async () => {
    const [, ben] = people as [(typeof people)[0], (typeof people)[0]];
    expect(await setUserGroups(deps, ben.id, { groups: ['team:ops@example.com', 'Admins', 'admins'] }, actor)).toEqual(['Admins', 'admins', 'team:ops@example.com']);
    expect(await userGroups(deps, ben.id)).toEqual(['Admins', 'admins', 'team:ops@example.com']);
    expect(await setUserGroups(deps, ben.id, { groups: ['admins'] }, actor)).toEqual(['admins']);
    expect(await issuesOf(setUserGroups(deps, ben.id, { groups: ['admins', 'ghosts', 'ADMINS'] }, actor))).toEqual(['groups.1: there is no group ghosts', 'groups.2: there is no group ADMINS']);
    expect(await issuesOf(setUserGroups(deps, ben.id, { groups: ['admins', 'admins'] }, actor))).toEqual(['groups: must not repeat a group']);
    expect(await userGroups(deps, ben.id)).toEqual(['admins']);
    await expect(userGroups(deps, 'nobody')).rejects.toThrow(new NotFoundError('there is no user nobody'));
    await expect(setUserGroups(deps, 'nobody', { groups: [] }, actor)).rejects.toBeInstanceOf(NotFoundError);
    // Setting the same groups again changes nothing and records nothing.
    await setUserGroups(deps, ben.id, { groups: ['admins'] }, actor);

    const changed = await events(['user.groups_changed']);
    expect(changed.map((event) => [event.accountId, event.details])).toEqual([
      [ben.id, { via: 'admin', by: 'ops-console', added: ['Admins', 'admins', 'team:ops@example.com'], removed: [] }],
      [ben.id, { via: 'admin', by: 'ops-console', added: [], removed: ['Admins', 'team:ops@example.com'] }],
    ]);
  });

  it('renames a group keeping its members, refuses a name taken, and deletes it with its memberships', async () => {
    const [ann, ben] = people as [(typeof people)[0], (typeof people)[0]];
    await expect(updateGroup(deps, 'Admins', { name: 'admins' }, actor)).rejects.toBeInstanceOf(ConflictError);
    const renamed = await updateGroup(deps, 'admins', { name: 'operators', description: null }, actor);
    expect(renamed).toMatchObject({ name: 'operators', description: null, member_count: 2 });
    expect(await userGroups(deps, ann.id)).toEqual(['operators']);
    expect(await issuesOf(updateGroup(deps, 'operators', { description: '' }, actor))).toEqual(['description: must not be empty']);
    await expect(updateGroup(deps, 'admins', {}, actor)).rejects.toBeInstanceOf(NotFoundError);

    await deleteGroup(deps, 'operators', actor);
    await expect(getGroup(deps, 'operators')).rejects.toBeInstanceOf(NotFoundError);
    await expect(deleteGroup(deps, 'operators', actor)).rejects.toBeInstanceOf(NotFoundError);
    expect(await userGroups(deps, ben.id)).toEqual([]);
    expect(await db.prisma.groupMember.count({ where: { userId: { in: [ann.id, ben.id] } } })).toBe(0);

    const trail = await events(['group.created', 'group.updated', 'group.deleted']);
    expect(trail.map((event) => [event.type, event.accountId, event.details])).toEqual([
      ['group.created', null, { via: 'admin', by: 'ops-console', group: 'admins' }],
      ['group.created', null, { via: 'admin', by: 'ops-console', group: 'Admins' }],
      ['group.created', null, { via: 'admin', by: 'ops-console', group: 'team:ops@example.com' }],
      ['group.updated', null, { via: 'admin', by: 'ops-console', group: 'operators', previous_name: 'admins', fields: ['name', 'description'] }],
      ['group.deleted', null, { via: 'admin', by: 'ops-console', group: 'operators', members_removed: 2 }],
    ]);
  });
});
