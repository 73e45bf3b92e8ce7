// Managing people: what the admin API (http/admin.ts) and the CLI both call. Profiles use the
// seed file's field schemas (seed/apply.ts), new passwords the one password policy, and bcrypt at
// BCRYPT_COST, or an existing hash given instead (password-input.ts). Disabling someone, or setting their password, ends their sessions; disabling also
// ends every grant they gave and the tokens issued under it. A person's groups (groups/) are part
// of their view and may be given when they are created or changed; each must exist already.
// Their sessions, grants and passkeys are in access.ts (re-exported here).
//
// Every function takes its dependencies as arguments and throws NotFoundError, ConflictError or
// ValidationError (core/errors.ts).
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createArtifactStore } from '../artifacts/store.js';
import type { Db, DbHandle } from '../db/client.js';
import { GroupNames } from '../groups/schema.js';
import { groupsNamed, recordUserGroupsChange, writeUserGroups } from '../groups/service.js';
import { createGroupStore } from '../groups/store.js';
import { hashToStore, PASSWORD_OR_HASH, SetPasswordInput } from './password-input.js';
import { checkOneSecret, describeHash } from './password-hashes.js';
import { EMAIL, USER_PROFILE_FIELDS } from './schema.js';
import { createUserStore, PROFILE_CLAIM_COLUMNS, profileClaimsOf, profileColumnsOf, type ProfileClaim, type User, type UserProfile } from './store.js';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { ConflictError, NotFoundError, parseInput, ValidationError } from '../core/errors.js';
import { wholeNumber } from '../core/fields.js';
import type { Prisma } from '../db/client.js';
import { queueEmailChangeMails, type AccountMail } from './email-verification.js';

export { SetPasswordInput };
export { GrantList, GrantView, listUserGrants, listUserPasskeys, listUserSessions, PasskeyList, PasskeyView, removeUserPasskey, revokeUserGrant, revokeUserSession, SessionList, SessionView } from './access.js';

export interface UserManagementDeps {
  db: Db;
  audit: AuditLog;
  bcryptCost: number;
  /** PASSWORD_MIN_LENGTH. */
  passwordMinLength: number;
  /** Mails for an address change (a verification link, a notice to the old address); absent, none are sent. */
  mail?: AccountMail | undefined;
  now?: () => Date;
}

// ---------------------------------------------------------------------------------------------
// Schemas (the admin API's OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------

const USER_GROUPS = GroupNames.describe('Names of groups the person is in (each must exist); on a change, exactly these.');

export const CreateUserInput = z
  .strictObject(
    {
      email: EMAIL,
      ...PASSWORD_OR_HASH,
      ...USER_PROFILE_FIELDS,
      email_verified: z.boolean({ error: 'must be true or false' }).default(false),
      groups: USER_GROUPS.optional(),
    },
    { error: 'must be an object' },
  )
  .superRefine(checkOneSecret, { when: () => true })
  .meta({ id: 'CreateUser', description: 'Either a password, which must meet the password policy (PASSWORD_MIN_LENGTH, not a common password, not the email), or password_hash: an existing bcrypt or argon2id hash from another identity server. Every group named must exist.' });

const nullable = <T extends Record<string, z.ZodOptional<z.ZodType>>>(shape: T) =>
  Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.nullable()])) as { [K in keyof T]: z.ZodNullable<T[K]> };

/** Profile changes: the fields given replace the stored ones; `null` clears an optional one. */
export const UpdateUserInput = z
  .strictObject(
    {
      email: EMAIL.optional(),
      email_verified: z.boolean({ error: 'must be true or false' }).optional(),
      ...nullable(USER_PROFILE_FIELDS),
      groups: USER_GROUPS.optional(),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'UpdateUser', description: 'Fields to change; null clears an optional one; groups, when given, become exactly those named. Passwords, MFA and disabling have their own routes.' });

export const SetDisabledInput = z.strictObject({ disabled: z.boolean({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be true or false') }) }, { error: 'must be an object' }).meta({ id: 'SetDisabled' });

/** Query of the user list: `search` matches the email or the name; `offset`/`limit` page through, by email. */
export const ListUsersQuery = z
  .strictObject(
    {
      search: z
        .string({ error: 'must be a string' })
        .trim()
        .max(254, 'must be at most 254 characters')
        .optional()
        .describe('Part of the email (any case) or of the name (as written on PostgreSQL; ASCII in any case on SQLite); % and _ match only themselves.'),
      offset: wholeNumber(0, 1_000_000, 0),
      limit: wholeNumber(1, 200, 50),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'ListUsersQuery' });

export const UserView = z
  .object({
    id: z.string().describe('The stable subject (sub) of this person.'),
    email: z.string(),
    email_verified: z.boolean(),
    name: z.string().nullable(),
    given_name: z.string().nullable(),
    family_name: z.string().nullable(),
    preferred_username: z.string().nullable(),
    picture: z.string().nullable(),
    locale: z.string().nullable(),
    disabled: z.boolean(),
    mfa_enabled: z.boolean(),
    has_password: z.boolean().describe('False for a passkey-only account (it signs in with a passkey alone).'),
    groups: z.array(z.string()).describe("Names of the person's groups, sorted."),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'User' });
export type UserView = z.infer<typeof UserView>;

export const UserPage = z
  .object({ users: z.array(UserView), total: z.number().int(), offset: z.number().int(), limit: z.number().int() })
  .meta({ id: 'UserPage' });
export type UserPage = z.infer<typeof UserPage>;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function toView(user: User, groups: string[]): UserView {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    ...profileClaimsOf(user),
    disabled: user.disabled,
    mfa_enabled: Boolean(user.totpEnabledAt && user.totpSecretEncrypted),
    has_password: user.passwordHash !== null,
    groups,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

// The schema's profile fields are exactly the claims users.ts maps to columns.
const PROFILE_FIELDS_ARE_CLAIMS: [Exclude<keyof typeof USER_PROFILE_FIELDS, ProfileClaim> | Exclude<ProfileClaim, keyof typeof USER_PROFILE_FIELDS>] extends [never] ? true : never = true;
void PROFILE_FIELDS_ARE_CLAIMS;

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';

async function findUser(db: Db, id: string): Promise<User> {
  const user = await createUserStore(db).findById(id);
  if (!user) throw new NotFoundError(`there is no user ${id}`);
  return user;
}

const viewOf = async (db: DbHandle, user: User) => toView(user, await createGroupStore(db).namesOf(user.id));
const transactionOf = (db: Db, tx: unknown): DbHandle => ({ prisma: tx as Prisma, flavour: db.flavour });

const origin = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });
const by = actorDetails;
/** Marks an imported hash in the audit trail (its scheme and cost, never the hash). */
const imported = (given: { password_hash?: string | undefined }) => (given.password_hash ? { imported_hash: describeHash(given.password_hash) } : {});

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/** A page of users ordered by email; `search` matches part of the email (any case) or of the name. */
export async function listUsers({ db }: Pick<UserManagementDeps, 'db'>, query: unknown = {}): Promise<UserPage> {
  const { search, offset, limit } = parseInput(ListUsersQuery, query);
  const { users, total } = await createUserStore(db).list({ search, offset, limit });
  const groups = await createGroupStore(db).namesOfMany(users.map((user) => user.id));
  return { users: users.map((user) => toView(user, groups.get(user.id) ?? [])), total, offset, limit };
}

export async function getUser({ db }: Pick<UserManagementDeps, 'db'>, id: string): Promise<UserView> {
  return viewOf(db, await findUser(db, id));
}

/** The person with this email (any case); a ValidationError on `field` when there is none (a form named them). */
export async function getUserByEmail({ db }: Pick<UserManagementDeps, 'db'>, email: string, field = 'email'): Promise<UserView> {
  const user = email.trim() ? await createUserStore(db).findByEmail(email.trim()) : null;
  if (!user) throw ValidationError.field(field, email.trim() ? `there is no person with the email ${email.trim()}` : 'is required');
  return viewOf(db, user);
}

export async function createUser(deps: UserManagementDeps, input: unknown, actor: Actor): Promise<UserView> {
  const parsed = parseInput(CreateUserInput, input);
  const passwordHash = await hashToStore(parsed, parsed.email, deps);
  const profile: UserProfile = { email: parsed.email, emailVerified: parsed.email_verified, ...profileColumnsOf(parsed) };
  const groups = await groupsNamed(deps.db, parsed.groups ?? []);
  let user: User;
  let joined: { added: string[]; removed: string[] };
  try {
    [user, joined] = await deps.db.prisma.$transaction(async (tx) => {
      // An opaque id: the email can change, the subject never does.
      const created = await createUserStore(transactionOf(deps.db, tx)).create(randomUUID(), profile, passwordHash);
      return [created, await writeUserGroups(transactionOf(deps.db, tx), created.id, groups)] as const;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a user with email ${parsed.email} already exists`);
    throw error;
  }
  await deps.audit.record({ type: 'user.created', accountId: user.id, ...origin(actor), details: { ...by(actor), ...imported(parsed) } });
  await recordUserGroupsChange(deps.audit, user.id, joined, actor);
  return toView(user, joined.added);
}

export async function updateUser(deps: UserManagementDeps, id: string, input: unknown, actor: Actor): Promise<UserView> {
  const { groups: groupNames, ...changes } = parseInput(UpdateUserInput, input);
  const before = await findUser(deps.db, id);
  const groups = groupNames === undefined ? undefined : await groupsNamed(deps.db, groupNames);
  const data: Partial<UserProfile> = {};
  if (changes.email !== undefined) data.email = changes.email;
  if (changes.email_verified !== undefined) data.emailVerified = changes.email_verified;
  // A new address is unproven until its link is followed, unless the administrator says it is verified.
  const emailChanged = changes.email !== undefined && changes.email !== before.email;
  if (emailChanged && changes.email_verified === undefined) data.emailVerified = false;
  for (const [claim, column] of Object.entries(PROFILE_CLAIM_COLUMNS)) {
    const value = changes[claim as ProfileClaim];
    if (value !== undefined) data[column] = value;
  }
  let user: User;
  let regrouped: { added: string[]; removed: string[] } | undefined;
  try {
    [user, regrouped] = await deps.db.prisma.$transaction(async (tx) => {
      const handle = transactionOf(deps.db, tx);
      const updated = await createUserStore(handle).update(id, data);
      if (emailChanged && !updated.emailVerified && deps.mail) await queueEmailChangeMails(handle, deps.mail, updated, before.email);
      return [updated, groups && (await writeUserGroups(handle, id, groups))] as const;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a user with email ${changes.email} already exists`);
    throw error;
  }
  if (emailChanged) deps.mail?.outbox.wake();
  if (Object.keys(changes).length > 0 || !regrouped) await deps.audit.record({ type: 'user.updated', accountId: id, ...origin(actor), details: { ...by(actor), fields: Object.keys(changes) } });
  if (regrouped) await recordUserGroupsChange(deps.audit, id, regrouped, actor);
  return viewOf(deps.db, user);
}

/**
 * Disables (or enables) a person. Disabled, they cannot sign in (the sign-in page says only that
 * the email or password is wrong), and their sessions, grants and tokens end at once.
 */
export async function setUserDisabled(deps: UserManagementDeps, id: string, input: unknown, actor: Actor): Promise<UserView> {
  const { disabled } = parseInput(SetDisabledInput, input);
  await findUser(deps.db, id);
  const user = await createUserStore(deps.db).update(id, { disabled });
  const details: Record<string, unknown> = by(actor);
  if (disabled) {
    const artifacts = createArtifactStore(deps.db);
    details.sessions_ended = await artifacts.destroyByAccount('Session', id);
    const grants = await artifacts.listByAccount('Grant', id, (deps.now ?? (() => new Date()))());
    for (const grant of grants) await artifacts.destroyByGrantId(grant.id);
    details.grants_ended = grants.length;
  }
  await deps.audit.record({ type: disabled ? 'user.disabled' : 'user.enabled', accountId: id, ...origin(actor), details });
  return viewOf(deps.db, user);
}

/** Sets a new password (the policy applies) or an imported hash, and ends the person's sessions. */
export async function setUserPassword(deps: UserManagementDeps, id: string, input: unknown, actor: Actor): Promise<void> {
  const given = parseInput(SetPasswordInput, input);
  const user = await findUser(deps.db, id);
  await createUserStore(deps.db).update(id, { passwordHash: await hashToStore(given, user.email, deps) });
  // Whoever else knew the old password loses their sessions with it.
  const sessionsEnded = await createArtifactStore(deps.db).destroyByAccount('Session', id);
  await deps.audit.record({ type: 'password.changed', accountId: id, ...origin(actor), details: { ...by(actor), sessions_ended: sessionsEnded, ...imported(given) } });
}

/** Removes TOTP and the recovery codes (a lost phone); the person may enrol again. False when there was none. */
export async function resetUserMfa(deps: UserManagementDeps, id: string, actor: Actor): Promise<boolean> {
  await findUser(deps.db, id);
  const removed = await createUserStore(deps.db).resetMfa(id);
  if (removed) await deps.audit.record({ type: 'mfa.removed', accountId: id, ...origin(actor), details: by(actor) });
  return removed;
}

