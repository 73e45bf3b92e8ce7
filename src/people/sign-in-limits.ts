// Limits on guessing passwords and second factors. Every attempt is counted before the secret is
// checked, per account and per client IP, so parallel guesses cannot slip past the limit. An
// attempt first waits delayStepMs for each earlier attempt on the account in the window; the
// failure that reaches a limit locks the account or the IP for lockoutSeconds, and a locked attempt
// is refused without looking at the secret. A success clears the account's counter of that kind
// and takes back its own count on the IP.
//
// Passwords and second factors (TOTP codes, recovery codes, later passkeys) count separately: a
// right password must not clear the count of wrong codes, or knowing the password would allow
// endless code guesses. For passwords the account is the normalized email, hashed: unknown emails
// are limited exactly like known ones (nothing tells them apart) and the table never holds what
// people typed; a second factor is asked only of a known account, so it is counted by account id.
import { createHash } from 'node:crypto';
import type { Config } from '../config/index.js';
import { counter, counterPair, counterRowKey, ipKey } from '../core/counters.js';
import type { DbHandle } from '../db/client.js';
import { normalizeEmail } from './store.js';

type BruteForceSettings = Config['bruteForce'];

/** No answer waits longer than this, however many failures came before. */
export const MAX_SIGN_IN_DELAY_MS = 5000;

export type LockScope = 'account' | 'ip';

/** What is being guessed: a password, or a second factor (counted apart). */
export type AttemptKind = 'password' | 'second_factor';

const COUNTER_NAMES: Record<AttemptKind, string> = { password: 'sign-in', second_factor: 'second-factor' };

/** How each kind names an account in its counter: passwords by the hashed normalized email, second factors by account id. */
const ACCOUNT_KEYS: Record<AttemptKind, (account: string) => string> = {
  password: (email) => createHash('sha256').update(normalizeEmail(email), 'utf8').digest('base64url'),
  second_factor: (accountId) => accountId,
};

/** The key prefix of one kind's counters in the RateLimiterFlexible table (`sign-in:account`, `second-factor:ip` …). */
export const counterPrefix = (kind: AttemptKind, scope: LockScope) => `${COUNTER_NAMES[kind]}:${scope}`;

/** The row counting failures of `account` (the email typed for passwords, the account id for second factors). */
export const accountCounterKey = (kind: AttemptKind, account: string) => counterRowKey(counterPrefix(kind, 'account'), ACCOUNT_KEYS[kind](account));

/** The row counting failures from `ip` (by ipKey: IPv6 by its /64). */
export const ipCounterKey = (kind: AttemptKind, ip: string | null | undefined) => counterRowKey(counterPrefix(kind, 'ip'), ipKey(ip));

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
  /**
   * Counts an attempt (before the secret is checked) and says whether it may go ahead. `account`
   * is the email typed (passwords) or the account id (second factors).
   */
  begin(account: string, ip: string | null | undefined): Promise<SignInAttempt>;
  readonly settings: BruteForceSettings;
}

/** Limits on password guesses, per (hashed) email and per IP. */
export function createSignInLimits(db: DbHandle, settings: BruteForceSettings): SignInLimits {
  return createAttemptLimits(db, settings, 'password');
}

/** Limits on second-factor guesses (TOTP and recovery codes), per account id and per IP, apart from passwords'. */
export function createSecondFactorLimits(db: DbHandle, settings: BruteForceSettings): SignInLimits {
  return createAttemptLimits(db, settings, 'second_factor');
}

function createAttemptLimits(db: DbHandle, settings: BruteForceSettings, kind: AttemptKind): SignInLimits {
  const accounts = counter(db, counterPrefix(kind, 'account'), settings.accountMaxFailures, settings.failureWindow);
  const ips = counter(db, counterPrefix(kind, 'ip'), settings.ipMaxFailures, settings.failureWindow);
  const keyOfAccount = ACCOUNT_KEYS[kind];
  // Counting an attempt and settling a success each take one statement for both rows.
  const both = counterPair(db);

  return {
    settings,
    async begin(who, ip) {
      const keys = { account: keyOfAccount(who), ip: ipKey(ip) };
      const rows = { account: accountCounterKey(kind, who), ip: ipCounterKey(kind, ip) };
      const [accountPoints, ipPoints] = await both.count(rows.account, rows.ip, settings.failureWindow);
      const locked: LockScope[] = [];
      if (accountPoints > settings.accountMaxFailures) locked.push('account');
      if (ipPoints > settings.ipMaxFailures) locked.push('ip');
      const earlier = Math.min(accountPoints - 1, settings.accountMaxFailures);
      return {
        locked,
        delayMs: Math.min(Math.max(earlier, 0) * settings.delayStepMs, MAX_SIGN_IN_DELAY_MS),
        async failed() {
          // Counts are atomic increments, so exactly one failure sees the limit reached.
          const reached: LockScope[] = [];
          if (accountPoints === settings.accountMaxFailures) reached.push('account');
          if (ipPoints === settings.ipMaxFailures) reached.push('ip');
          await Promise.all(reached.map((scope) => (scope === 'account' ? accounts.block(keys.account, settings.lockout) : ips.block(keys.ip, settings.lockout))));
          return reached;
        },
        async succeeded() {
          await both.clearAndTakeBack(rows.account, rows.ip);
        },
      };
    },
  };
}
