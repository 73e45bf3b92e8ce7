// Managing people: what the admin API (http/admin.ts) and the CLI both call. Profiles use the
// seed file's field schemas (seed/apply.ts), new passwords the one password policy, and bcrypt at
// BCRYPT_COST. Disabling someone, or setting their password, ends their sessions; disabling also
// ends every grant they gave and the tokens issued under it.
//
// Sessions are named by the engine's session `uid`, never by their id: a session's id is the
// value of its cookie, so it must not leave the database.
//
// Every function takes its dependencies as arguments and throws NotFoundError, ConflictError or
// ValidationError (core/errors.ts).
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import { z } from 'zod';
import { createArtifactStore, type Payload } from '../artifacts/store.js';
import { SESSION_SEEN_KEY } from '../artifacts/session-seen.js';
import type { Db } from '../db/client.js';
import { createPasskeyStore } from './passkey-store.js';
import { checkPassword } from './password-policy.js';
import { EMAIL, USER_PROFILE_FIELDS } from './schema.js';
import { createUserStore, PROFILE_CLAIM_COLUMNS, profileClaimsOf, profileColumnsOf, type ProfileClaim, type User, type UserProfile } from './store.js';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { ConflictError, NotFoundError, parseInput, ValidationError } from '../core/errors.js';
import { wholeNumber } from '../core/fields.js';
import type { Prisma } from '../db/client.js';
import { queueEmailChangeMails, type AccountMail } from './email-verification.js';


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

export const PASSWORD = z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).meta({ format: 'password' });

export const CreateUserInput = z
  .strictObject(
    {
      email: EMAIL,
      password: PASSWORD,
      ...USER_PROFILE_FIELDS,
      email_verified: z.boolean({ error: 'must be true or false' }).default(false),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'CreateUser', description: 'The password must meet the password policy (PASSWORD_MIN_LENGTH, not a common password, not the email).' });

const nullable = <T extends Record<string, z.ZodOptional<z.ZodType>>>(shape: T) =>
  Object.fromEntries(Object.entries(shape).map(([key, schema]) => [key, schema.nullable()])) as { [K in keyof T]: z.ZodNullable<T[K]> };

/** Profile changes: the fields given replace the stored ones; `null` clears an optional one. */
export const UpdateUserInput = z
  .strictObject(
    {
      email: EMAIL.optional(),
      email_verified: z.boolean({ error: 'must be true or false' }).optional(),
      ...nullable(USER_PROFILE_FIELDS),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'UpdateUser', description: 'Fields to change; null clears an optional one. Passwords, MFA and disabling have their own routes.' });

export const SetPasswordInput = z.strictObject({ password: PASSWORD }, { error: 'must be an object' }).meta({ id: 'SetPassword' });

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
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'User' });
export type UserView = z.infer<typeof UserView>;

export const UserPage = z
  .object({ users: z.array(UserView), total: z.number().int(), offset: z.number().int(), limit: z.number().int() })
  .meta({ id: 'UserPage' });
export type UserPage = z.infer<typeof UserPage>;

export const GrantView = z
  .object({
    id: z.string(),
    client_id: z.string().nullable(),
    scope: z.string().describe('OpenID scopes granted.'),
    claims: z.array(z.string()),
    resources: z.record(z.string(), z.string()).describe('Scopes granted per resource indicator.'),
    created_at: z.iso.datetime(),
    expires_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Grant' });
export type GrantView = z.infer<typeof GrantView>;

export const SessionView = z
  .object({
    id: z.string().describe("The session's uid (not its cookie value)."),
    signed_in_at: z.iso.datetime().nullable(),
    expires_at: z.iso.datetime().nullable(),
    amr: z.array(z.string()).describe('How the person signed in (RFC 8176: pwd, otp, hwk, user).'),
    acr: z.string().nullable(),
    client_ids: z.array(z.string()).describe('Clients used in this session.'),
    last_seen: z
      .object({ at: z.iso.datetime(), ip: z.string().nullable(), user_agent: z.string().nullable() })
      .nullable()
      .describe('The last sign-in or authorization in this session: when, from which address and browser.'),
  })
  .meta({ id: 'Session' });
export type SessionView = z.infer<typeof SessionView>;

export const PasskeyView = z
  .object({
    id: z.string(),
    name: z.string().describe('What the person calls it.'),
    device_type: z.string().describe('singleDevice, or multiDevice for a passkey synced between devices.'),
    backed_up: z.boolean(),
    created_at: z.iso.datetime(),
    last_used_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Passkey' });
export type PasskeyView = z.infer<typeof PasskeyView>;

export const GrantList = z.object({ grants: z.array(GrantView) }).meta({ id: 'GrantList' });
export const PasskeyList = z.object({ passkeys: z.array(PasskeyView) }).meta({ id: 'PasskeyList' });
export const SessionList = z.object({ sessions: z.array(SessionView) }).meta({ id: 'SessionList' });

/** The engine's payloads, parsed at the edge: only what is shown. */
const GrantPayload = z.looseObject({
  openid: z.looseObject({ scope: z.string().optional(), claims: z.array(z.string()).optional() }).optional(),
  resources: z.record(z.string(), z.string()).optional(),
  exp: z.number().optional(),
});
const SessionPayload = z.looseObject({
  uid: z.string(),
  loginTs: z.number().optional(),
  exp: z.number().optional(),
  amr: z.array(z.string()).optional(),
  acr: z.string().optional(),
  authorizations: z.record(z.string(), z.unknown()).optional(),
  [SESSION_SEEN_KEY]: z.object({ at: z.number(), ip: z.string().nullable(), user_agent: z.string().nullable() }).optional().catch(undefined),
});

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const fromEpoch = (seconds: number | undefined) => (seconds === undefined ? null : new Date(seconds * 1000).toISOString());

function toView(user: User): UserView {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    ...profileClaimsOf(user),
    disabled: user.disabled,
    mfa_enabled: Boolean(user.totpEnabledAt && user.totpSecretEncrypted),
    has_password: user.passwordHash !== null,
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
  };
}

// The schema's profile fields are exactly the claims users.ts maps to columns.
const PROFILE_FIELDS_ARE_CLAIMS: [Exclude<keyof typeof USER_PROFILE_FIELDS, ProfileClaim> | Exclude<ProfileClaim, keyof typeof USER_PROFILE_FIELDS>] extends [never] ? true : never = true;
void PROFILE_FIELDS_ARE_CLAIMS;

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'P2002';

function enforcePolicy(password: string, email: string, minLength: number): void {
  const problem = checkPassword(password, { minLength, email });
  if (problem) throw ValidationError.field('password', problem);
}

async function findUser(db: Db, id: string): Promise<User> {
  const user = await createUserStore(db).findById(id);
  if (!user) throw new NotFoundError(`there is no user ${id}`);
  return user;
}

const origin = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });
const by = actorDetails;

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/** A page of users ordered by email; `search` matches part of the email (any case) or of the name. */
export async function listUsers({ db }: Pick<UserManagementDeps, 'db'>, query: unknown = {}): Promise<UserPage> {
  const { search, offset, limit } = parseInput(ListUsersQuery, query);
  const { users, total } = await createUserStore(db).list({ search, offset, limit });
  return { users: users.map(toView), total, offset, limit };
}

export async function getUser({ db }: Pick<UserManagementDeps, 'db'>, id: string): Promise<UserView> {
  return toView(await findUser(db, id));
}

/** The person with this email (any case); a ValidationError on `field` when there is none (a form named them). */
export async function getUserByEmail({ db }: Pick<UserManagementDeps, 'db'>, email: string, field = 'email'): Promise<UserView> {
  const user = email.trim() ? await createUserStore(db).findByEmail(email.trim()) : null;
  if (!user) throw ValidationError.field(field, email.trim() ? `there is no person with the email ${email.trim()}` : 'is required');
  return toView(user);
}

export async function createUser(deps: UserManagementDeps, input: unknown, actor: Actor): Promise<UserView> {
  const parsed = parseInput(CreateUserInput, input);
  enforcePolicy(parsed.password, parsed.email, deps.passwordMinLength);
  const profile: UserProfile = { email: parsed.email, emailVerified: parsed.email_verified, ...profileColumnsOf(parsed) };
  const passwordHash = await bcrypt.hash(parsed.password, deps.bcryptCost);
  let user: User;
  try {
    // An opaque id: the email can change, the subject never does.
    user = await createUserStore(deps.db).create(randomUUID(), profile, passwordHash);
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a user with email ${parsed.email} already exists`);
    throw error;
  }
  await deps.audit.record({ type: 'user.created', accountId: user.id, ...origin(actor), details: by(actor) });
  return toView(user);
}

export async function updateUser(deps: UserManagementDeps, id: string, input: unknown, actor: Actor): Promise<UserView> {
  const changes = parseInput(UpdateUserInput, input);
  const before = await findUser(deps.db, id);
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
  try {
    user = await deps.db.prisma.$transaction(async (tx) => {
      const handle = { prisma: tx as unknown as Prisma, flavour: deps.db.flavour };
      const updated = await createUserStore(handle).update(id, data);
      if (emailChanged && !updated.emailVerified && deps.mail) await queueEmailChangeMails(handle, deps.mail, updated, before.email);
      return updated;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`a user with email ${changes.email} already exists`);
    throw error;
  }
  if (emailChanged) deps.mail?.outbox.wake();
  await deps.audit.record({ type: 'user.updated', accountId: id, ...origin(actor), details: { ...by(actor), fields: Object.keys(changes) } });
  return toView(user);
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
  return toView(user);
}

/** Sets a new password (the policy applies) and ends the person's sessions. */
export async function setUserPassword(deps: UserManagementDeps, id: string, input: unknown, actor: Actor): Promise<void> {
  const { password } = parseInput(SetPasswordInput, input);
  const user = await findUser(deps.db, id);
  enforcePolicy(password, user.email, deps.passwordMinLength);
  await createUserStore(deps.db).update(id, { passwordHash: await bcrypt.hash(password, deps.bcryptCost) });
  // Whoever else knew the old password loses their sessions with it.
  const sessionsEnded = await createArtifactStore(deps.db).destroyByAccount('Session', id);
  await deps.audit.record({ type: 'password.changed', accountId: id, ...origin(actor), details: { ...by(actor), sessions_ended: sessionsEnded } });
}

/** Removes TOTP and the recovery codes (a lost phone); the person may enrol again. False when there was none. */
export async function resetUserMfa(deps: UserManagementDeps, id: string, actor: Actor): Promise<boolean> {
  await findUser(deps.db, id);
  const removed = await createUserStore(deps.db).resetMfa(id);
  if (removed) await deps.audit.record({ type: 'mfa.removed', accountId: id, ...origin(actor), details: by(actor) });
  return removed;
}

/** The person's passkeys, oldest first. */
export async function listUserPasskeys({ db }: Pick<UserManagementDeps, 'db'>, id: string): Promise<PasskeyView[]> {
  await findUser(db, id);
  return (await createPasskeyStore(db).listByUser(id)).map((passkey) => ({
    id: passkey.id,
    name: passkey.name,
    device_type: passkey.deviceType,
    backed_up: passkey.backedUp,
    created_at: passkey.createdAt.toISOString(),
    last_used_at: passkey.lastUsedAt?.toISOString() ?? null,
  }));
}

/**
 * Removes one of the person's passkeys (a lost or stolen device). Allowed even for the last one of a
 * passkey-only account: the person then signs in again only once an administrator sets a password.
 */
export async function removeUserPasskey(deps: UserManagementDeps, id: string, passkeyId: string, actor: Actor): Promise<void> {
  await findUser(deps.db, id);
  if (!(await createPasskeyStore(deps.db).remove(id, passkeyId))) throw new NotFoundError(`user ${id} has no passkey ${passkeyId}`);
  await deps.audit.record({ type: 'passkey.removed', accountId: id, ...origin(actor), details: { ...by(actor), passkey_id: passkeyId } });
}

/** The person's live grants (consents), oldest first. */
export async function listUserGrants(deps: Pick<UserManagementDeps, 'db' | 'now'>, id: string): Promise<GrantView[]> {
  await findUser(deps.db, id);
  const rows = await createArtifactStore(deps.db).listByAccount('Grant', id, (deps.now ?? (() => new Date()))());
  return rows.map((row) => {
    const grant = GrantPayload.safeParse(row.payload);
    const data = grant.success ? grant.data : {};
    return {
      id: row.id,
      client_id: row.clientId,
      scope: data.openid?.scope ?? '',
      claims: data.openid?.claims ?? [],
      resources: data.resources ?? {},
      created_at: row.createdAt.toISOString(),
      expires_at: fromEpoch(data.exp),
    };
  });
}

/** Ends one grant and every code and token issued under it. */
export async function revokeUserGrant(deps: UserManagementDeps, id: string, grantId: string, actor: Actor): Promise<void> {
  const grants = await listUserGrants(deps, id);
  const grant = grants.find((candidate) => candidate.id === grantId);
  if (!grant) throw new NotFoundError(`user ${id} has no grant ${grantId}`);
  await createArtifactStore(deps.db).destroyByGrantId(grantId);
  await deps.audit.record({ type: 'consent.revoked', accountId: id, clientId: grant.client_id, ...origin(actor), details: { ...by(actor), grant_ids: [grantId] } });
}

/** The person's live sessions, most recent sign-in first. */
export async function listUserSessions(deps: Pick<UserManagementDeps, 'db' | 'now'>, id: string): Promise<SessionView[]> {
  await findUser(deps.db, id);
  const rows = await createArtifactStore(deps.db).listByAccount('Session', id, (deps.now ?? (() => new Date()))());
  const sessions: SessionView[] = [];
  for (const row of rows) {
    const parsed = SessionPayload.safeParse(row.payload as Payload);
    if (!parsed.success) continue;
    const session = parsed.data;
    const seen = session[SESSION_SEEN_KEY];
    sessions.push({
      id: session.uid,
      signed_in_at: fromEpoch(session.loginTs),
      expires_at: fromEpoch(session.exp),
      amr: session.amr ?? [],
      acr: session.acr ?? null,
      client_ids: Object.keys(session.authorizations ?? {}),
      last_seen: seen ? { at: fromEpoch(seen.at) as string, ip: seen.ip, user_agent: seen.user_agent } : null,
    });
  }
  return sessions.sort((a, b) => (b.signed_in_at ?? '').localeCompare(a.signed_in_at ?? ''));
}

/** Signs the person out of one session (by its uid). Grants given in it stay: revoke those separately. */
export async function revokeUserSession(deps: UserManagementDeps, id: string, sessionUid: string, actor: Actor): Promise<void> {
  await findUser(deps.db, id);
  if (!(await createArtifactStore(deps.db).destroyByUid('Session', sessionUid, id))) throw new NotFoundError(`user ${id} has no session ${sessionUid}`);
  await deps.audit.record({ type: 'session.revoked', accountId: id, ...origin(actor), details: { ...by(actor), sessions: 1 } });
}
