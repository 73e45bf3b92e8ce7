// What an interaction carries between the requests of one login prompt, kept server-side in the
// engine's Interaction as its `result` (the only open-ended field the engine persists), never in
// a form: the second factor still owed after the first ({ accountId, stage }), and a pending link
// of an upstream identity (federation/sign-in.ts). Parsed here, at the edge, like the rest of the
// interaction details our pages use; the steps that read and write them are in interactions.ts.
import { z } from 'zod';
import { PendingLinkSchema } from '../federation/sign-in.js';

/** Where the result keeps the pending second factor. */
export const PENDING_KEY = 'gatehouse_mfa';
/** Where the result keeps a pending link, before the password step. */
export const LINK_KEY = 'gatehouse_link';

/**
 * Wrong codes allowed per password step; then the password is asked again. Across password steps,
 * the account's and the address's second-factor limits (people/sign-in-limits.ts) apply.
 */
export const MAX_SECOND_FACTOR_FAILURES = 5;

export const PendingSecondFactorSchema = z.object({
  accountId: z.string().min(1),
  /**
   * code: ask for a TOTP code or a passkey (whichever the person has); enroll: set TOTP up first; enrolled: codes shown, continue;
   * verify_email: REQUIRE_VERIFIED_EMAIL and the address is not verified yet (before any second factor).
   */
  stage: z.enum(['code', 'enroll', 'enrolled', 'verify_email']),
  failures: z.number().int().min(0).default(0),
  /** The first factor: the password, or an upstream identity provider (RFC 8176 `fed`). */
  via: z.enum(['pwd', 'fed']).default('pwd'),
  /** An upstream identity to link once the second factor is passed (accepted at the password step). */
  link: PendingLinkSchema.optional(),
  /** Every factor given in one step (an upstream's MFA, a passkey): only the address was owed; then finished as MFA with this amr. */
  complete: z.array(z.string().max(16)).min(1).max(4).optional(),
});

export type PendingSecondFactor = z.infer<typeof PendingSecondFactorSchema>;

/** The parts of the engine's interaction details that our pages use, parsed at the edge. */
export const InteractionSchema = z.object({
  uid: z.string(),
  /** A random value the engine keeps with the interaction and never shows (binds form tokens). */
  cid: z.string().min(1),
  prompt: z.object({
    name: z.string(),
    reasons: z.array(z.string()).default([]),
    details: z
      .object({
        missingOIDCScope: z.array(z.string()).optional(),
        missingOIDCClaims: z.array(z.string()).optional(),
        missingResourceScopes: z.record(z.string(), z.array(z.string())).optional(),
      })
      .loose()
      .default({}),
  }),
  params: z
    .object({
      client_id: z.string(),
      login_hint: z.string().optional(),
      ui_locales: z.string().optional(),
      scope: z.string().optional(),
    })
    .loose(),
  session: z.object({ accountId: z.string(), uid: z.string().optional() }).loose().optional(),
  grantId: z.string().optional(),
  result: z.object({ [PENDING_KEY]: PendingSecondFactorSchema.optional().catch(undefined), [LINK_KEY]: PendingLinkSchema.optional().catch(undefined) }).loose().optional(),
});

export type Interaction = z.infer<typeof InteractionSchema>;
