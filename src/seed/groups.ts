// The seed file's groups (apply.ts runs these in its one transaction): the top-level `groups`
// list declares each group with its description, whole (a description left out is cleared), and
// a user's `groups` makes their memberships exactly those names. A user without `groups` keeps
// theirs, and groups the file does not list are left alone. A name a user lists must be declared
// in the file or exist already: a seed file never creates a group by naming it on a user.
import { ValidationError, type FieldIssue } from '../core/errors.js';
import type { DbHandle } from '../db/client.js';
import { writeUserGroups } from '../groups/service.js';
import { createGroupStore, type Group } from '../groups/store.js';
import { createUserStore } from '../people/store.js';
import type { SeedChanges } from './apply.js';
import type { SeedGroup, SeedUser } from './schema.js';

/** One seeded person whose groups changed (for the audit trail). */
export interface SeedMembershipChange {
  userId: string;
  email: string;
  added: string[];
  removed: string[];
}

export async function seedGroups(handle: DbHandle, groups: readonly SeedGroup[]): Promise<SeedChanges> {
  const store = createGroupStore(handle);
  const changes: SeedChanges = { created: [], updated: [], unchanged: [] };
  const existing = new Map((await store.findByNames(groups.map((group) => group.name))).map((group) => [group.name, group]));
  for (const { name, description = null } of groups) {
    const row = existing.get(name);
    if (!row) {
      await store.create({ name, description });
      changes.created.push(name);
    } else if (row.description !== description) {
      await store.update(row.id, { description });
      changes.updated.push(name);
    } else {
      changes.unchanged.push(name);
    }
  }
  return changes;
}

/**
 * Sets the groups of every user entry that lists them (after seedGroups and the users are
 * written). A name that is no group throws a ValidationError naming `users[i].groups[j]`, and
 * the seed's transaction then writes nothing.
 */
export async function seedUserGroups(handle: DbHandle, users: readonly SeedUser[]): Promise<SeedMembershipChange[]> {
  const listing = users.flatMap((user, index) => (user.groups ? [{ user, index, names: user.groups }] : []));
  if (listing.length === 0) return [];
  const found = new Map((await createGroupStore(handle).findByNames([...new Set(listing.flatMap((entry) => entry.names))])).map((group) => [group.name, group]));
  const issues: FieldIssue[] = listing.flatMap(({ index, names }) =>
    names.flatMap((name, position) => (found.has(name) ? [] : [{ path: `users[${index}].groups[${position}]`, message: `there is no group ${name} (declare it in "groups" or create it first)` }])),
  );
  if (issues.length) throw ValidationError.of(issues);
  const ids = new Map((await createUserStore(handle).findManyByEmail(listing.map((entry) => entry.user.email))).map((row) => [row.email, row.id]));
  const changed: SeedMembershipChange[] = [];
  for (const { user, names } of listing) {
    const userId = ids.get(user.email) as string;
    const change = await writeUserGroups(handle, userId, names.map((name) => found.get(name) as Group));
    if (change.added.length || change.removed.length) changed.push({ userId, email: user.email, ...change });
  }
  return changed;
}
