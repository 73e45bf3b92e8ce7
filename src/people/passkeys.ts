// Passkeys (WebAuthn, through @simplewebauthn/server): registering one, and checking an
// assertion for a passwordless sign-in or as the second step after a password.
//
// The relying-party ID is PASSKEY_RP_ID or the ISSUER's host, and the only origin accepted is the
// ISSUER's. Every ceremony's challenge is kept in the database (passkey-store.ts), bound to what
// it was handed to (the interaction, or the account page's session) and used up by the first
// answer, right or wrong. Attestation is `none`: Gatehouse trusts the person who is signed in to
// add their own authenticator, not a vendor's certificate. A passwordless sign-in requires user
// verification (the authenticator's PIN or biometric), which is what makes it multi-factor.
//
// The signature counter is checked after the signature: a signed assertion whose counter does not
// go up means a cloned authenticator, and is refused and recorded (passkey.counter_regressed).
import type * as WebAuthn from '@simplewebauthn/server';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { Db } from '../db/client.js';
import { AssertionSchema, AttestationSchema, challengeOf } from './passkey-answers.js';
import { createPasskeyStore, type ChallengePurpose, type NewPasskey, type Passkey } from './passkey-store.js';
import type { SignInLimits } from './sign-in-limits.js';
import { createUserStore } from './store.js';

// @simplewebauthn/server and its ASN.1 and X.509 stack take longer to load than the engine itself:
// loaded at the first ceremony, not at start-up.
let webauthnModule: Promise<typeof WebAuthn> | undefined;
const webauthn = () => (webauthnModule ??= import('@simplewebauthn/server'));

/** How long a ceremony may take, from its options to its answer. */
export const CHALLENGE_TTL_SECONDS = 300;

/** A passkey's name as the person gives it. */
export const PASSKEY_NAME = z.string().trim().min(1).max(64);

export { PASSKEY_RESPONSE_FIELD } from './passkey-answers.js';

/** Why a ceremony's answer was refused (recorded in the audit trail, never shown as such). */
export type PasskeyFailure =
  | 'malformed'
  | 'unknown_challenge'
  | 'unknown_credential'
  | 'not_this_account'
  | 'disabled'
  | 'counter_regressed'
  | 'invalid'
  | 'locked'
  | 'already_registered';

export type PasskeyResult<T> = ({ ok: true } & T) | { ok: false; reason: PasskeyFailure };

export interface PasskeyView {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  deviceType: string;
  backedUp: boolean;
}

export interface Passkeys {
  readonly rpId: string;
  list(userId: string): Promise<PasskeyView[]>;
  count(userId: string): Promise<number>;
  /** Options for adding a passkey; the challenge is bound to `boundTo` (the account page's session). */
  registrationOptions(userId: string, boundTo: string): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Options for the passkey of an account that does not exist yet (accepting an invitation):
   * `person.id` is the id the account will have, and the user handle the passkey keeps.
   */
  newAccountRegistrationOptions(person: { id: string; email: string; name: string | null }, boundTo: string): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /**
   * Checks a registration answer for `userId` (its challenge used up whatever the outcome) and
   * returns the passkey to store, storing nothing: the caller stores it in its own transaction
   * and records passkey.added. Failures are recorded (passkey.failure).
   */
  checkRegistration(userId: string, boundTo: string, response: unknown, name: string, origin: RequestOrigin): Promise<PasskeyResult<{ passkey: NewPasskey; deviceType: string }>>;
  /** Checks the authenticator's answer and keeps the new passkey (records passkey.added). */
  register(userId: string, boundTo: string, response: unknown, name: string, origin: RequestOrigin): Promise<PasskeyResult<{ passkey: PasskeyView }>>;
  /** Options for a passwordless sign-in with a discoverable credential (no email typed). */
  signInOptions(boundTo: string): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /** Options for the second step: only this person's passkeys. */
  secondFactorOptions(userId: string, boundTo: string): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /**
   * A passwordless sign-in under the sign-in limits (counted per account, or per credential when it
   * is unknown, and per address): the account id when the assertion is good and user-verified.
   */
  signIn(boundTo: string, response: unknown, origin: RequestOrigin & { clientId?: string }): Promise<PasskeyResult<{ accountId: string }>>;
  /** The second step for `userId` (the caller applies the second-factor limits). */
  verifySecondFactor(userId: string, boundTo: string, response: unknown, origin: RequestOrigin & { clientId?: string }): Promise<PasskeyResult<{ userVerified: boolean }>>;
  rename(userId: string, id: string, name: string, origin: RequestOrigin & { details?: Record<string, unknown> }): Promise<boolean>;
  /** Removes one of the person's passkeys (records passkey.removed); false when it is not theirs. */
  remove(userId: string, id: string, origin: RequestOrigin & { details?: Record<string, unknown> }): Promise<boolean>;
  /** The person removing their own passkey: refused when it is their last way to sign in (sign-in-ways.ts). */
  removeOwn(userId: string, id: string, origin: RequestOrigin & { details?: Record<string, unknown> }): Promise<'removed' | 'not_found' | 'last_way'>;
}

export interface PasskeyOptions {
  /** The relying-party ID (config.passkeys.rpId). */
  rpId: string;
  /** The one origin ceremonies may come from: the ISSUER's. */
  origin: string;
  /** Shown by the authenticator next to the account (BRAND_NAME). */
  rpName: string;
  audit: AuditLog;
  /** The password sign-in's limits: a failed passwordless assertion counts like a wrong password. */
  signInLimits: SignInLimits;
  now?: () => Date;
}

export const toPasskeyView = (passkey: Passkey): PasskeyView => ({
  id: passkey.id,
  name: passkey.name,
  createdAt: passkey.createdAt,
  lastUsedAt: passkey.lastUsedAt,
  deviceType: passkey.deviceType,
  backedUp: passkey.backedUp,
});

const transportsOf = (passkey: Passkey) => (passkey.transports ? passkey.transports.split(',') : []);

export function createPasskeys(db: Db, { rpId, origin: expectedOrigin, rpName, audit, signInLimits, now = () => new Date() }: PasskeyOptions): Passkeys {
  const store = createPasskeyStore(db);
  const users = createUserStore(db);

  async function newChallenge(purpose: ChallengePurpose, boundTo: string, userId: string | null, challenge: string) {
    const at = now();
    await store.saveChallenge({ challenge, purpose, boundTo, userId, expiresAt: new Date(at.getTime() + CHALLENGE_TTL_SECONDS * 1000) }, at);
  }

  const fail = async (reason: PasskeyFailure, accountId: string | null | undefined, origin: RequestOrigin & { clientId?: string }, details: Record<string, unknown> = {}) => {
    const { clientId, ...where } = origin;
    await audit.record({ type: 'passkey.failure', accountId: accountId ?? null, clientId: clientId ?? null, ...where, details: { reason, ...details } });
    return { ok: false as const, reason };
  };

  /**
   * The checks every assertion passes: its shape, its challenge (used up here), a known credential
   * of an enabled person (`userId`'s when given), the signature, origin, RP ID and user
   * verification as required, and a counter that went up. Records the use.
   */
  async function checkAssertion(purpose: ChallengePurpose, boundTo: string, response: unknown, requireUserVerification: boolean, origin: RequestOrigin & { clientId?: string }, userId?: string) {
    const parsed = AssertionSchema.safeParse(response);
    if (!parsed.success) return fail('malformed', userId, origin);
    const answer = parsed.data;
    const challenge = challengeOf(answer.response.clientDataJSON);
    const passkey = await store.findByCredentialId(answer.id);
    const accountId = userId ?? passkey?.userId;
    // The challenge is used up whatever happens next.
    const issued = challenge ? await store.consumeChallenge(challenge, purpose, boundTo, now()) : null;
    if (!challenge) return fail('malformed', accountId, origin);
    if (!issued || (issued.userId !== null && issued.userId !== userId)) return fail('unknown_challenge', accountId, origin);
    if (!passkey) return fail('unknown_credential', accountId, origin);
    if (userId !== undefined && passkey.userId !== userId) return fail('not_this_account', userId, origin, { passkey_id: passkey.id });
    // A discoverable credential names its owner (the user handle is the sub given at registration): it must be this passkey's.
    const { userHandle } = answer.response;
    if (userHandle !== undefined && Buffer.from(userHandle, 'base64url').toString('utf8') !== passkey.userId) return fail('not_this_account', passkey.userId, origin, { passkey_id: passkey.id });
    const user = await users.findById(passkey.userId);
    if (!user || user.disabled) return fail('disabled', passkey.userId, origin);
    const { verifyAuthenticationResponse } = await webauthn();
    let verification;
    try {
      verification = await verifyAuthenticationResponse({
        response: answer as AuthenticationResponseJSON,
        expectedChallenge: issued.challenge,
        expectedOrigin,
        expectedRPID: rpId,
        // The counter is checked below, once the signature is known to be good.
        credential: { id: passkey.credentialId, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: 0, transports: transportsOf(passkey) },
        requireUserVerification,
      });
    } catch (error) {
      return fail('invalid', passkey.userId, origin, { passkey_id: passkey.id, problem: (error as Error).message.slice(0, 200) });
    }
    if (!verification.verified) return fail('invalid', passkey.userId, origin, { passkey_id: passkey.id });
    const { newCounter, userVerified, credentialBackedUp } = verification.authenticationInfo;
    // Authenticators that keep no counter always send 0; any other value must go up.
    const regressed = (newCounter > 0 || passkey.counter > 0) && newCounter <= passkey.counter;
    if (regressed || !(await store.recordUse(passkey.id, passkey.counter, newCounter, credentialBackedUp, now()))) {
      const { clientId, ...where } = origin;
      await audit.record({ type: 'passkey.counter_regressed', accountId: passkey.userId, clientId: clientId ?? null, ...where, details: { passkey_id: passkey.id, stored: passkey.counter, received: newCounter } });
      return { ok: false as const, reason: 'counter_regressed' as const };
    }
    const { clientId, ...where } = origin;
    await audit.record({ type: 'passkey.used', accountId: passkey.userId, clientId: clientId ?? null, ...where, details: { passkey_id: passkey.id, purpose, user_verified: userVerified } });
    return { ok: true as const, accountId: passkey.userId, userVerified };
  }

  async function registrationOptionsFor(person: { id: string; email: string; name: string | null }, existing: readonly Passkey[], boundTo: string) {
    const options = await (await webauthn()).generateRegistrationOptions({
      rpName,
      rpID: rpId,
      userName: person.email,
      userDisplayName: person.name ?? person.email,
      // The user handle is the subject: a discoverable credential tells us whose it is.
      userID: new TextEncoder().encode(person.id),
      attestationType: 'none',
      // A discoverable credential (a passkey), verified by PIN or biometric.
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      excludeCredentials: existing.map((passkey) => ({ id: passkey.credentialId, transports: transportsOf(passkey) })),
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await newChallenge('register', boundTo, person.id, options.challenge);
    return options;
  }

  async function checkRegistration(userId: string, boundTo: string, response: unknown, name: string, origin: RequestOrigin): Promise<PasskeyResult<{ passkey: NewPasskey; deviceType: string }>> {
    const parsed = AttestationSchema.safeParse(response);
    if (!parsed.success) return fail('malformed', userId, origin);
    const challenge = challengeOf(parsed.data.response.clientDataJSON);
    const issued = challenge ? await store.consumeChallenge(challenge, 'register', boundTo, now()) : null;
    if (!challenge) return fail('malformed', userId, origin);
    if (!issued || issued.userId !== userId) return fail('unknown_challenge', userId, origin);
    const { verifyRegistrationResponse } = await webauthn();
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response: parsed.data as RegistrationResponseJSON,
        expectedChallenge: issued.challenge,
        expectedOrigin,
        expectedRPID: rpId,
        requireUserVerification: true,
      });
    } catch (error) {
      return fail('invalid', userId, origin, { problem: (error as Error).message.slice(0, 200) });
    }
    if (!verification.verified) return fail('invalid', userId, origin);
    const { credential, credentialDeviceType, credentialBackedUp } = verification.registrationInfo;
    if (await store.findByCredentialId(credential.id)) return fail('already_registered', userId, origin);
    const passkey: NewPasskey = {
      userId,
      credentialId: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      counter: credential.counter,
      transports: (parsed.data.response.transports ?? []).filter((t) => /^[a-z-]{1,32}$/.test(t)),
      name,
      deviceType: credentialDeviceType,
      backedUp: credentialBackedUp,
    };
    return { ok: true, passkey, deviceType: credentialDeviceType };
  }

  return {
    rpId,

    list: async (userId) => (await store.listByUser(userId)).map(toPasskeyView),

    count: (userId) => store.countByUser(userId),

    async registrationOptions(userId, boundTo) {
      const user = await users.findById(userId);
      if (!user) throw new Error('registration options for an account that does not exist');
      return registrationOptionsFor(user, await store.listByUser(userId), boundTo);
    },

    newAccountRegistrationOptions: (person, boundTo) => registrationOptionsFor(person, [], boundTo),

    checkRegistration,

    async register(userId, boundTo, response, name, origin) {
      const checked = await checkRegistration(userId, boundTo, response, name, origin);
      if (!checked.ok) return checked;
      let created: Passkey;
      try {
        created = await store.create(checked.passkey, now());
      } catch (error) {
        if ((error as { code?: string }).code === 'P2002') return fail('already_registered', userId, origin);
        throw error;
      }
      await audit.record({ type: 'passkey.added', accountId: userId, ...origin, details: { passkey_id: created.id, name, device_type: checked.deviceType } });
      return { ok: true, passkey: toPasskeyView(created) };
    },

    async signInOptions(boundTo) {
      // No allowCredentials: the browser offers the passkeys it holds for this RP ID.
      const options = await (await webauthn()).generateAuthenticationOptions({ rpID: rpId, userVerification: 'required', timeout: CHALLENGE_TTL_SECONDS * 1000 });
      await newChallenge('sign_in', boundTo, null, options.challenge);
      return options;
    },

    async secondFactorOptions(userId, boundTo) {
      const passkeys = await store.listByUser(userId);
      const options = await (await webauthn()).generateAuthenticationOptions({
        rpID: rpId,
        allowCredentials: passkeys.map((passkey) => ({ id: passkey.credentialId, transports: transportsOf(passkey) })),
        // The password was the first factor: the authenticator's presence is the second.
        userVerification: 'preferred',
        timeout: CHALLENGE_TTL_SECONDS * 1000,
      });
      await newChallenge('second_factor', boundTo, userId, options.challenge);
      return options;
    },

    async signIn(boundTo, response, origin) {
      const parsed = AssertionSchema.safeParse(response);
      const known = parsed.success ? await store.findByCredentialId(parsed.data.id) : null;
      const user = known ? await users.findById(known.userId) : null;
      // Counted like a password attempt: by the account's email (so a lockout covers both), or by
      // the credential when it is unknown, and by the address.
      const attempt = await signInLimits.begin(user?.email ?? `passkey:${parsed.success ? parsed.data.id : 'malformed'}`, origin.ip);
      if (attempt.locked.length) {
        // The challenge is used up all the same.
        const challenge = parsed.success ? challengeOf(parsed.data.response.clientDataJSON) : null;
        if (challenge) await store.consumeChallenge(challenge, 'sign_in', boundTo, now());
        await attempt.failed();
        return fail('locked', user?.id, origin, { locked: attempt.locked });
      }
      const checked = await checkAssertion('sign_in', boundTo, response, true, origin);
      if (!checked.ok) {
        for (const scope of await attempt.failed()) {
          const { lockout: lockoutSeconds, failureWindow: windowSeconds } = signInLimits.settings;
          const { clientId, ...where } = origin;
          await audit.record({ type: 'sign_in.locked', accountId: user?.id ?? null, clientId: clientId ?? null, ...where, details: { scope, method: 'passkey', lockoutSeconds, windowSeconds } });
        }
        return checked;
      }
      await attempt.succeeded();
      const { clientId, ...where } = origin;
      await audit.record({ type: 'sign_in.success', accountId: checked.accountId, clientId: clientId ?? null, ...where, details: { method: 'passkey' } });
      return { ok: true, accountId: checked.accountId };
    },

    async verifySecondFactor(userId, boundTo, response, origin) {
      const checked = await checkAssertion('second_factor', boundTo, response, false, origin, userId);
      return checked.ok ? { ok: true, userVerified: checked.userVerified } : checked;
    },

    async rename(userId, id, name, { details, ...origin }) {
      const renamed = await store.rename(userId, id, name);
      if (renamed) await audit.record({ type: 'passkey.renamed', accountId: userId, ...origin, details: { passkey_id: id, name, ...details } });
      return renamed;
    },

    async remove(userId, id, { details, ...origin }) {
      const removed = await store.remove(userId, id);
      if (removed) await audit.record({ type: 'passkey.removed', accountId: userId, ...origin, details: { passkey_id: id, ...details } });
      return removed;
    },

    async removeOwn(userId, id, { details, ...origin }) {
      const outcome = await store.removeUnlessLast(userId, id);
      if (outcome === 'removed') await audit.record({ type: 'passkey.removed', accountId: userId, ...origin, details: { passkey_id: id, ...details } });
      return outcome;
    },
  };
}
