// Invitations: an administrator (admin API, CLI, seed file) invites an email address; the mail's
// link lets the person choose a password or set up a passkey, which creates their account with
// the address verified (they proved it by opening the mail). An invitation is a row of the AccountLink table
// (link-store.ts, purpose `invitation`): its `userId` is the id the account will have, and names
// the invitation in the admin API and the CLI; sending it again issues a new link under that id,
// which supersedes the old one. Its state is that of its newest link: pending, accepted
// (used), revoked, or expired. An address that already has an account cannot be invited (409),
// nor one with a pending invitation (send that one again instead). Accepting one is
// invitation-acceptance.ts.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { actorDetails, type Actor, type AuditLog } from '../audit/log.js';
import { createClientStore } from '../clients/store.js';
import { ConflictError, NotFoundError, parseInput, ValidationError } from '../core/errors.js';
import type { Db, DbHandle, Prisma } from '../db/client.js';
import type { AccountMail } from './email-verification.js';
import { createLinkStore } from './link-store.js';
import { EMAIL, USER_PROFILE_FIELDS } from './schema.js';
import { createUserStore, normalizeEmail } from './store.js';

export interface InvitationDeps {
  db: Db;
  audit: AuditLog;
  /** Where the mail goes; INVITATION_TTL is `mail.invitationTtlSeconds`. */
  mail: AccountMail;
  now?: () => Date;
}

export const INVITATION_STATES = ['pending', 'accepted', 'expired', 'revoked'] as const;
export type InvitationState = (typeof INVITATION_STATES)[number];

export const InviteInput = z
  .strictObject(
    {
      email: EMAIL,
      name: USER_PROFILE_FIELDS.name,
      client_id: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional().describe('The app the invitation is for: accepting it lands the person signed in there (its initiate_login_uri, else its client_uri; without either, the account page).'),
      locale: USER_PROFILE_FIELDS.locale.describe('The language of the mail (en or ko) and of the account; the default language otherwise.'),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'Invite', description: 'Invite an email address that has no account yet.' });
export type InviteInput = z.infer<typeof InviteInput>;

/** An invitation in the seed file (seed/schema.ts). */
export const InvitationEntry = z.strictObject({ email: EMAIL, name: USER_PROFILE_FIELDS.name, client_id: InviteInput.shape.client_id, locale: USER_PROFILE_FIELDS.locale }, { error: 'must be an invitation object' });
export type InvitationEntry = z.infer<typeof InvitationEntry>;

export const InvitationQuery = z
  .strictObject({ status: z.enum(INVITATION_STATES, { error: `must be one of ${INVITATION_STATES.join(', ')}` }).optional() }, { error: 'must be an object' })
  .meta({ id: 'InvitationQuery' });

export const InvitationView = z
  .object({
    id: z.string().describe('The invitation, and the subject (sub) of the account it creates.'),
    email: z.string(),
    name: z.string().nullable(),
    client_id: z.string().nullable(),
    status: z.enum(INVITATION_STATES),
    created_at: z.iso.datetime().describe('When its current link was sent.'),
    expires_at: z.iso.datetime(),
    accepted_at: z.iso.datetime().nullable(),
    revoked_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'Invitation' });
export type InvitationView = z.infer<typeof InvitationView>;
export const InvitationList = z.object({ invitations: z.array(InvitationView) }).meta({ id: 'InvitationList' });

/** The AccountLink purpose of invitations (link-store.ts). */
export const INVITATION_PURPOSE = 'invitation';
const PURPOSE = INVITATION_PURPOSE;
/** What an invitation's link keeps besides its address (accepting it reads them too: invitation-acceptance.ts). */
export const InvitationDetails = z.object({ name: z.string().optional(), client_id: z.string().optional(), locale: z.string().optional() }).catch({});
const Details = InvitationDetails;
type Details = z.infer<typeof Details>;

interface LinkRow {
  userId: string;
  email: string;
  details: unknown;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
}

const stateOf = (row: LinkRow, now: Date): InvitationState => (row.usedAt ? 'accepted' : row.revokedAt ? 'revoked' : row.expiresAt <= now ? 'expired' : 'pending');

function toView(row: LinkRow, now: Date): InvitationView {
  const details = Details.parse(row.details);
  return {
    id: row.userId,
    email: row.email,
    name: details.name ?? null,
    client_id: details.client_id ?? null,
    status: stateOf(row, now),
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt.toISOString(),
    accepted_at: row.usedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

const LINK_COLUMNS = { userId: true, email: true, details: true, createdAt: true, expiresAt: true, usedAt: true, revokedAt: true } as const;

/** Each invitation's newest link (a resend supersedes the older ones), newest first. */
async function newestLinks(db: DbHandle, where: { userId?: string; email?: string } = {}): Promise<LinkRow[]> {
  const rows = await db.prisma.accountLink.findMany({ where: { purpose: PURPOSE, ...where }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], select: LINK_COLUMNS });
  const seen = new Set<string>();
  return rows.filter((row) => !seen.has(row.userId) && seen.add(row.userId));
}

async function findInvitation(db: DbHandle, id: string): Promise<LinkRow> {
  const [row] = await newestLinks(db, { userId: id });
  if (!row) throw new NotFoundError(`there is no invitation ${id}`);
  return row;
}

const by = actorDetails;
const origin = (actor: Actor) => ({ ip: actor.ip, userAgent: actor.userAgent });

/** In `handle`'s transaction: a new link under `id` (older ones revoked) and its mail. */
async function sendLink(handle: DbHandle, mail: AccountMail, id: string, email: string, details: Details, at: Date): Promise<void> {
  const expiresAt = new Date(at.getTime() + mail.invitationTtlSeconds * 1000);
  const stored = Object.fromEntries(Object.entries(details).filter(([, value]) => value !== undefined)) as Record<string, string>;
  const secret = await createLinkStore(handle).issue({ purpose: PURPOSE, userId: id, email, details: stored, expiresAt }, at);
  const link = `${mail.issuer}/invitation?token=${secret}`;
  const days = Math.max(1, Math.round(mail.invitationTtlSeconds / 86_400));
  const message = await mail.composeMail({ template: 'invitation', to: email, language: details.locale, locals: { name: details.name, email, link, days } });
  await mail.outbox.queueMail(handle, message, PURPOSE);
}

async function refuseTaken(db: DbHandle, email: string): Promise<void> {
  if (await createUserStore(db).findByEmail(email)) throw new ConflictError(`a user with email ${email} already exists`);
}

export async function inviteUser({ db, audit, mail, now = () => new Date() }: InvitationDeps, input: unknown, actor: Actor): Promise<InvitationView> {
  const parsed = parseInput(InviteInput, input);
  const email = normalizeEmail(parsed.email);
  if (parsed.client_id !== undefined && !(await createClientStore(db).get(parsed.client_id))) throw ValidationError.field('client_id', `there is no client ${parsed.client_id}`);
  await refuseTaken(db, email);
  const at = now();
  if ((await newestLinks(db, { email })).some((row) => stateOf(row, at) === 'pending')) {
    throw new ConflictError(`${email} has a pending invitation already: send it again instead`);
  }
  const id = randomUUID();
  const details: Details = { name: parsed.name, client_id: parsed.client_id, locale: parsed.locale };
  await db.prisma.$transaction((tx) => sendLink({ prisma: tx as unknown as Prisma, flavour: db.flavour }, mail, id, email, details, at));
  mail.outbox.wake();
  await audit.record({ type: 'invitation.created', accountId: id, ...origin(actor), details: { ...by(actor), email, client_id: parsed.client_id } });
  return toView(await findInvitation(db, id), at);
}

export async function listInvitations({ db, now = () => new Date() }: Pick<InvitationDeps, 'db' | 'now'>, query: unknown = {}): Promise<InvitationView[]> {
  const { status } = parseInput(InvitationQuery, query);
  const at = now();
  return (await newestLinks(db)).map((row) => toView(row, at)).filter((view) => !status || view.status === status);
}

export async function revokeInvitation({ db, audit, now = () => new Date() }: Pick<InvitationDeps, 'db' | 'audit' | 'now'>, id: string, actor: Actor): Promise<InvitationView> {
  const row = await findInvitation(db, id);
  const at = now();
  const { count } = await db.prisma.accountLink.updateMany({ where: { purpose: PURPOSE, userId: id, usedAt: null, revokedAt: null }, data: { revokedAt: at } });
  if (count === 0) throw new ConflictError(`invitation ${id} is ${stateOf(row, at)} already`);
  await audit.record({ type: 'invitation.revoked', accountId: id, ...origin(actor), details: { ...by(actor), email: row.email } });
  return toView(await findInvitation(db, id), at);
}

/** A new link for a pending or expired invitation; the old link stops working. */
export async function resendInvitation({ db, audit, mail, now = () => new Date() }: InvitationDeps, id: string, actor: Actor): Promise<InvitationView> {
  const row = await findInvitation(db, id);
  const at = now();
  const state = stateOf(row, at);
  if (state === 'accepted' || state === 'revoked') throw new ConflictError(`invitation ${id} is ${state}: invite the address again instead`);
  await refuseTaken(db, row.email);
  await db.prisma.$transaction((tx) => sendLink({ prisma: tx as unknown as Prisma, flavour: db.flavour }, mail, id, row.email, Details.parse(row.details), at));
  mail.outbox.wake();
  await audit.record({ type: 'invitation.resent', accountId: id, ...origin(actor), details: { ...by(actor), email: row.email } });
  return toView(await findInvitation(db, id), at);
}

/**
 * The seed file's invitations, in its transaction (`handle`): an address that has an account or
 * any invitation (pending, accepted, expired or revoked) is left as it is, so running the file
 * again sends nothing; the others are invited. The emails invited, and those left alone.
 */
export async function seedInvitations(handle: DbHandle, mail: AccountMail, entries: readonly InvitationEntry[], at: Date = new Date()): Promise<{ created: string[]; unchanged: string[] }> {
  const created: string[] = [];
  const unchanged: string[] = [];
  for (const [index, entry] of entries.entries()) {
    const email = normalizeEmail(entry.email);
    if ((await createUserStore(handle).findByEmail(email)) || (await newestLinks(handle, { email })).length) {
      unchanged.push(email);
      continue;
    }
    if (entry.client_id !== undefined && !(await createClientStore(handle).get(entry.client_id))) throw new Error(`invitations[${index}].client_id: there is no client ${entry.client_id}`);
    await sendLink(handle, mail, randomUUID(), email, { name: entry.name, client_id: entry.client_id, locale: entry.locale }, at);
    created.push(email);
  }
  return { created, unchanged };
}
