// `gatehouse users list|get|create|update|set-password|disable|enable|reset-mfa|passkeys|remove-passkey|identities|unlink-identity`
// (and invite|invitations|resend-invitation|revoke-invitation, cli/invitations.ts; lockout|unlock|lockouts|unlock-address, cli/lockouts.ts):
// the people who sign in, through the same management layer as the admin API (src/people/service.ts,
// which also sets their groups; their linked upstream identities: src/federation/service.ts). Passwords
// arrive on stdin only (--password-stdin), never as an argument that shells and `ps` would
// show, and must pass the password policy.
import type { Command } from 'commander';
import type { Actor } from '../audit/log.js';
import type { PasskeyView, UserManagementDeps, UserView } from '../people/service.js';
import { withDatabase, type CommandContext } from './context.js';
import { registerInvitations } from './invitations.js';
import { registerLockouts } from './lockouts.js';
import { resolveUserId, USER_ARGUMENT } from './user-lookup.js';
import { formatTable, note, parseWholeNumber, printJson, readPasswordFromStdin, UsageError } from './io.js';

const ACTOR: Actor = { via: 'cli' };
const PASSWORD_STDIN = ['--password-stdin', 'read the password from stdin (e.g. printf %s "$PASSWORD" | …)'] as const;
const PASSWORD_HASH_STDIN = ['--password-hash-stdin', "instead: read an existing bcrypt or argon2id hash from stdin (moving from another identity server; replaced by ours at the next sign-in), e.g. printf %s '$2y$10$…' | …"] as const;

// The management layer (bcrypt among its dependencies) loads only when a users command runs.
const manage = () => import('../people/service.js');
/** Linked upstream identities are federation/'s. */
const linkedIdentities = () => import('../federation/service.js');

async function deps({ config, db, logger }: CommandContext): Promise<UserManagementDeps> {
  const [{ createAuditLog }, { createOutbox }, { accountMailOf }] = await Promise.all([import('../audit/log.js'), import('../mail/outbox.js'), import('../http/mail-renderer.js')]);
  // Mails (a changed address's verification link) are queued here and sent by the running server's outbox worker.
  const mail = accountMailOf(config, createOutbox({ config, db, logger }));
  return { db, audit: createAuditLog(db, logger), bcryptCost: config.passwords.bcryptCost, passwordMinLength: config.passwords.minLength, mail };
}

/** The password or an imported hash, from stdin; asked for before the database is opened. */
async function passwordFrom(options: { passwordStdin?: boolean; passwordHashStdin?: boolean }): Promise<{ password: string } | { password_hash: string }> {
  if (options.passwordStdin && options.passwordHashStdin) throw new UsageError('give --password-stdin or --password-hash-stdin, not both');
  if (options.passwordHashStdin) {
    return { password_hash: await readPasswordFromStdin(process.stdin, { option: '--password-hash-stdin', what: 'password hash', example: "printf %s '$2y$10$…' | gatehouse users create …" }) };
  }
  if (!options.passwordStdin) throw new UsageError('the password is read from stdin only: add --password-stdin and pipe it in, e.g. printf %s "$PASSWORD" | gatehouse users create … (or --password-hash-stdin for an existing hash)');
  return { password: await readPasswordFromStdin() };
}

const userRow = (user: UserView) => [user.id, user.email, user.name ?? '-', user.disabled ? 'disabled' : 'active', user.mfa_enabled ? 'on' : 'off', user.groups.join(',') || '-', user.created_at];
const USER_HEADER = ['ID', 'EMAIL', 'NAME', 'STATE', 'MFA', 'GROUPS', 'CREATED'];

/** `--groups a,b`: names separated by commas (group names have none); empty for none. */
const groupList = (value: string) =>
  value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
const GROUPS_HELP = 'their groups, by name, separated by commas (each must exist: `gatehouse groups create`)';

function printUser(user: UserView, json: boolean | undefined): void {
  if (json) printJson(user);
  else console.log(formatTable(USER_HEADER, [userRow(user)]));
}

interface CreateOptions {
  passwordStdin?: boolean;
  passwordHashStdin?: boolean;
  name?: string;
  givenName?: string;
  familyName?: string;
  username?: string;
  emailVerified?: boolean;
  groups?: string[];
  json?: boolean;
}

/** `--clear` names, and the field each removes. */
const CLEARABLE = { name: 'name', 'given-name': 'given_name', 'family-name': 'family_name', username: 'preferred_username', picture: 'picture', locale: 'locale' } as const;

interface UpdateOptions {
  email?: string;
  emailVerified?: boolean;
  name?: string;
  givenName?: string;
  familyName?: string;
  username?: string;
  picture?: string;
  locale?: string;
  clear?: string[];
  groups?: string[];
  json?: boolean;
}

export function registerUsers(program: Command): void {
  const group = program.command('users').summary('list, create, invite, update and disable users, set passwords, reset MFA, remove passkeys, unlink identities, end lockouts').description('The people who sign in with Gatehouse.');

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
    .description('Create a user. The password comes from stdin and must meet the password policy (PASSWORD_MIN_LENGTH, not a common password, not the email, at most 72 bytes); or an existing bcrypt or argon2id hash comes from stdin (see the README, "Moving from another identity server").')
    .argument('<email>', 'their email, which they sign in with')
    .option(...PASSWORD_STDIN)
    .option(...PASSWORD_HASH_STDIN)
    .option('--name <name>', 'full name (the name claim)')
    .option('--given-name <name>', 'given_name claim')
    .option('--family-name <name>', 'family_name claim')
    .option('--username <name>', 'preferred_username claim')
    .option('--email-verified', 'mark the email as verified (email_verified: true)')
    .option('--groups <names>', `${GROUPS_HELP}; e.g. --groups admins for the first administrator`, groupList)
    .option('--json', 'print the new user as a JSON object')
    .action(async (email: string, options: CreateOptions) => {
      const secret = await passwordFrom(options);
      const input = {
        email,
        ...secret,
        email_verified: options.emailVerified ?? false,
        ...(options.name !== undefined && { name: options.name }),
        ...(options.givenName !== undefined && { given_name: options.givenName }),
        ...(options.familyName !== undefined && { family_name: options.familyName }),
        ...(options.username !== undefined && { preferred_username: options.username }),
        ...(options.groups !== undefined && { groups: options.groups }),
      };
      const user = await withDatabase(async (context) => (await manage()).createUser(await deps(context), input, ACTOR));
      printUser(user, options.json);
    });

  group
    .command('set-password')
    .description('Set a user\'s password (from stdin; the password policy applies), or an existing bcrypt or argon2id hash (from stdin), and sign them out everywhere.')
    .argument(...USER_ARGUMENT)
    .option(...PASSWORD_STDIN)
    .option(...PASSWORD_HASH_STDIN)
    .option('--json', 'print {"id": …, "passwordChanged": true} as JSON')
    .action(async (user: string, options: { passwordStdin?: boolean; passwordHashStdin?: boolean; json?: boolean }) => {
      const secret = await passwordFrom(options);
      const id = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        await (await manage()).setUserPassword(await deps(context), userId, secret, ACTOR);
        return userId;
      });
      if (options.json) printJson({ id, passwordChanged: true });
      else console.log(`password set for ${user}; their sessions have ended`);
    });

  group
    .command('update')
    .description('Change a user\'s email, profile or groups: only the fields given change. Passwords, MFA and disabling have their own commands.')
    .argument(...USER_ARGUMENT)
    .option('--email <email>', 'a new email to sign in with')
    .option('--email-verified', 'mark the email as verified')
    .option('--no-email-verified', 'mark the email as not verified')
    .option('--name <name>', 'full name (the name claim)')
    .option('--given-name <name>', 'given_name claim')
    .option('--family-name <name>', 'family_name claim')
    .option('--username <name>', 'preferred_username claim')
    .option('--picture <url>', 'picture claim (an http(s) URL)')
    .option('--locale <tag>', 'locale claim (e.g. ko-KR)')
    .option('--clear <field>', `remove an optional field (repeat for more): ${Object.keys(CLEARABLE).join(', ')}`, (value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    .option('--groups <names>', `${GROUPS_HELP}: exactly these from now on ("" for none)`, groupList)
    .option('--json', 'print the user as a JSON object')
    .action(async (user: string, options: UpdateOptions) => {
      const changes: Record<string, unknown> = {};
      for (const field of options.clear ?? []) {
        const claim = CLEARABLE[field as keyof typeof CLEARABLE];
        if (!claim) throw new UsageError(`--clear ${field}: not a field that can be removed (${Object.keys(CLEARABLE).join(', ')})`);
        changes[claim] = null;
      }
      const given: Array<[string, unknown]> = [
        ['email', options.email],
        ['email_verified', options.emailVerified],
        ['name', options.name],
        ['given_name', options.givenName],
        ['family_name', options.familyName],
        ['preferred_username', options.username],
        ['picture', options.picture],
        ['locale', options.locale],
        ['groups', options.groups],
      ];
      for (const [field, value] of given) if (value !== undefined) changes[field] = value;
      if (!Object.keys(changes).length) throw new UsageError('name at least one field to change (see --help)');
      printUser(await withDatabase(async (context) => (await manage()).updateUser(await deps(context), await resolveUserId(context, user), changes, ACTOR)), options.json);
    });

  group
    .command('reset-mfa')
    .description('Remove a user\'s second factor (TOTP and recovery codes), e.g. after a lost phone; they sign in with their password and may enrol again.')
    .argument(...USER_ARGUMENT)
    .option('--json', 'print {"id": …, "mfaRemoved": true|false} as JSON')
    .action(async (user: string, options: { json?: boolean }) => {
      const { id, removed } = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        return { id: userId, removed: await (await manage()).resetUserMfa(await deps(context), userId, ACTOR) };
      });
      if (options.json) printJson({ id, mfaRemoved: removed });
      else console.log(removed ? `removed the second factor of ${user}` : `${user} had no second factor; nothing changed`);
    });

  group
    .command('passkeys')
    .description("List a user's passkeys: id, name, when added and last used.")
    .argument(...USER_ARGUMENT)
    .option('--json', 'print a JSON array of passkeys')
    .action(async (user: string, options: { json?: boolean }) => {
      const passkeys = await withDatabase(async (context) => (await manage()).listUserPasskeys(context, await resolveUserId(context, user)));
      if (options.json) {
        printJson(passkeys);
        return;
      }
      const row = (p: PasskeyView) => [p.id, p.name, p.device_type, p.created_at, p.last_used_at ?? 'never'];
      if (passkeys.length) console.log(formatTable(['ID', 'NAME', 'TYPE', 'ADDED', 'LAST USED'], passkeys.map(row)));
      note(`${passkeys.length} passkey${passkeys.length === 1 ? '' : 's'}.`);
    });

  group
    .command('remove-passkey')
    .description("Remove one of a user's passkeys (e.g. a lost or stolen device). A user without a password who loses their last passkey needs `users set-password` to sign in again.")
    .argument(...USER_ARGUMENT)
    .argument('<passkey-id>', 'the passkey, by the id `users passkeys` shows')
    .option('--json', 'print {"id": …, "passkeyRemoved": …} as JSON')
    .action(async (user: string, passkeyId: string, options: { json?: boolean }) => {
      const id = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        await (await manage()).removeUserPasskey(await deps(context), userId, passkeyId, ACTOR);
        return userId;
      });
      if (options.json) printJson({ id, passkeyRemoved: passkeyId });
      else console.log(`removed passkey ${passkeyId} of ${user}`);
    });

  group
    .command('identities')
    .description('List the upstream identities (Google, GitHub, a company SSO …) linked to a user.')
    .argument(...USER_ARGUMENT)
    .option('--json', 'print a JSON array of linked identities')
    .action(async (user: string, options: { json?: boolean }) => {
      const identities = await withDatabase(async (context) => (await linkedIdentities()).listLinkedIdentities(context, await resolveUserId(context, user)));
      if (options.json) return printJson(identities);
      if (identities.length) console.log(formatTable(['PROVIDER', 'SUBJECT', 'EMAIL', 'LINKED', 'LAST USED'], identities.map((i) => [i.provider, i.subject, i.email ?? '-', i.linked_at, i.last_used_at ?? '-'])));
      note(`${identities.length} linked identit${identities.length === 1 ? 'y' : 'ies'}.`);
    });

  group
    .command('unlink-identity')
    .description('Unlink a user\'s identity at an upstream provider: they can no longer sign in through it. Refused when it is their last way to sign in (no password, no other linked identity).')
    .argument(...USER_ARGUMENT)
    .argument('<provider>', 'the identity provider\'s id (see `users identities`)')
    .option('--json', 'print {"id": …, "provider": …, "unlinked": true} as JSON')
    .action(async (user: string, provider: string, options: { json?: boolean }) => {
      const id = await withDatabase(async (context) => {
        const userId = await resolveUserId(context, user);
        await (await linkedIdentities()).unlinkIdentity(await deps(context), userId, provider, ACTOR);
        return userId;
      });
      if (options.json) printJson({ id, provider, unlinked: true });
      else console.log(`unlinked ${provider} from ${user}`);
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

  registerInvitations(group);
  registerLockouts(group);
}
