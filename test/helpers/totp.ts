// Codes as an authenticator app shows them (RFC 6238, made with otplib) for a chosen 30-second
// step, so a test can use the current step, the next one, or a code that is not right.
import { generate } from 'otplib';
import type { Mfa } from '../../src/people/mfa.js';

export const currentStep = () => Math.floor(Date.now() / 30_000);

/** The code of `step` for `secret`. */
export const codeAt = (secret: string, step: number) => generate({ secret, epoch: step * 30 });

/** A six-digit code that is not `code`. */
export const anotherCode = (code: string) => String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');

/**
 * Turns TOTP on for `userId` as the enrolment page does: a pending secret, then the current
 * step's code. Returns the secret, the recovery codes shown once, and that step: the next code
 * the person can use is the next step's (each step is accepted once).
 */
export async function enrolTotp(mfa: Mfa, userId: string) {
  if (!(await mfa.beginEnrolment(userId))) throw new Error(`${userId} already has TOTP`);
  const secret = (await mfa.describeEnrolment(userId))?.secret as string;
  const step = currentStep();
  const recoveryCodes = await mfa.confirmEnrolment(userId, await codeAt(secret, step));
  if (!recoveryCodes) throw new Error(`the enrolment of ${userId} was refused`);
  return { secret, recoveryCodes, step };
}
