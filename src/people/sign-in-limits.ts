// Limits on guessing passwords. Every attempt is counted before the password is checked, per
// account and per client IP, so parallel guesses cannot slip past the limit. The account is the
// normalized email, hashed: unknown emails are limited exactly like known ones (nothing tells them
// apart) and the table never holds what people typed. An attempt first waits delayStepMs for each
// earlier attempt on the account in the window; the failure that reaches a limit locks the account
// or the IP for lockoutSeconds, and a locked attempt is refused without looking at the password.
// A success clears the account's counter and takes back its own count on the IP.
import { createHash } from 'node:crypto';
import type { Config } from '../config/index.js';
import { counter, ipKey } from '../core/counters.js';
import type { DbHandle } from '../db/client.js';
import { normalizeEmail } from './store.js';

type BruteForceSettings = Config['bruteForce'];

/** No answer waits longer than this, however many failures came before. */
export const MAX_SIGN_IN_DELAY_MS = 5000;

const accountKey = (email: string) => createHash('sha256').update(normalizeEmail(email), 'utf8').digest('base64url');

export type LockScope = 'account' | 'ip';

export interface SignInAttempt {
  /** The limits this attempt is over: refuse it whatever the password. */
  readonly locked: readonly LockScope[];
  /** How long to wait before answering (whatever the answer). */
  readonly delayMs: number;
  /** The attempt was refused: returns the limits this failure has just locked. */
  failed(): Promise<LockScope[]>;
  /** The password was right: clears the account's counter and takes back this attempt's count on the IP. */
  succeeded(): Promise<void>;
}

export interface SignInLimits {
  /** Counts an attempt (before the password is checked) and says whether it may go ahead. */
  begin(email: string, ip: string | null | undefined): Promise<SignInAttempt>;
  readonly settings: BruteForceSettings;
}

export function createSignInLimits(db: DbHandle, settings: BruteForceSettings): SignInLimits {
  const accounts = counter(db, 'sign-in:account', settings.accountMaxFailures, settings.failureWindow);
  const ips = counter(db, 'sign-in:ip', settings.ipMaxFailures, settings.failureWindow);

  return {
    settings,
    async begin(email, ip) {
      const keys = { account: accountKey(email), ip: ipKey(ip) };
      const [account, address] = await Promise.all([accounts.penalty(keys.account), ips.penalty(keys.ip)]);
      const locked: LockScope[] = [];
      if (account.consumedPoints > settings.accountMaxFailures) locked.push('account');
      if (address.consumedPoints > settings.ipMaxFailures) locked.push('ip');
      const earlier = Math.min(account.consumedPoints - 1, settings.accountMaxFailures);
      return {
        locked,
        delayMs: Math.min(Math.max(earlier, 0) * settings.delayStepMs, MAX_SIGN_IN_DELAY_MS),
        async failed() {
          // Counts are atomic increments, so exactly one failure sees the limit reached.
          const reached: LockScope[] = [];
          if (account.consumedPoints === settings.accountMaxFailures) reached.push('account');
          if (address.consumedPoints === settings.ipMaxFailures) reached.push('ip');
          await Promise.all(reached.map((scope) => (scope === 'account' ? accounts.block(keys.account, settings.lockout) : ips.block(keys.ip, settings.lockout))));
          return reached;
        },
        async succeeded() {
          await Promise.all([accounts.delete(keys.account), ips.reward(keys.ip)]);
        },
      };
    },
  };
}
