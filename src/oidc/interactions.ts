// The login steps the interaction routes call (the consent step is consent.ts). Routes stay thin:
// they load the interaction, check the prompt, call one function here, then finish or render.
//
// A sign-in with a second factor takes several requests within one login prompt. After the
// password, the step that is still owed is kept server-side in the engine's Interaction
// (interaction-state.ts), never in the form. Finishing the prompt replaces it with the login.
//
// A pending link (an upstream identity whose email belongs to someone here, federation/sign-in.ts)
// is kept there the same way. The next password sign-in in that interaction must be the person
// with that email; the link then travels with the second factor still owed, and is made just
// before the prompt is finished. A wrong person, too many wrong codes or the interaction's end
// drop it: nothing is linked.
//
// Every way in passes the same gate: REQUIRE_VERIFIED_EMAIL asks for a verified address after the
// first factor (afterFirstFactor), or after all of them when one step gives both (afterAllFactors:
// an upstream's MFA, a passkey). A sign-in handoff (people/sign-in-handoff.ts, after accepting an
// invitation) stands for the factor the person has just proved, and goes on the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import { z } from 'zod';
import type { PasswordVerifier } from '../people/accounts.js';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import { totpEnabled, type Mfa, type TotpEnrolment } from '../people/mfa.js';
import type { User } from '../people/store.js';
import type { Passkeys } from '../people/passkeys.js';
import type { SignInLimits } from '../people/sign-in-limits.js';
import type { SignInHandoffs } from '../people/sign-in-handoff.js';
import type { PendingLink } from '../federation/sign-in.js';
import { ACR_MFA, ACR_PASSWORD, MFA_REQUIRED_REASON } from './provider.js';
import { createConsentSteps, type ConsentSteps } from './consent.js';
import { createLoadedInteractions } from './loaded-interactions.js';
import { InteractionSchema, LINK_KEY, MAX_SECOND_FACTOR_FAILURES, PENDING_KEY, PendingSecondFactorSchema, type Interaction, type PendingSecondFactor } from './interaction-state.js';

/**
 * The amr values (RFC 8176) we set: the first factor ('pwd', or 'fed' for an upstream provider), then the
 * second ('otp' for a TOTP code, 'hwk' for a passkey); a user-verified passkey alone is ['hwk', 'user'].
 */
const PASSKEY_ALONE_AMR = ['hwk', 'user'];

/** The person's row as the password check read it: whether a TOTP code is owed needs no second read. */
type SignedInPerson = Pick<User, 'totpEnabledAt' | 'totpSecretEncrypted'>;

/** What the second-factor page offers this person. */
export interface SecondFactorMethods {
  totp: boolean;
  passkey: boolean;
}

/** What a password or code submission led to; `finished` means the response was sent. */
export type StepOutcome = 'finished' | 'wrong' | 'second_factor' | 'too_many_failures' | LinkRefusal;

/** Why a password sign-in did not confirm the pending link (it is forgotten, nothing linked). */
export type LinkRefusal = 'link_account_mismatch' | 'link_expired';

/** Pending links (federation/sign-in.ts): whether the person who signed in may take it, and making it. */
export interface PendingLinks {
  accept(accountId: string, link: PendingLink, origin: RequestOrigin): Promise<LinkRefusal | null>;
  /** Throws FederationRefused (recorded) when it cannot be made. */
  complete(accountId: string, link: PendingLink, origin: RequestOrigin): Promise<void>;
}

/** REQUIRE_VERIFIED_EMAIL (people/email-verification.ts): whether an address is verified, and sending its link again. */
export interface EmailGate {
  isVerified(accountId: string): Promise<boolean>;
  resend(accountId: string, origin: RequestOrigin): Promise<'sent' | 'too_many'>;
}

export interface InteractionSteps extends ConsentSteps {
  load(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  /** Finishes the login prompt, or records that a second factor (or enrolment) is owed. */
  submitLogin(req: IncomingMessage, res: ServerResponse, interaction: Interaction, email: string, password: string, origin: RequestOrigin): Promise<StepOutcome>;
  /**
   * After an upstream identity provider said who this is (federation/sign-in.ts): finishes the
   * login prompt, or records the local second factor still owed. A trusted provider's upstream
   * MFA counts as the second factor.
   */
  submitFederatedLogin(req: IncomingMessage, res: ServerResponse, interaction: Interaction, signIn: { accountId: string; upstreamMfa: boolean }): Promise<'finished' | 'second_factor'>;
  /** Keeps a pending link in the interaction: the next password sign-in here may confirm it. */
  offerLink(req: IncomingMessage, res: ServerResponse, link: PendingLink): Promise<void>;
  /** The link this interaction offers, before its password step. */
  pendingLink(interaction: Interaction): PendingLink | undefined;
  /** The second factor still owed in this interaction, if its password step was passed. */
  pendingSecondFactor(interaction: Interaction): PendingSecondFactor | undefined;
  describeEnrolment(pending: PendingSecondFactor): Promise<TotpEnrolment | null>;
  secondFactorMethods(pending: PendingSecondFactor): Promise<SecondFactorMethods>;
  /** WebAuthn options for this page: the second step's (the person's passkeys) or a passwordless sign-in's. */
  passkeyOptions(interaction: Interaction, pending: PendingSecondFactor | undefined): Promise<unknown>;
  /** A passkey's answer: finishes the login prompt (a passwordless sign-in, or the second step), or says why not. */
  submitPasskey(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor | undefined, response: unknown, origin: RequestOrigin): Promise<StepOutcome>;
  submitTotpCode(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor, code: string, origin: RequestOrigin): Promise<StepOutcome>;
  submitRecoveryCode(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor, code: string, origin: RequestOrigin): Promise<StepOutcome>;
  /** Enables TOTP when the code is right and returns the recovery codes to show once. */
  confirmEnrolment(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor, code: string, origin: RequestOrigin): Promise<string[] | 'wrong' | 'too_many_failures'>;
  /** After the recovery codes were shown: finishes the login prompt as an MFA sign-in. */
  finishAfterEnrolment(req: IncomingMessage, res: ServerResponse, pending: PendingSecondFactor, origin: RequestOrigin): Promise<void>;
  abortInteraction(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The address is verified now: goes on as after the password (a second factor, or finished); 'unverified' when it is not. */
  continueAfterVerification(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor, origin: RequestOrigin): Promise<StepOutcome | 'unverified'>;
  resendVerification(pending: PendingSecondFactor, origin: RequestOrigin): Promise<'sent' | 'too_many'>;
  /**
   * The sign-in page is about to be shown and the browser holds a sign-in handoff: when it is good
   * for this request, the first factor is given (a password's, or a passkey's, which is both) and
   * the sign-in goes on from there; 'unused' shows the sign-in page.
   */
  signInWithHandoff(req: IncomingMessage, res: ServerResponse, interaction: Interaction, secret: string, origin: RequestOrigin): Promise<'finished' | 'second_factor' | 'unused'>;
}

/**
 * `links`: pending links of upstream identities (federation/); without it none is offered.
 * `emailGate`: REQUIRE_VERIFIED_EMAIL; without it no address is asked to be verified first.
 * `handoffs`: sign-in handoffs after an accepted invitation; without it none is used.
 */
export function createInteractionSteps(
  provider: Provider,
  passwords: PasswordVerifier,
  audit: AuditLog,
  mfa: Mfa,
  secondFactorLimits: SignInLimits,
  passkeys: Passkeys,
  links?: PendingLinks,
  emailGate?: EmailGate,
  handoffs?: SignInHandoffs,
): InteractionSteps {
  // Each request's writes of the interaction reuse the engine's interaction its load found (loaded-interactions.ts).
  const interactions = createLoadedInteractions(provider);
  /** Finishes the login prompt, first making the link it carries (a refusal forgets the whole step). */
  async function finishLogin(req: IncomingMessage, res: ServerResponse, login: NonNullable<InteractionResults['login']>, link?: { pending: PendingLink; origin: RequestOrigin }) {
    if (link && links) {
      try {
        await links.complete(login.accountId, link.pending, link.origin);
      } catch (error) {
        await keepPending(req, res, undefined);
        throw error;
      }
    }
    await interactions.finish(req, res, { login });
  }
  const finishWithSecondFactor = (req: IncomingMessage, res: ServerResponse, pending: PendingSecondFactor, origin: RequestOrigin) =>
    finishLogin(req, res, { accountId: pending.accountId, amr: [pending.via, 'otp'], acr: ACR_MFA }, pending.link && { pending: pending.link, origin });

  /**
   * After the first factor (a password or an upstream provider): a verified address first when
   * REQUIRE_VERIFIED_EMAIL asks for one, then the second factor, or finished (with the link accepted at the password step).
   */
  async function afterFirstFactor(req: IncomingMessage, res: ServerResponse, interaction: Interaction, accountId: string, via: 'pwd' | 'fed', link?: { pending: PendingLink; origin: RequestOrigin }, person?: SignedInPerson) {
    if (emailGate && !(await emailGate.isVerified(accountId))) {
      await keepPending(req, res, { accountId, stage: 'verify_email', failures: 0, via, link: link?.pending });
      return 'second_factor' as const;
    }
    return askSecondFactor(req, res, interaction, accountId, via, link, person);
  }

  /** When one step gave every factor (`amr`: an upstream's MFA, a passkey): a verified address first when REQUIRE_VERIFIED_EMAIL asks for one, then finished as MFA. */
  async function afterAllFactors(req: IncomingMessage, res: ServerResponse, accountId: string, amr: string[]) {
    if (emailGate && !(await emailGate.isVerified(accountId))) {
      await keepPending(req, res, { accountId, stage: 'verify_email', failures: 0, complete: amr });
      return 'second_factor' as const;
    }
    await finishLogin(req, res, { accountId, amr, acr: ACR_MFA });
    return 'finished' as const;
  }

  /** The second factor the person or the client asks for, or finished; `person`: their row as this request's password check read it. */
  async function askSecondFactor(req: IncomingMessage, res: ServerResponse, interaction: Interaction, accountId: string, via: 'pwd' | 'fed', link?: { pending: PendingLink; origin: RequestOrigin }, person?: SignedInPerson) {
    const mfaRequired = interaction.prompt.reasons.includes(MFA_REQUIRED_REASON);
    // A TOTP code is always asked of who has one; a passkey when the client requires MFA.
    if ((person ? totpEnabled(person) : await mfa.isEnabled(accountId)) || (mfaRequired && (await passkeys.count(accountId)) > 0)) {
      await keepPending(req, res, { accountId, stage: 'code', failures: 0, via, link: link?.pending });
      return 'second_factor' as const;
    }
    if (mfaRequired) {
      // false only when TOTP got enabled since the check above: ask for a code then.
      const stage = (await mfa.beginEnrolment(accountId)) ? 'enroll' : 'code';
      await keepPending(req, res, { accountId, stage, failures: 0, via, link: link?.pending });
      return 'second_factor' as const;
    }
    await finishLogin(req, res, { accountId, amr: [via], acr: ACR_PASSWORD }, link);
    return 'finished' as const;
  }

  /** Stores what is owed in the interaction (server-side); undefined forgets the password step. */
  async function keepPending(req: IncomingMessage, res: ServerResponse, pending: z.input<typeof PendingSecondFactorSchema> | undefined) {
    await interactions.saveResult(req, res, pending ? { [PENDING_KEY]: pending } : {});
  }

  /** Counts a wrong code; after too many the password step is forgotten. */
  async function countFailure(req: IncomingMessage, res: ServerResponse, interaction: Interaction, pending: PendingSecondFactor, method: string, origin: RequestOrigin) {
    const failures = pending.failures + 1;
    await audit.record({ type: 'mfa.failure', accountId: pending.accountId, clientId: interaction.params.client_id, ...origin, details: { method, failures } });
    if (failures >= MAX_SECOND_FACTOR_FAILURES) {
      await keepPending(req, res, undefined);
      return 'too_many_failures' as const;
    }
    await keepPending(req, res, { ...pending, failures });
    return 'wrong' as const;
  }

  /**
   * One second-factor check under the limits: counted before the check, delayed by the account's
   * earlier failures, refused unchecked while the account or the address is locked. A right code
   * clears the account's count; a right password does not.
   */
  async function limitSecondFactor<T>(
    req: IncomingMessage,
    res: ServerResponse,
    interaction: Interaction,
    pending: PendingSecondFactor,
    method: string,
    origin: RequestOrigin,
    check: () => Promise<T | null | false>,
  ): Promise<T | 'wrong' | 'too_many_failures'> {
    const attempt = await secondFactorLimits.begin(pending.accountId, origin.ip);
    await sleep(attempt.delayMs);
    const result = attempt.locked.length ? null : await check();
    if (result) {
      await attempt.succeeded();
      return result;
    }
    const clientId = interaction.params.client_id;
    for (const scope of await attempt.failed()) {
      const { lockout: lockoutSeconds, failureWindow: windowSeconds } = secondFactorLimits.settings;
      await audit.record({ type: 'mfa.locked', accountId: pending.accountId, clientId, ...origin, details: { scope, method, lockoutSeconds, windowSeconds } });
    }
    if (!attempt.locked.length) return countFailure(req, res, interaction, pending, method, origin);
    await audit.record({ type: 'mfa.failure', accountId: pending.accountId, clientId, ...origin, details: { method, reason: 'locked', locked: attempt.locked } });
    await keepPending(req, res, undefined);
    return 'too_many_failures';
  }

  return {
    async load(req, res) {
      return InteractionSchema.parse(await interactions.load(req, res));
    },

    ...createConsentSteps(provider, audit, interactions),

    async submitLogin(req, res, interaction, email, password, origin) {
      const person = await passwords.signInWithPassword(email, password, origin);
      if (!person) return 'wrong';
      const accountId = person.id;
      const pending = links && interaction.result?.[LINK_KEY];
      if (!pending) return afterFirstFactor(req, res, interaction, accountId, 'pwd', undefined, person);
      const refusal = await links.accept(accountId, pending, origin);
      if (refusal) {
        await keepPending(req, res, undefined);
        return refusal;
      }
      return afterFirstFactor(req, res, interaction, accountId, 'pwd', { pending, origin }, person);
    },

    async offerLink(req, res, link) {
      await interactions.saveResult(req, res, { [LINK_KEY]: link });
    },

    pendingLink: (interaction) => (links ? interaction.result?.[LINK_KEY] : undefined),

    async submitFederatedLogin(req, res, interaction, { accountId, upstreamMfa }) {
      if (!upstreamMfa) return afterFirstFactor(req, res, interaction, accountId, 'fed');
      return afterAllFactors(req, res, accountId, ['fed', 'mfa']);
    },

    async continueAfterVerification(req, res, interaction, pending, origin) {
      if (emailGate && !(await emailGate.isVerified(pending.accountId))) return 'unverified';
      if (pending.complete) {
        await finishLogin(req, res, { accountId: pending.accountId, amr: pending.complete, acr: ACR_MFA });
        return 'finished';
      }
      return askSecondFactor(req, res, interaction, pending.accountId, pending.via, pending.link && { pending: pending.link, origin });
    },

    resendVerification: async (pending, origin) => (emailGate ? emailGate.resend(pending.accountId, origin) : 'too_many'),

    pendingSecondFactor: (interaction) => interaction.result?.[PENDING_KEY],

    describeEnrolment: (pending) => mfa.describeEnrolment(pending.accountId),

    async secondFactorMethods(pending) {
      const [totp, count] = await Promise.all([mfa.isEnabled(pending.accountId), passkeys.count(pending.accountId)]);
      return { totp, passkey: count > 0 };
    },

    passkeyOptions: (interaction, pending) => (pending ? passkeys.secondFactorOptions(pending.accountId, interaction.uid) : passkeys.signInOptions(interaction.uid)),

    async submitPasskey(req, res, interaction, pending, response, origin) {
      const clientId = interaction.params.client_id;
      if (pending) {
        const outcome = await limitSecondFactor(req, res, interaction, pending, 'passkey', origin, async () => {
          const checked = await passkeys.verifySecondFactor(pending.accountId, interaction.uid, response, { ...origin, clientId });
          return checked.ok ? checked : null;
        });
        if (outcome === 'wrong' || outcome === 'too_many_failures') return outcome;
        await finishLogin(req, res, { accountId: pending.accountId, amr: [pending.via, 'hwk'], acr: ACR_MFA }, pending.link && { pending: pending.link, origin });
        return 'finished';
      }
      const signedIn = await passkeys.signIn(interaction.uid, response, { ...origin, clientId });
      if (!signedIn.ok) return 'wrong';
      // User verification was required: something held and something known or been.
      return afterAllFactors(req, res, signedIn.accountId, PASSKEY_ALONE_AMR);
    },

    async signInWithHandoff(req, res, interaction, secret, origin) {
      // While an upstream identity waits to be linked, only a password sign-in may confirm it.
      if (!handoffs || interaction.result?.[LINK_KEY]) return 'unused';
      const handoff = await handoffs.redeem(secret, { clientId: interaction.params.client_id, loginHint: interaction.params.login_hint }, origin);
      if (!handoff) return 'unused';
      // A passkey made with user verification is both factors, as at a passwordless sign-in.
      if (handoff.method === 'passkey') return afterAllFactors(req, res, handoff.accountId, PASSKEY_ALONE_AMR);
      return afterFirstFactor(req, res, interaction, handoff.accountId, 'pwd');
    },

    async submitTotpCode(req, res, interaction, pending, code, origin) {
      const outcome = await limitSecondFactor(req, res, interaction, pending, 'totp', origin, () => mfa.verifyCode(pending.accountId, code));
      if (outcome !== true) return outcome;
      await finishWithSecondFactor(req, res, pending, origin);
      return 'finished';
    },

    async submitRecoveryCode(req, res, interaction, pending, code, origin) {
      const used = await limitSecondFactor(req, res, interaction, pending, 'recovery_code', origin, () => mfa.useRecoveryCode(pending.accountId, code));
      if (used === 'wrong' || used === 'too_many_failures') return used;
      await audit.record({ type: 'mfa.recovery_code_used', accountId: pending.accountId, clientId: interaction.params.client_id, ...origin, details: { remaining: used.remaining } });
      await finishWithSecondFactor(req, res, pending, origin);
      return 'finished';
    },

    async confirmEnrolment(req, res, interaction, pending, code, origin) {
      const codes = await limitSecondFactor(req, res, interaction, pending, 'enrolment', origin, () => mfa.confirmEnrolment(pending.accountId, code));
      if (codes === 'wrong' || codes === 'too_many_failures') return codes;
      await audit.record({ type: 'mfa.enrolled', accountId: pending.accountId, clientId: interaction.params.client_id, ...origin, details: { method: 'totp' } });
      await keepPending(req, res, { accountId: pending.accountId, stage: 'enrolled', failures: 0, via: pending.via, link: pending.link });
      return codes;
    },

    finishAfterEnrolment: (req, res, pending, origin) => finishWithSecondFactor(req, res, pending, origin),

    async abortInteraction(req, res) {
      const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
      await interactions.finish(req, res, result);
    },
  };
}
