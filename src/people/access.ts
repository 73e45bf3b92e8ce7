// What a person has signed in with and given out, as an administrator sees and ends it: sessions,
// grants (consents) and passkeys. Called by the admin API and the CLI beside service.ts (which
// re-exports these), with the same dependencies and typed errors.
//
// Sessions are named by the engine's session `uid`, never by their id: a session's id is the
// value of its cookie, so it must not leave the database.
import { z } from 'zod';
import { createArtifactStore, type Payload } from '../artifacts/store.js';
import { SESSION_SEEN_KEY } from '../artifacts/session-seen.js';
import { actorDetails, type Actor } from '../audit/log.js';
import { NotFoundError } from '../core/errors.js';
import type { DbHandle } from '../db/client.js';
import { createPasskeyStore } from './passkey-store.js';
import type { UserManagementDeps } from './service.js';
import { createUserStore } from './store.js';

// ---------------------------------------------------------------------------------------------
// Schemas (the admin API's OpenAPI document is generated from these)
// ---------------------------------------------------------------------------------------------

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

async function expectUser(db: DbHandle, id: string): Promise<void> {
  if (!(await createUserStore(db).findById(id))) throw new NotFoundError(`there is no user ${id}`);
}

const origin = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });
const by = actorDetails;

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/** The person's passkeys, oldest first. */
export async function listUserPasskeys({ db }: Pick<UserManagementDeps, 'db'>, id: string): Promise<PasskeyView[]> {
  await expectUser(db, id);
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
  await expectUser(deps.db, id);
  if (!(await createPasskeyStore(deps.db).remove(id, passkeyId))) throw new NotFoundError(`user ${id} has no passkey ${passkeyId}`);
  await deps.audit.record({ type: 'passkey.removed', accountId: id, ...origin(actor), details: { ...by(actor), passkey_id: passkeyId } });
}

/** The person's live grants (consents), oldest first. */
export async function listUserGrants(deps: Pick<UserManagementDeps, 'db' | 'now'>, id: string): Promise<GrantView[]> {
  await expectUser(deps.db, id);
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
  await expectUser(deps.db, id);
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
  await expectUser(deps.db, id);
  if (!(await createArtifactStore(deps.db).destroyByUid('Session', sessionUid, id))) throw new NotFoundError(`user ${id} has no session ${sessionUid}`);
  await deps.audit.record({ type: 'session.revoked', accountId: id, ...origin(actor), details: { ...by(actor), sessions: 1 } });
}
