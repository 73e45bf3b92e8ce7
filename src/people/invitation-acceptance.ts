// Accepting an invitation (the page is http/invitation.ts): with a password, or with a passkey
// instead (people/passkeys.ts registers it for the account about to exist, under the id the
// invitation gave it). Either way one transaction uses the link, creates the account with its
// address verified (opening the mail proved it), stores the passkey if there is one, and issues
// the sign-in handoff (sign-in-handoff.ts) that lets the browser land signed in where the
// invitation leads: the invited app's sign-in (its initiate_login_uri, OpenID Connect's
// third-party-initiated login, else its client_uri), or /account. Nothing changes unless all of
// it happens; the audit trail records the acceptance, the account and the passkey after.
import bcrypt from 'bcrypt';
import { z } from 'zod';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import { ACCOUNT_CLIENT_ID } from '../clients/built-in-clients.js';
import { createClientStore } from '../clients/store.js';
import type { DbHandle, Prisma } from '../db/client.js';
import { createLinkStore, type AccountLinkRow } from './link-store.js';
import { INVITATION_PURPOSE, InvitationDetails } from './invitations.js';
import { createPasskeyStore, type NewPasskey } from './passkey-store.js';
import type { Passkeys } from './passkeys.js';
import { findPasswordProblem, type PasswordProblem } from './password-policy.js';
import { issueSignInHandoff, type HandoffMethod } from './sign-in-handoff.js';
import { createUserStore, profileColumnsOf } from './store.js';

export interface OpenInvitation {
  email: string;
  name: string | null;
  clientId: string | null;
}

export interface AcceptanceDeps {
  db: DbHandle;
  audit: AuditLog;
  /** ISSUER: the `iss` a third-party-initiated login names. */
  issuer: string;
  passwords: { minLength: number; bcryptCost: number };
  now?: () => Date;
}

/** Accepted: where the browser goes next, and the handoff's secret for its cookie. */
export type Accepted = { outcome: 'accepted'; accountId: string; email: string; next: string; handoff: string };
export type AcceptOutcome = Accepted | { outcome: 'invalid' } | { outcome: 'rejected'; problem: PasswordProblem };
export type PasskeyAcceptOutcome = Accepted | { outcome: 'invalid' } | { outcome: 'passkey_refused' };

/** The link a secret opens, while no account has its address. */
async function usableLink(db: DbHandle, secret: string, now: Date): Promise<AccountLinkRow | null> {
  const link = await createLinkStore(db).findUsable(INVITATION_PURPOSE, secret, now);
  return link && !(await createUserStore(db).findByEmail(link.email)) ? link : null;
}

/** The invitation a usable link opens; null when it is forged, used, revoked, superseded, expired, or its address has an account now. */
export async function checkInvitation(db: DbHandle, secret: string, now: Date = new Date()): Promise<OpenInvitation | null> {
  const link = await usableLink(db, secret, now);
  if (!link) return null;
  const details = InvitationDetails.parse(link.details);
  return { email: link.email, name: details.name ?? null, clientId: details.client_id ?? null };
}

/** What a passkey ceremony at the invitation page is bound to: this link (a resend starts over). */
const ceremonyOf = (link: AccountLinkRow) => `invitation:${link.id}`;

/** WebAuthn options for a passkey instead of a password; null when the link is not usable. */
export async function invitationPasskeyOptions({ db, passkeys, now = () => new Date() }: { db: DbHandle; passkeys: Passkeys; now?: () => Date }, secret: string) {
  const link = await usableLink(db, secret, now());
  if (!link) return null;
  const { name } = InvitationDetails.parse(link.details);
  return passkeys.newAccountRegistrationOptions({ id: link.userId, email: link.email, name: name ?? null }, ceremonyOf(link));
}

/** Uses the link and creates the account (address verified) with this password. */
export async function acceptInvitation(deps: AcceptanceDeps, secret: string, password: string, from: RequestOrigin): Promise<AcceptOutcome> {
  const now = deps.now ?? (() => new Date());
  const link = await createLinkStore(deps.db).findUsable(INVITATION_PURPOSE, secret, now());
  if (!link) return { outcome: 'invalid' };
  const problem = findPasswordProblem(password, { minLength: deps.passwords.minLength, email: link.email });
  if (problem) return { outcome: 'rejected', problem };
  const passwordHash = await bcrypt.hash(password, deps.passwords.bcryptCost);
  return createAccount(deps, link, { passwordHash, method: 'password' }, from);
}

/** The passkey's answer instead of a password: checked, then the account is created with no password and this passkey. */
export async function acceptInvitationWithPasskey(deps: AcceptanceDeps & { passkeys: Passkeys }, secret: string, response: unknown, name: string, from: RequestOrigin): Promise<PasskeyAcceptOutcome> {
  const now = deps.now ?? (() => new Date());
  const link = await usableLink(deps.db, secret, now());
  if (!link) return { outcome: 'invalid' };
  const checked = await deps.passkeys.checkRegistration(link.userId, ceremonyOf(link), response, name, from);
  if (!checked.ok) return { outcome: 'passkey_refused' };
  const accepted = await createAccount(deps, link, { passwordHash: null, passkey: checked.passkey, method: 'passkey' }, from);
  if (accepted.outcome === 'accepted') {
    await deps.audit.record({ type: 'passkey.added', accountId: accepted.accountId, ...from, details: { name, device_type: checked.deviceType, via: 'invitation' } });
  }
  return accepted;
}

/** The one transaction: the link used, the account (and passkey) created, the handoff issued. */
async function createAccount(
  { db, audit, issuer, now = () => new Date() }: AcceptanceDeps,
  link: AccountLinkRow,
  way: { passwordHash: string | null; passkey?: NewPasskey; method: HandoffMethod },
  from: RequestOrigin,
): Promise<Accepted | { outcome: 'invalid' }> {
  const details = InvitationDetails.parse(link.details);
  const landing = await landingOf(db, issuer, details.client_id, link.email);
  const handoff = await db.prisma
    .$transaction(async (tx) => {
      const handle = { prisma: tx as unknown as Prisma, flavour: db.flavour };
      if (!(await createLinkStore(handle).use(link.id, now()))) throw new LinkGone();
      await createUserStore(handle).create(link.userId, { email: link.email, emailVerified: true, ...profileColumnsOf({ name: details.name, locale: details.locale }) }, way.passwordHash);
      if (way.passkey) await createPasskeyStore(handle).create(way.passkey, now());
      return issueSignInHandoff(handle, { accountId: link.userId, email: link.email, clientId: landing.clientId, method: way.method }, now());
    })
    .catch((error: unknown) => {
      // Used meanwhile, or the address, id or credential got taken meanwhile: the transaction rolled back.
      if (error instanceof LinkGone || (error as { code?: string }).code === 'P2002') return null;
      throw error;
    });
  if (!handoff) return { outcome: 'invalid' };
  await audit.record({ type: 'invitation.accepted', accountId: link.userId, ...from, details: { email: link.email, method: way.method } });
  await audit.record({ type: 'user.created', accountId: link.userId, ...from, details: { via: 'invitation' } });
  return { outcome: 'accepted', accountId: link.userId, email: link.email, next: landing.url, handoff };
}

const ClientHome = z.object({ initiate_login_uri: z.url({ protocol: /^https?$/ }).optional().catch(undefined), client_uri: z.url({ protocol: /^https?$/ }).optional().catch(undefined) });

/**
 * Where accepting leads, and the client the handoff is for: the invited app's sign-in start
 * (initiate_login_uri with `iss` and `login_hint`, OpenID Connect Core 4), else its home page
 * (client_uri), else the account page, which signs in through its own client.
 */
async function landingOf(db: DbHandle, issuer: string, clientId: string | undefined, email: string): Promise<{ clientId: string; url: string }> {
  const client = clientId ? await createClientStore(db).get(clientId) : null;
  const home = ClientHome.safeParse(client?.metadata ?? {});
  if (clientId && client && home.success && home.data.initiate_login_uri) {
    const url = new URL(home.data.initiate_login_uri);
    url.searchParams.set('iss', issuer);
    url.searchParams.set('login_hint', email);
    return { clientId, url: url.href };
  }
  if (clientId && client && home.success && home.data.client_uri) return { clientId, url: home.data.client_uri };
  return { clientId: ACCOUNT_CLIENT_ID, url: `/account?${new URLSearchParams({ login_hint: email })}` };
}

class LinkGone extends Error {}
