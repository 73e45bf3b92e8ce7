// Managing groups and who is in them: what the admin API (http/admin-routes.ts), the CLI
// (`gatehouse groups`) and the console call; people/service.ts uses it for a person's `groups`.
// Tokens carry group names (the `groups` claim, read fresh for every token), so every change here
// takes effect at the next token or userinfo request, and every change is audited with its actor:
// membership events name the person (accountId) and the group.
//
// Every function takes its dependencies as arguments and throws NotFoundError, ConflictError or
// ValidationError (core/errors.ts).
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { ConflictError, NotFoundError, parseInput, ValidationError, type FieldIssue } from '../core/errors.js';
import { hasNul } from '../db/dialect.js';
import type { Db, DbHandle } from '../db/client.js';
import { CreateGroupInput, GroupMembersInput, GroupName, SetUserGroupsInput, UpdateGroupInput, type GroupMemberView, type GroupView } from './schema.js';
import { createGroupStore, type Group, type MemberRow } from './store.js';

export { GroupMemberView, GroupName, GroupView } from './schema.js';

export interface GroupManagementDeps {
  db: Db;
  audit: AuditLog;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';
const origin = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });
const by = actorDetails;

function toView(group: Group, memberCount: number): GroupView {
  return {
    id: group.id,
    name: group.name,
    description: group.description,
    member_count: memberCount,
    created_at: group.createdAt.toISOString(),
    updated_at: group.updatedAt.toISOString(),
  };
}

const toMemberView = (row: MemberRow): GroupMemberView => ({ id: row.userId, email: row.email, name: row.name, added_at: row.addedAt.toISOString() });

async function findGroup(db: DbHandle, name: string): Promise<Group> {
  // A name no group can have (from a URL path) is not looked up: PostgreSQL refuses a NUL in a query.
  const group = GroupName.safeParse(name).success ? await createGroupStore(db).findByName(name) : null;
  if (!group) throw new NotFoundError(`there is no group ${name}`);
  return group;
}

async function expectUser(db: DbHandle, userId: string): Promise<void> {
  if (hasNul(userId) || !(await createGroupStore(db).people([userId])).has(userId)) throw new NotFoundError(`there is no user ${userId}`);
}

/**
 * The groups with these names, in the order given; a ValidationError names each one that does
 * not exist (`groups.1: there is no group ops`). Groups are never created implicitly: a typo in a
 * name must not mint a group that grants access somewhere.
 */
export async function groupsNamed(db: DbHandle, names: readonly string[], field = 'groups'): Promise<Group[]> {
  const found = new Map((await createGroupStore(db).findByNames(names)).map((group) => [group.name, group]));
  const issues: FieldIssue[] = names.flatMap((name, index) => (found.has(name) ? [] : [{ path: `${field}.${index}`, message: `there is no group ${name}` }]));
  if (issues.length) throw ValidationError.of(issues);
  return names.map((name) => found.get(name) as Group);
}

/**
 * Makes a person's groups exactly `groups` through `handle` (the database or a caller's
 * transaction), then returns the names added and removed, for recordUserGroupsChange.
 */
export async function writeUserGroups(handle: DbHandle, userId: string, groups: readonly Group[]): Promise<{ added: string[]; removed: string[] }> {
  const store = createGroupStore(handle);
  const before = await store.namesOf(userId);
  await store.setGroupsOf(userId, groups.map((group) => group.id));
  const after = new Set(groups.map((group) => group.name));
  return { added: [...after].filter((name) => !before.includes(name)).sort(), removed: before.filter((name) => !after.has(name)) };
}

/** Audits a change of one person's groups (nothing when nothing changed). */
export async function recordUserGroupsChange(audit: AuditLog, userId: string, change: { added: string[]; removed: string[] }, actor: Actor): Promise<void> {
  if (change.added.length === 0 && change.removed.length === 0) return;
  await audit.record({ type: 'user.groups_changed', accountId: userId, ...origin(actor), details: { ...by(actor), added: change.added, removed: change.removed } });
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/** Every group, by name, with how many people are in it. */
export async function listGroups({ db }: Pick<GroupManagementDeps, 'db'>): Promise<GroupView[]> {
  return (await createGroupStore(db).list()).map((group) => toView(group, group.memberCount));
}

export async function getGroup({ db }: Pick<GroupManagementDeps, 'db'>, name: string): Promise<GroupView> {
  const group = await findGroup(db, name);
  return toView(group, await createGroupStore(db).countMembers(group.id));
}

/** The group's members, oldest membership first. */
export async function listGroupMembers({ db }: Pick<GroupManagementDeps, 'db'>, name: string): Promise<GroupMemberView[]> {
  const group = await findGroup(db, name);
  return (await createGroupStore(db).members(group.id)).map(toMemberView);
}

export async function createGroup(deps: GroupManagementDeps, input: unknown, actor: Actor): Promise<GroupView> {
  const { name, description } = parseInput(CreateGroupInput, input);
  let group: Group;
  try {
    group = await createGroupStore(deps.db).create({ name, description: description ?? null });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a group named ${name} already exists`);
    throw error;
  }
  await deps.audit.record({ type: 'group.created', ...origin(actor), details: { ...by(actor), group: name } });
  return toView(group, 0);
}

/** Renames or redescribes a group; its members stay, and their tokens carry the new name from the next one. */
export async function updateGroup(deps: GroupManagementDeps, name: string, input: unknown, actor: Actor): Promise<GroupView> {
  const changes = parseInput(UpdateGroupInput, input);
  const group = await findGroup(deps.db, name);
  const store = createGroupStore(deps.db);
  let updated: Group | null;
  try {
    updated = await store.update(group.id, changes);
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a group named ${changes.name} already exists`);
    throw error;
  }
  if (!updated) throw new NotFoundError(`there is no group ${name}`);
  const renamed = updated.name !== name ? { previous_name: name } : {};
  await deps.audit.record({ type: 'group.updated', ...origin(actor), details: { ...by(actor), group: updated.name, ...renamed, fields: Object.keys(changes) } });
  return toView(updated, await store.countMembers(group.id));
}

/** Deletes a group and every membership of it. */
export async function deleteGroup(deps: GroupManagementDeps, name: string, actor: Actor): Promise<void> {
  const group = await findGroup(deps.db, name);
  const members = await createGroupStore(deps.db).delete(group.id);
  if (members === null) throw new NotFoundError(`there is no group ${name}`);
  await deps.audit.record({ type: 'group.deleted', ...origin(actor), details: { ...by(actor), group: name, members_removed: members } });
}

/** Adds people (by id) to a group; those already in it stay as they are. Every id must be a person's. */
export async function addGroupMembers(deps: GroupManagementDeps, name: string, input: unknown, actor: Actor): Promise<GroupMemberView[]> {
  const { user_ids: userIds } = parseInput(GroupMembersInput, input);
  const group = await findGroup(deps.db, name);
  const store = createGroupStore(deps.db);
  const people = await store.people(userIds);
  const issues: FieldIssue[] = userIds.flatMap((id, index) => (people.has(id) ? [] : [{ path: `user_ids.${index}`, message: `there is no user ${id}` }]));
  if (issues.length) throw ValidationError.of(issues);
  const added = await store.addMembers(group.id, userIds);
  for (const userId of added) await deps.audit.record({ type: 'group.members_added', accountId: userId, ...origin(actor), details: { ...by(actor), group: name } });
  return (await store.members(group.id)).map(toMemberView);
}

/** Removes people (by id) from a group; ids that are not members are left alone. */
export async function removeGroupMembers(deps: GroupManagementDeps, name: string, input: unknown, actor: Actor): Promise<GroupMemberView[]> {
  const { user_ids: userIds } = parseInput(GroupMembersInput, input);
  const group = await findGroup(deps.db, name);
  const store = createGroupStore(deps.db);
  const removed = await store.removeMembers(group.id, userIds);
  for (const userId of removed) await deps.audit.record({ type: 'group.members_removed', accountId: userId, ...origin(actor), details: { ...by(actor), group: name } });
  return (await store.members(group.id)).map(toMemberView);
}

/** The names of a person's groups, sorted: what their `groups` claim holds before a client's allowed_groups. */
export async function userGroups({ db }: Pick<GroupManagementDeps, 'db'>, userId: string): Promise<string[]> {
  await expectUser(db, userId);
  return createGroupStore(db).namesOf(userId);
}

/** Makes a person's groups exactly the ones named (each must exist); their names, sorted. */
export async function setUserGroups(deps: GroupManagementDeps, userId: string, input: unknown, actor: Actor): Promise<string[]> {
  const { groups: names } = parseInput(SetUserGroupsInput, input);
  await expectUser(deps.db, userId);
  const groups = await groupsNamed(deps.db, names);
  await recordUserGroupsChange(deps.audit, userId, await writeUserGroups(deps.db, userId, groups), actor);
  return createGroupStore(deps.db).namesOf(userId);
}
