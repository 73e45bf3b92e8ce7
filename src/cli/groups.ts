// `gatehouse groups list|get|create|update|delete|members|add-members|remove-members`: named groups
// of people, which tokens carry in the `groups` claim, by the same management layer as the admin
// API (src/groups/service.ts). People are named by id or email, as in `gatehouse users`; a
// person's own groups are set with `users create|update --groups`.
import type { Command } from 'commander';
import type { Actor } from '../audit/log.js';
import type { GroupManagementDeps, GroupMemberView, GroupView } from '../groups/service.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, printJson, UsageError } from './io.js';
import { resolveUserId } from './user-lookup.js';

const ACTOR: Actor = { via: 'cli' };
const NAME_ARGUMENT = ['<name>', "the group's name (exact, case-sensitive)"] as const;
const USERS_ARGUMENT = ['<users...>', 'the people: each their id or their email'] as const;

// The management layer loads only when a groups command runs.
const manage = () => import('../groups/service.js');

async function deps({ db, logger }: CommandContext): Promise<GroupManagementDeps> {
  const { createAuditLog } = await import('../audit/log.js');
  return { db, audit: createAuditLog(db, logger) };
}

const GROUP_HEADER = ['NAME', 'MEMBERS', 'DESCRIPTION'];
const groupRow = (group: GroupView) => [group.name, String(group.member_count), group.description ?? '-'];

function printGroup(group: GroupView, json: boolean | undefined): void {
  if (json) printJson(group);
  else console.log(formatTable(GROUP_HEADER, [groupRow(group)]));
}

function printMembers(name: string, members: GroupMemberView[], json: boolean | undefined): void {
  if (json) return printJson(members);
  if (members.length) console.log(formatTable(['ID', 'EMAIL', 'NAME', 'ADDED'], members.map((m) => [m.id, m.email, m.name ?? '-', m.added_at])));
  note(`${members.length} member${members.length === 1 ? '' : 's'} in ${name}.`);
}

/** Adds or removes the people named (ids or emails) and prints the group's members after. */
function changeMembers(change: 'addGroupMembers' | 'removeGroupMembers') {
  return async (name: string, users: string[], options: { json?: boolean }) => {
    const members = await withDatabase(async (context) => {
      const userIds = [];
      for (const user of users) userIds.push(await resolveUserId(context, user));
      return (await manage())[change](await deps(context), name, { user_ids: userIds }, ACTOR);
    });
    printMembers(name, members, options.json);
  };
}

export function registerGroups(program: Command): void {
  const group = program
    .command('groups')
    .summary('list, create, update and delete groups, and add or remove their members')
    .description('Named groups of people. Tokens carry the names of a person\'s groups in the groups claim (scope "groups"); a change takes effect at their next token. Names: 1 to 64 letters, digits and . _ : @ -, starting with a letter or digit; case-sensitive.');

  group
    .command('list')
    .description('List the groups by name, with how many people are in each.')
    .option('--json', 'print a JSON array of groups')
    .action(async (options: { json?: boolean }) => {
      const groups = await withDatabase(async (context) => (await manage()).listGroups(context));
      if (options.json) return printJson(groups);
      if (groups.length) console.log(formatTable(GROUP_HEADER, groups.map(groupRow)));
      note(`${groups.length} group${groups.length === 1 ? '' : 's'}.`);
    });

  group
    .command('get')
    .description('Show one group.')
    .argument(...NAME_ARGUMENT)
    .option('--json', 'print the group as a JSON object')
    .action(async (name: string, options: { json?: boolean }) => {
      printGroup(await withDatabase(async (context) => (await manage()).getGroup(context, name)), options.json);
    });

  group
    .command('create')
    .description('Create a group, with no members. Groups are never created implicitly (not by `users create --groups` either): create `admins` before making someone an administrator.')
    .argument(...NAME_ARGUMENT)
    .option('--description <text>', 'what the group is for')
    .option('--json', 'print the new group as a JSON object')
    .action(async (name: string, options: { description?: string; json?: boolean }) => {
      const input = { name, ...(options.description !== undefined && { description: options.description }) };
      printGroup(await withDatabase(async (context) => (await manage()).createGroup(await deps(context), input, ACTOR)), options.json);
    });

  group
    .command('update')
    .description('Rename a group or change its description. Its members stay; their next token carries the new name.')
    .argument(...NAME_ARGUMENT)
    .option('--name <new-name>', 'a new name')
    .option('--description <text>', 'a new description')
    .option('--clear-description', 'remove the description')
    .option('--json', 'print the group as a JSON object')
    .action(async (name: string, options: { name?: string; description?: string; clearDescription?: boolean; json?: boolean }) => {
      if (options.description !== undefined && options.clearDescription) throw new UsageError('give --description or --clear-description, not both');
      const changes = {
        ...(options.name !== undefined && { name: options.name }),
        ...(options.description !== undefined && { description: options.description }),
        ...(options.clearDescription && { description: null }),
      };
      if (!Object.keys(changes).length) throw new UsageError('name at least one change: --name, --description or --clear-description');
      printGroup(await withDatabase(async (context) => (await manage()).updateGroup(await deps(context), name, changes, ACTOR)), options.json);
    });

  group
    .command('delete')
    .description('Delete a group and every membership of it; tokens stop carrying it from the next one.')
    .argument(...NAME_ARGUMENT)
    .option('--json', 'print {"name": …, "deleted": true} as JSON')
    .action(async (name: string, options: { json?: boolean }) => {
      await withDatabase(async (context) => (await manage()).deleteGroup(await deps(context), name, ACTOR));
      if (options.json) printJson({ name, deleted: true });
      else console.log(`deleted group ${name}`);
    });

  group
    .command('members')
    .description("List a group's members, oldest membership first.")
    .argument(...NAME_ARGUMENT)
    .option('--json', 'print a JSON array of members')
    .action(async (name: string, options: { json?: boolean }) => {
      printMembers(name, await withDatabase(async (context) => (await manage()).listGroupMembers(context, name)), options.json);
    });

  group
    .command('add-members')
    .description('Add people to a group (those already in it stay as they are), then list its members.')
    .argument(...NAME_ARGUMENT)
    .argument(...USERS_ARGUMENT)
    .option('--json', 'print a JSON array of the members after')
    .action(changeMembers('addGroupMembers'));

  group
    .command('remove-members')
    .description('Remove people from a group (those not in it are left alone), then list its members.')
    .argument(...NAME_ARGUMENT)
    .argument(...USERS_ARGUMENT)
    .option('--json', 'print a JSON array of the members after')
    .action(changeMembers('removeGroupMembers'));
}
