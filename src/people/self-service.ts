// What a signed-in person can see and do about their own account at /account: their profile,
// the apps they gave access to (and ending that access), their sessions (and ending the others),
// their password and their second factor. The routes (http/account.ts) stay thin: they find the
// signed-in session here, parse the form, call one function, then render or redirect.
//
// Who is signed in comes from the engine's own session cookie, read the way the engine reads
// it, so the account page and the apps share one sign-in (clients/built-in-clients.ts explains how a
// person without a session gets one). Changing the password or the second factor asks for the
// current password again, checked by the sign-in's own verifier (brute-force limits included).
import type { IncomingMessage, ServerResponse } from 'node:http';
import bcrypt from 'bcrypt';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Db, Prisma } from '../db/client.js';
import { queueEmailChangeMails, type AccountMail } from './email-verification.js';
import { findPasswordProblem, type PasswordProblem } from './password-policy.js';
import { createRecoveryCodeStore } from './recovery-code-store.js';
import { createUserStore, hasPassword, normalizeEmail } from './store.js';
import { countOtherWays } from './sign-in-ways.js';
import { isBuiltInClient } from '../clients/built-in-clients.js';
import { passwordMatches, type PasswordVerifier } from './accounts.js';
import type { Actor, AuditLog, RequestOrigin } from '../audit/log.js';
import { NotFoundError } from '../core/errors.js';
import { listUserGrants, listUserSessions, revokeUserGrant, revokeUserSession } from './service.js';
import type { Mfa, TotpEnrolment } from './mfa.js';
import type { PasskeyResult, Passkeys, PasskeyView } from './passkeys.js';

/**
 * Within this long of signing in, adding or removing a passkey (and setting a password on a
 * passkey-only account) needs no password: the sign-in itself was the proof.
 */
export const RECENT_SIGN_IN_SECONDS = 600;

/** The engine session a request carries, when someone is signed in with it. */
export interface SignedIn {
  /** The session's id: the secret value of its cookie (binds the page's form tokens; never shown). */
  sessionId: string;
  /** The session's uid, by which sessions are named (service.ts). */
  sessionUid: string;
  accountId: string;
  /** When this session signed in (epoch seconds), and how (ACR_PASSWORD or ACR_MFA: the console asks for MFA). */
  signedInAt: number | null;
  acr?: string | null;
}

export interface Profile {
  email: string;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  preferredUsername: string | null;
  picture: string | null;
  locale: string | null;
  createdAt: Date;
}

/** An app the person gave access to: everything its live grants allow, since the first one. */
export interface ConnectedApp {
  clientId: string;
  name: string;
  uri: string | undefined;
  logoUri: string | undefined;
  scopes: string[];
  claims: string[];
  resources: { indicator: string; scopes: string[] }[];
  since: Date;
}

export interface SessionSummary {
  current: boolean;
  signedInAt: Date | null;
  expiresAt: Date | null;
  /** How they signed in (pwd, otp, hwk, user). */
  methods: string[];
  /** Names of the apps used in it (the account page itself left out). */
  apps: string[];
  /** When and from where it was last used (a sign-in or an app's authorization request). */
  lastSeen: { at: Date; ip: string | null; userAgent: string | null } | null;
}

export interface AccountOverview {
  profile: Profile;
  apps: ConnectedApp[];
  sessions: SessionSummary[];
  mfa: { enabled: boolean; recoveryCodesLeft: number };
  passkeys: PasskeyView[];
  hasPassword: boolean;
  /** Signed in within RECENT_SIGN_IN_SECONDS: passkey changes need no password. */
  recentSignIn: boolean;
}

/** Why a change that needs proof of identity was refused. */
export type IdentityRefusal = 'wrong_password' | 'reauthenticate';

export type PasswordChange = { outcome: 'changed'; otherSessionsEnded: number } | { outcome: 'wrong_password' } | { outcome: 'rejected'; problem: PasswordProblem | 'same' };

export interface AccountService {
  /** The signed-in session of this request, or null (no cookie, expired, signed out, account gone or disabled). */
  currentSession(req: IncomingMessage, res: ServerResponse): Promise<SignedIn | null>;
  overview(signedIn: SignedIn): Promise<AccountOverview>;
  /** Ends every grant the person gave this app and every token issued under them; false when there was none. */
  revokeApp(signedIn: SignedIn, clientId: string, origin: RequestOrigin): Promise<boolean>;
  /** Signs out every other session of the account; how many there were. */
  signOutOtherSessions(signedIn: SignedIn, origin: RequestOrigin): Promise<number>;
  /** Needs the current password; a new one must pass the password policy. Other sessions end. */
  changePassword(signedIn: SignedIn, current: string, next: string, origin: RequestOrigin): Promise<PasswordChange>;
  /** Needs the current password; makes a new pending TOTP secret. */
  beginMfaEnrolment(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<'started' | 'wrong_password' | 'already_enabled'>;
  /** The pending secret's QR code, or null when no enrolment is pending. */
  describeMfaEnrolment(signedIn: SignedIn): Promise<TotpEnrolment | null>;
  /** The new recovery codes (shown once) when `code` matches the pending secret; null otherwise. */
  confirmMfaEnrolment(signedIn: SignedIn, code: string, origin: RequestOrigin): Promise<string[] | null>;
  /** Needs the current password; removes TOTP and the recovery codes. */
  removeMfa(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<'removed' | 'wrong_password' | 'not_enabled'>;
  /** Needs the password or a recent sign-in; the WebAuthn options for adding a passkey. */
  beginPasskeyRegistration(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<{ options: unknown } | IdentityRefusal>;
  /** Keeps the passkey the browser created for the options above. */
  finishPasskeyRegistration(signedIn: SignedIn, response: unknown, name: string, origin: RequestOrigin): Promise<PasskeyResult<{ passkey: PasskeyView }>>;
  renamePasskey(signedIn: SignedIn, id: string, name: string, origin: RequestOrigin): Promise<boolean>;
  /** Needs the password or a recent sign-in; never the last passkey of an account without a password. */
  removePasskey(signedIn: SignedIn, id: string, password: string, origin: RequestOrigin): Promise<'removed' | 'not_found' | 'last_passkey' | IdentityRefusal>;
  /** Needs the current password and at least one passkey; other sessions end. */
  removePassword(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<'removed' | 'wrong_password' | 'no_passkey'>;
  /** A passkey-only account sets a password again: needs a recent sign-in; the policy applies. */
  setPassword(signedIn: SignedIn, next: string, origin: RequestOrigin): Promise<'set' | 'has_password' | 'reauthenticate' | { problem: PasswordProblem }>;
  /**
   * Needs the password or a recent sign-in. The new address is unverified: a link goes to it and a
   * notice to the old one, queued with the change (email-verification.ts); audited `email.changed`.
   */
  changeEmail(signedIn: SignedIn, email: string, password: string, origin: RequestOrigin): Promise<'changed' | 'same' | 'taken' | IdentityRefusal>;
}

export interface AccountDeps {
  provider: Provider;
  db: Db;
  passwords: PasswordVerifier;
  mfa: Mfa;
  passkeys: Passkeys;
  audit: AuditLog;
  bcryptCost: number;
  passwordMinLength: number;
  /** Sends the mails of an email change; absent, the change sends none. */
  mail?: AccountMail;
  now?: () => Date;
}

/** True when the action ran; false when what it ends was ended meanwhile (another tab, an admin). */
async function ranUnlessGone(action: Promise<void>): Promise<boolean> {
  try {
    await action;
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

const words = (value: string) => value.split(' ').filter(Boolean);
const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
const date = (iso: string | null) => (iso ? new Date(iso) : null);

export function createAccountService({ provider, db, passwords, mfa, passkeys, audit, bcryptCost, passwordMinLength, mail, now = () => new Date() }: AccountDeps): AccountService {
  const users = createUserStore(db);
  const recoveryCodes = createRecoveryCodeStore(db);
  // Grants and sessions are listed and ended by the same functions as the admin API's.
  const manage = { db, audit, bcryptCost, passwordMinLength, now };
  const actor = (origin: RequestOrigin): Actor => ({ via: 'account', ...origin });

  async function describeClient(clientId: string) {
    const client = await provider.Client.find(clientId);
    return { name: text(client?.clientName) ?? clientId, uri: text(client?.clientUri), logoUri: text(client?.logoUri) };
  }

  /** The current password, checked as a sign-in is (limits, delay, audit) and for this account only. */
  async function confirmPassword(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<boolean> {
    const user = await users.findById(signedIn.accountId);
    if (!user || !password) return false;
    return (await passwords.verifyPassword(user.email, password, origin)) === signedIn.accountId;
  }

  const isRecent = (signedIn: SignedIn) => signedIn.signedInAt !== null && now().getTime() / 1000 - signedIn.signedInAt <= RECENT_SIGN_IN_SECONDS;

  /** The password when one is given (a wrong one is refused even within a recent sign-in), otherwise a recent sign-in. */
  async function confirmIdentity(signedIn: SignedIn, password: string, origin: RequestOrigin): Promise<true | IdentityRefusal> {
    if (password) return (await confirmPassword(signedIn, password, origin)) ? true : 'wrong_password';
    return isRecent(signedIn) ? true : 'reauthenticate';
  }

  /** Ends every session of the account but this one; how many. */
  async function endOtherSessions(signedIn: SignedIn, origin: RequestOrigin): Promise<number> {
    const others = (await listUserSessions(manage, signedIn.accountId)).filter((session) => session.id !== signedIn.sessionUid);
    let ended = 0;
    for (const session of others) if (await ranUnlessGone(revokeUserSession(manage, signedIn.accountId, session.id, actor(origin)))) ended++;
    return ended;
  }

  return {
    async currentSession(req, res) {
      const ctx = provider.createContext(req, res) as unknown as KoaContextWithOIDC;
      const session = await provider.Session.get(ctx);
      if (!session.accountId) return null;
      const user = await users.findById(session.accountId);
      if (!user || user.disabled) return null;
      return { sessionId: session.jti, sessionUid: session.uid, accountId: session.accountId, signedInAt: typeof session.loginTs === 'number' ? session.loginTs : null, acr: session.acr ?? null };
    },

    async overview(signedIn) {
      const user = await users.findById(signedIn.accountId);
      if (!user) throw new Error('the signed-in account no longer exists');

      const byClient = new Map<string, { scopes: Set<string>; claims: Set<string>; resources: Map<string, Set<string>>; since: Date }>();
      for (const grant of await listUserGrants(manage, signedIn.accountId)) {
        if (!grant.client_id || isBuiltInClient(grant.client_id)) continue;
        const since = new Date(grant.created_at);
        const entry = byClient.get(grant.client_id) ?? { scopes: new Set(), claims: new Set(), resources: new Map(), since };
        for (const scope of words(grant.scope)) entry.scopes.add(scope);
        for (const claim of grant.claims) entry.claims.add(claim);
        for (const [indicator, scope] of Object.entries(grant.resources)) {
          const scopes = entry.resources.get(indicator) ?? new Set();
          for (const s of words(scope)) scopes.add(s);
          entry.resources.set(indicator, scopes);
        }
        if (since < entry.since) entry.since = since;
        byClient.set(grant.client_id, entry);
      }
      const apps: ConnectedApp[] = [];
      for (const [clientId, entry] of byClient) {
        apps.push({
          clientId,
          ...(await describeClient(clientId)),
          scopes: [...entry.scopes],
          claims: [...entry.claims],
          resources: [...entry.resources].map(([indicator, scopes]) => ({ indicator, scopes: [...scopes] })),
          since: entry.since,
        });
      }
      apps.sort((a, b) => a.name.localeCompare(b.name));

      const names = new Map<string, string>();
      const sessions: SessionSummary[] = [];
      for (const session of await listUserSessions(manage, signedIn.accountId)) {
        const appNames: string[] = [];
        for (const clientId of session.client_ids) {
          if (isBuiltInClient(clientId)) continue;
          if (!names.has(clientId)) names.set(clientId, (await describeClient(clientId)).name);
          appNames.push(names.get(clientId) as string);
        }
        const seen = session.last_seen;
        sessions.push({
          current: session.id === signedIn.sessionUid,
          signedInAt: date(session.signed_in_at),
          expiresAt: date(session.expires_at),
          methods: session.amr,
          apps: appNames,
          lastSeen: seen ? { at: new Date(seen.at), ip: seen.ip, userAgent: seen.user_agent } : null,
        });
      }
      // This browser first, then the most recent sign-in.
      sessions.sort((a, b) => Number(b.current) - Number(a.current) || (b.signedInAt?.getTime() ?? 0) - (a.signedInAt?.getTime() ?? 0));

      return {
        profile: {
          email: user.email,
          emailVerified: user.emailVerified,
          name: user.name,
          givenName: user.givenName,
          familyName: user.familyName,
          preferredUsername: user.preferredUsername,
          picture: user.picture,
          locale: user.locale,
          createdAt: user.createdAt,
        },
        apps,
        sessions,
        mfa: { enabled: Boolean(user.totpEnabledAt && user.totpSecretEncrypted), recoveryCodesLeft: await recoveryCodes.countUnused(user.id) },
        passkeys: await passkeys.list(user.id),
        hasPassword: hasPassword(user),
        recentSignIn: isRecent(signedIn),
      };
    },

    async revokeApp(signedIn, clientId, origin) {
      if (isBuiltInClient(clientId)) return false;
      // Each grant ends with every code and token issued under it.
      const grants = (await listUserGrants(manage, signedIn.accountId)).filter((grant) => grant.client_id === clientId);
      let revoked = 0;
      for (const grant of grants) if (await ranUnlessGone(revokeUserGrant(manage, signedIn.accountId, grant.id, actor(origin)))) revoked++;
      return revoked > 0;
    },

    signOutOtherSessions: (signedIn, origin) => endOtherSessions(signedIn, origin),

    async changePassword(signedIn, current, next, origin) {
      const user = await users.findById(signedIn.accountId);
      if (!user) return { outcome: 'wrong_password' };
      // The policy first: a new password it refuses should not cost a sign-in attempt.
      const problem = findPasswordProblem(next, { minLength: passwordMinLength, email: user.email });
      if (problem) return { outcome: 'rejected', problem };
      if (!(await confirmPassword(signedIn, current, origin))) return { outcome: 'wrong_password' };
      if (await passwordMatches(next, user.passwordHash)) return { outcome: 'rejected', problem: 'same' };
      await users.update(user.id, { passwordHash: await bcrypt.hash(next, bcryptCost) });
      // Whoever else may have known the old password loses their sessions with it.
      const otherSessionsEnded = await endOtherSessions(signedIn, origin);
      await audit.record({ type: 'password.changed', accountId: user.id, ...origin, details: { via: 'account', sessions_ended: otherSessionsEnded } });
      return { outcome: 'changed', otherSessionsEnded };
    },

    async beginMfaEnrolment(signedIn, password, origin) {
      if (await mfa.isEnabled(signedIn.accountId)) return 'already_enabled';
      if (!(await confirmPassword(signedIn, password, origin))) return 'wrong_password';
      return (await mfa.beginEnrolment(signedIn.accountId)) ? 'started' : 'already_enabled';
    },

    describeMfaEnrolment: (signedIn) => mfa.describeEnrolment(signedIn.accountId),

    async confirmMfaEnrolment(signedIn, code, origin) {
      const codes = await mfa.confirmEnrolment(signedIn.accountId, code);
      if (!codes) {
        await audit.record({ type: 'mfa.failure', accountId: signedIn.accountId, ...origin, details: { method: 'enrolment', via: 'account' } });
        return null;
      }
      await audit.record({ type: 'mfa.enrolled', accountId: signedIn.accountId, ...origin, details: { method: 'totp', via: 'account' } });
      return codes;
    },

    async removeMfa(signedIn, password, origin) {
      if (!(await mfa.isEnabled(signedIn.accountId))) return 'not_enabled';
      if (!(await confirmPassword(signedIn, password, origin))) return 'wrong_password';
      await mfa.resetMfa(signedIn.accountId, { ...origin, details: { via: 'account' } });
      return 'removed';
    },

    async beginPasskeyRegistration(signedIn, password, origin) {
      const confirmed = await confirmIdentity(signedIn, password, origin);
      if (confirmed !== true) return confirmed;
      // Bound to this session: only it can finish the ceremony, on whichever instance.
      return { options: await passkeys.registrationOptions(signedIn.accountId, signedIn.sessionUid) };
    },

    finishPasskeyRegistration: (signedIn, response, name, origin) => passkeys.register(signedIn.accountId, signedIn.sessionUid, response, name, origin),

    renamePasskey: (signedIn, id, name, origin) => passkeys.rename(signedIn.accountId, id, name, { ...origin, details: { via: 'account' } }),

    async removePasskey(signedIn, id, password, origin) {
      const user = await users.findById(signedIn.accountId);
      const all = await passkeys.list(signedIn.accountId);
      if (!user || !all.some((passkey) => passkey.id === id)) return 'not_found';
      // Told before the password is asked for; checked again, race-free, as it is removed.
      if (!hasPassword(user) && (await countOtherWays(db.prisma, signedIn.accountId)) === 1) return 'last_passkey';
      const confirmed = await confirmIdentity(signedIn, password, origin);
      if (confirmed !== true) return confirmed;
      const outcome = await passkeys.removeOwn(signedIn.accountId, id, { ...origin, details: { via: 'account' } });
      return outcome === 'last_way' ? 'last_passkey' : outcome;
    },

    async removePassword(signedIn, password, origin) {
      if ((await passkeys.count(signedIn.accountId)) === 0) return 'no_passkey';
      if (!(await confirmPassword(signedIn, password, origin))) return 'wrong_password';
      // A passkey removed meanwhile (another tab) may have been the last other way in.
      if ((await users.removePasswordUnlessLast(signedIn.accountId)) === 'last_way') return 'no_passkey';
      const sessionsEnded = await endOtherSessions(signedIn, origin);
      await audit.record({ type: 'password.removed', accountId: signedIn.accountId, ...origin, details: { via: 'account', sessions_ended: sessionsEnded } });
      return 'removed';
    },

    async setPassword(signedIn, next, origin) {
      const user = await users.findById(signedIn.accountId);
      if (!user || hasPassword(user)) return 'has_password';
      const problem = findPasswordProblem(next, { minLength: passwordMinLength, email: user.email });
      if (problem) return { problem };
      if (!isRecent(signedIn)) return 'reauthenticate';
      // Only where there is still none: a password set meanwhile (another tab) is not replaced.
      if (!(await users.setPasswordWhereNone(user.id, await bcrypt.hash(next, bcryptCost)))) return 'has_password';
      await audit.record({ type: 'password.changed', accountId: user.id, ...origin, details: { via: 'account', set: true } });
      return 'set';
    },

    async changeEmail(signedIn, email, password, origin) {
      const user = await users.findById(signedIn.accountId);
      if (!user) return 'reauthenticate';
      if (normalizeEmail(email) === user.email) return 'same';
      const confirmed = await confirmIdentity(signedIn, password, origin);
      if (confirmed !== true) return confirmed;
      try {
        await db.prisma.$transaction(async (tx) => {
          const handle = { prisma: tx as unknown as Prisma, flavour: db.flavour };
          const updated = await createUserStore(handle).update(user.id, { email, emailVerified: false });
          if (mail) await queueEmailChangeMails(handle, mail, updated, user.email);
        });
      } catch (error) {
        if ((error as { code?: string }).code === 'P2002') return 'taken';
        throw error;
      }
      mail?.outbox.wake();
      await audit.record({ type: 'email.changed', accountId: user.id, ...origin, details: { via: 'account' } });
      return 'changed';
    },
  };
}
