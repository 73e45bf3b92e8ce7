// What a person's fields may be: the seed file, the admin API and the account page validate with
// these; a new password must also pass the policy (password-policy.ts).
import { z } from 'zod';
import { httpUrl, required, text } from '../core/fields.js';
import { GroupNames } from '../groups/schema.js';
import { checkOneSecret, PASSWORD_HASH } from './password-hashes.js';
import { checkPassword } from './password-policy.js';

/** An email address as stored: trimmed and lower-cased. */
export const EMAIL = z
  .string({ error: required('must be an email address') })
  .trim()
  .toLowerCase()
  .max(254, 'must be at most 254 characters')
  .pipe(z.email({ error: 'must be an email address' }));

/** A person's optional profile fields (OIDC claim names), shared by the seed file and the admin API. */
export const USER_PROFILE_FIELDS = {
  name: text().optional(),
  given_name: text().optional(),
  family_name: text().optional(),
  preferred_username: text().optional(),
  picture: httpUrl().optional(),
  locale: text(35).optional(),
};

/**
 * A user entry with a password, which must meet the policy (password-policy.ts) for
 * `passwordMinLength`, or an existing hash from another server (password-hashes.ts).
 */
export const userEntry = (passwordMinLength: number) =>
  z
    .strictObject(
      {
        email: EMAIL,
        password: z.string({ error: required('must be a string') }).optional(),
        password_hash: PASSWORD_HASH.optional(),
        ...USER_PROFILE_FIELDS,
        email_verified: z.boolean({ error: 'must be true or false' }).default(false),
        /** Exactly these groups (each declared in the file or existing); left out, memberships are left alone. */
        groups: GroupNames.optional(),
      },
      { error: 'must be an object' },
    )
    .superRefine(checkOneSecret, { when: () => true })
    .superRefine((user, ctx) => checkUserPassword(user, passwordMinLength, ctx), { when: () => true });

/** Runs even when other fields failed, so one run reports every problem. */
export function checkUserPassword(user: { email?: unknown; password?: unknown }, minLength: number, ctx: z.RefinementCtx): void {
  if (!user || typeof user !== 'object' || typeof user.password !== 'string') return; // already reported
  const email = typeof user.email === 'string' ? user.email : undefined;
  const problem = checkPassword(user.password, { minLength, email });
  if (problem) ctx.addIssue({ code: 'custom', path: ['password'], message: problem });
}
