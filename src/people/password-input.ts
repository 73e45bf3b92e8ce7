// A password as an administrator gives it (admin API, CLI, console): a new one, which must meet
// the password policy and is hashed with bcrypt at BCRYPT_COST, or an existing hash from another
// identity server (password-hashes.ts), stored as given and replaced at the next sign-in.
import bcrypt from 'bcrypt';
import { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import { checkOneSecret, PASSWORD_HASH } from './password-hashes.js';
import { checkPassword } from './password-policy.js';

export const PASSWORD = z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).meta({ format: 'password' });

/** The two ways to give a password, as fields of a body: exactly one (checkOneSecret). */
export const PASSWORD_OR_HASH = { password: PASSWORD.optional(), password_hash: PASSWORD_HASH.optional() };

export const SetPasswordInput = z
  .strictObject(PASSWORD_OR_HASH, { error: 'must be an object' })
  .superRefine(checkOneSecret, { when: () => true })
  .meta({ id: 'SetPassword', description: 'Either password (the password policy applies) or password_hash (an existing bcrypt or argon2id hash).' });

/** The hash to store: the new password's (the policy applies), or the imported hash as it is. */
export async function hashToStore(given: { password?: string | undefined; password_hash?: string | undefined }, email: string, settings: { bcryptCost: number; passwordMinLength: number }): Promise<string> {
  if (given.password_hash !== undefined) return given.password_hash;
  const password = given.password ?? '';
  const problem = checkPassword(password, { minLength: settings.passwordMinLength, email });
  if (problem) throw ValidationError.field('password', problem);
  return bcrypt.hash(password, settings.bcryptCost);
}
