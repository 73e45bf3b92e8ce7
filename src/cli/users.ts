// `gatehouse users list|get|create|set-password|disable|enable`: the people who sign in,
// through the same management layer as the admin API (src/oidc/manage-users.ts). Passwords
// arrive on stdin only (--password-stdin), never as an argument that shells and `ps` would
// show, and must pass the password policy.
import type { Command } from 'commander';
import { NotFoundError } from '../oidc/manage-errors.js';
import type { Actor, UserManagementDeps, UserView } from '../oidc/manage-users.js';
import { withDatabase, type CommandContext } from './context.js';
import { formatTable, note, parseWholeNumber, printJson, readPasswordFromStdin, UsageError } from './io.js';

const ACTOR: Actor = { via: 'cli' };
const USER_ARGUMENT = ['<user>', 'the user: their id or their email'] as const;
const PASSWORD_STDIN = ['--password-stdin', 'read the password from stdin (e.g. printf %s "$PASSWORD" | …)'] as const;

// The management layer (bcrypt among its dependencies) loads only when a users command runs.
const manage = () => import('../oidc/manage-users.js');

async function deps({ config, db, logger }: CommandContext): Promise<UserManagementDeps> {
  const { createAuditLog } = await import('../oidc/audit.js');
  return { db, audit: createAuditLog(db, logger), bcryptCost: config.bcryptCost, passwordMinLength: config.passwordMinLength };
}

/** A user named by id or, when it has an @, by email. */
async function resolveUserId({ db }: CommandContext, user: string): Promise<string> {
  if (!user.includes('@')) return user;
  const { createUserQueries } = await import('../db/users.js');
  const found = await createUserQueries(db).findByEmail(user);
  if (!found) throw new NotFoundError(`there is no user with email ${user}`);
  return found.id;
}

/** The password, from stdin; asked for before the database is opened. */
async function passwordFrom(options: { passwordStdin?: boolean }): Promise<string> {
  if (!options.passwordStdin) throw new UsageError('the password is read from stdin only: add --password-stdin and pipe it in, e.g. printf %s "$PASSWORD" | gatehouse users create …');
  return readPasswordFromStdin();
}

const userRow = (user: UserView) => [user.id, user.email, user.name ?? '-', user.disabled ? 'disabled' : 'active', user.mfa_enabled ? 'on' : 'off', user.created_at];
const USER_HEADER = ['ID', 'EMAIL', 'NAME', 'STATE', 'MFA', 'CREATED'];

function printUser(user: UserView, json: boolean | undefined): void {
  if (json) printJson(user);
  else console.log(formatTable(USER_HEADER, [userRow(user)]));
}

interface CreateOptions {
  passwordStdin?: boolean;
  name?: string;
  givenName?: string;
  familyName?: string;
  username?: string;
  emailVerified?: boolean;
  json?: boolean;
}

export function registerUsers(program: Command): void {
  const group = program.command('users').summary('list, create and disable users, set passwords').description('The people who sign in with Gatehouse.');

  group
    .command('list')
    .description('List users by email.')
    .option('--search <text>', 'only those whose email or name contains this')
    .option('--offset <n>', 'skip this many', parseWholeNumber(0, 1_000_000), 0)
    .option('--limit <n>', 'at most n users (1-200)', parseWholeNumber(1, 200), 50)
    .option('--json', 'print a JSON array of users')
    .action(async (options: { search?: string; offset: number; limit: number; json?: boolean }) => {
      const page = await withDatabase(async (context) => (await manage()).listUsers(context, { search: options.search, offset: options.offset, limit: options.limit }));
      if (options.json) {
        printJson(page.users);
        return;
      }
      if (page.users.length) console.log(formatTable(USER_HEADER, page.users.map(userRow)));
      note(`${page.users.length} of ${page.total} user${page.total === 1 ? '' : 's'}${page.offset ? ` from ${page.offset}` : ''}.`);
    });

  group
    .command('get')
    .description('Show one user.')
    .argument(...USER_ARGUMENT)
    .option('--json', 'print the user as a JSON object')
    .action(async (user: string, options: { json?: boolean }) => {
      printUser(await withDatabase(async (context) => (await manage()).getUser(context, await resolveUserId(context, user))), options.json);
    });

  group
    .command('create')
    .description('Create a user. The password comes from stdin and must meet the password policy (PASSWORD_MIN_LENGTH, not a common password, not the email, at most 72 bytes).')
    .argument('<email>', 'their email, which they sign in with')
    .option(...PASSWORD_STDIN)
    .option('--name <name>', 'full name (the name claim)')
    .option('--given-name <name>', 'given_name claim')
    .option('--family-name <name>', 'family_name claim')
    .option('--username <name>', 'preferred_username claim')
    .option('--email-verified', 'mark the email as verified (email_verified: true)')
    .option('--json', 'print the new user as a JSON object')
    .action(async (email: string, options: CreateOptions) => {
      const password = await passwordFrom(options);
      const input = {
        email,
        password,
        email_verified: options.emailVerified ?? false,
        ...(options.name !== undefined && { name: options.name }),
        ...(options.givenName !== undefined && { given_name: options.givenName }),
        ...(options.familyName !== undefined && { family_name: options.familyName }),
        ...(options.username !== undefined && { preferred_username: options.username }),
      };
      const user = await withDatabase(async (context) => (await manage()).createUser(await deps(context), input, ACTOR));
      printUser(user, options.json);
    });

  group
    .command('set-password')
    .description('Set a user\'s password (from stdin; the password policy applies) and sign them out everywhere.')
    .argument(...USER_ARGUMENT)
    .option(...PASSWORD_STDIN)
    .option('--json', 'print {"id": …, "passwordChanged": true} as JSON')
    .action(async (user: string, options: { passwordStdin?: boolean; json?: boolean }) => {
      const password = await passwordFrom(options);
      const id = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        await (await manage()).setUserPassword(await deps(context), userId, { password }, ACTOR);
        return userId;
      });
      if (options.json) printJson({ id, passwordChanged: true });
      else console.log(`password set for ${user}; their sessions have ended`);
    });

  for (const [name, disabled, description] of [
    ['disable', true, 'Disable a user: they can no longer sign in, and their sessions, grants and tokens end at once.'],
    ['enable', false, 'Enable a disabled user again (they sign in afresh; ended grants stay ended).'],
  ] as const) {
    group
      .command(name)
      .description(description)
      .argument(...USER_ARGUMENT)
      .option('--json', 'print the user as a JSON object')
      .action(async (user: string, options: { json?: boolean }) => {
        printUser(await withDatabase(async (context) => (await manage()).setUserDisabled(await deps(context), await resolveUserId(context, user), { disabled }, ACTOR)), options.json);
      });
  }
}
