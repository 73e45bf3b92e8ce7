// What a group may be: the admin API, the CLI and the seed file validate with these, and the
// admin API's OpenAPI document is generated from them. A group's name is what tokens carry (the
// `groups` claim), so it is short, exact and case-sensitive, and free of spaces and commas (the
// CLI's `--groups a,b` splits on commas).
import { z } from 'zod';
import { hasNul } from '../db/dialect.js';
import { GROUP_NAME_RULE, groupName, required, text } from '../core/fields.js';

export { GROUP_NAME_PATTERN, GROUP_NAME_RULE } from '../core/fields.js';

export const GroupName = groupName().describe(`The group's name, as tokens carry it (case-sensitive): ${GROUP_NAME_RULE}.`);

export const GROUP_DESCRIPTION = text(500);

/** Group names, each at most once (a person's groups, a user's `groups` field, the seed file). */
export const GroupNames = z
  .array(GroupName, { error: required('must be an array of group names') })
  .max(1000, 'must list at most 1000 groups')
  .refine((names) => new Set(names).size === names.length, 'must not repeat a group');

export const CreateGroupInput = z
  .strictObject({ name: GroupName, description: GROUP_DESCRIPTION.optional() }, { error: 'must be an object' })
  .meta({ id: 'CreateGroup', description: 'A new group, with no members.' });

export const UpdateGroupInput = z
  .strictObject({ name: GroupName.optional(), description: GROUP_DESCRIPTION.nullable().optional() }, { error: 'must be an object' })
  .meta({ id: 'UpdateGroup', description: 'Fields to change; null clears the description. A rename keeps the members; tokens carry the new name from the next one issued.' });

// No NUL: PostgreSQL refuses one in a query, and no id has one.
const USER_ID = z
  .string({ error: 'must be a user id' })
  .min(1, 'must be a user id')
  .max(255, 'must be a user id')
  .refine((id) => !hasNul(id), 'must be a user id');

export const GroupMembersInput = z
  .strictObject(
    {
      user_ids: z
        .array(USER_ID, { error: required('must be an array of user ids') })
        .min(1, 'must list at least one user id')
        .max(1000, 'must list at most 1000 user ids'),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'GroupMembersChange', description: 'The people (by id, their subject) to add to or remove from the group.' });

export const SetUserGroupsInput = z
  .strictObject({ groups: GroupNames }, { error: 'must be an object' })
  .meta({ id: 'SetUserGroups', description: "The person's groups, exactly (names; an empty list removes them from every group). Every group must exist." });

export const GroupView = z
  .object({
    id: z.string(),
    name: z.string().describe('What tokens carry in the groups claim.'),
    description: z.string().nullable(),
    member_count: z.number().int(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Group' });
export type GroupView = z.infer<typeof GroupView>;

export const GroupMemberView = z
  .object({
    id: z.string().describe("The person's id (their subject)."),
    email: z.string(),
    name: z.string().nullable(),
    added_at: z.iso.datetime(),
  })
  .meta({ id: 'GroupMember' });
export type GroupMemberView = z.infer<typeof GroupMemberView>;

export const GroupList = z.object({ groups: z.array(GroupView) }).meta({ id: 'GroupList' });
export const GroupMemberList = z.object({ members: z.array(GroupMemberView) }).meta({ id: 'GroupMemberList' });
export const UserGroupList = z.object({ groups: z.array(z.string()).describe('Group names, sorted.') }).meta({ id: 'UserGroupList' });

/** A seed file's group: its description is declared whole (left out, it is cleared). */
export const GroupEntry = z.strictObject({ name: GroupName, description: GROUP_DESCRIPTION.optional() }, { error: 'must be an object with a name (and a description)' });
