// What every new password must be: long enough, short enough for bcrypt to read all of it, and
// not one that attackers try first. In db/ so the seed file can use it; the account page and the
// admin API (oidc/, http/) call the same function. Sign-in applies only the 72-byte limit
// (accounts.ts): an old password that predates the rest of the policy still works.
import { isCommonPassword } from './common-passwords.js';

/** bcrypt reads only the first 72 bytes of a password and silently ignores the rest. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

/** PASSWORD_MIN_LENGTH's default (config/settings.ts), for callers without a Config at hand. */
export const DEFAULT_PASSWORD_MIN_LENGTH = 10;

export interface PasswordPolicy {
  /** In characters (Unicode code points), not bytes. */
  minLength: number;
  /** The account's email: neither it nor its part before the @ may be the password. */
  email?: string | undefined;
}

/** Why a new password is refused, for callers that word it themselves (the account page). */
export type PasswordProblem = 'too_short' | 'too_long' | 'control_characters' | 'email' | 'common';

/** null when the password is acceptable; otherwise the first rule it breaks. */
export function findPasswordProblem(password: string, { minLength, email }: PasswordPolicy): PasswordProblem | null {
  if ([...password].length < minLength) return 'too_short';
  if (Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_PASSWORD_BYTES) return 'too_long';
  // Nobody can type them into the sign-in form, and they are a classic truncation trick.
  if (/\p{Cc}/u.test(password)) return 'control_characters';
  // NFKC folds look-alikes such as full-width letters ("ｐａｓｓｗｏｒｄ") onto the plain ones.
  const folded = password.normalize('NFKC').toLowerCase();
  if (email) {
    const address = email.trim().normalize('NFKC').toLowerCase();
    const at = address.lastIndexOf('@');
    if (folded === address || (at > 0 && folded === address.slice(0, at))) return 'email';
  }
  if (isCommonPassword(folded) || /^(.)\1*$/su.test(folded)) return 'common';
  return null;
}

/**
 * null when the password is acceptable; otherwise why not, phrased to follow the field's name
 * ("password: must be at least 10 characters").
 */
export function checkPassword(password: string, policy: PasswordPolicy): string | null {
  const problem = findPasswordProblem(password, policy);
  switch (problem) {
    case null:
      return null;
    case 'too_short':
      return `must be at least ${policy.minLength} characters`;
    case 'too_long':
      return `must be at most ${BCRYPT_MAX_PASSWORD_BYTES} bytes in UTF-8 (${BCRYPT_MAX_PASSWORD_BYTES} plain letters, fewer with accents or emoji): bcrypt would silently ignore the rest`;
    case 'control_characters':
      return 'must not contain control characters (line breaks, tabs, NUL…)';
    case 'email':
      return 'must not be the email address or its part before the @';
    case 'common':
      return 'is one of the most commonly used passwords, which attackers try first; choose another (several unrelated words make a good one)';
  }
}
