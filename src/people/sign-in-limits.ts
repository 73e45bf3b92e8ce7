// Limits on guessing passwords and client credentials. The counters live in the database
// (the RateLimiterFlexible table, through rate-limiter-flexible's Prisma store), so every
// instance sharing it enforces the same limits.
//
// Sign-in: every attempt is counted before the password is checked, per account and per client
// IP, so parallel guesses cannot slip past the limit. The account is the normalized email,
// hashed: unknown emails are limited exactly like known ones (nothing tells them apart) and the
// table never holds what people typed. An attempt first waits delayStepMs for each earlier
// attempt on the account in the window; the failure that reaches a limit locks the account or
// the IP for lockoutSeconds, and a locked attempt is refused without looking at the password.
// A success clears the account's counter and takes back its own count on the IP.
//
// Client authentication: failures are counted per client_id; the failure that reaches the limit
// locks the client, and the engine then refuses it before checking any credential.
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { RateLimiterPrisma } from 'rate-limiter-flexible';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { normalizeEmail } from './store.js';
import type { Logger } from '../core/logger.js';
import type { AuditLog } from '../audit/log.js';

type BruteForceSettings = Config['bruteForce'];

/** No answer waits longer than this, however many failures came before. */
export const MAX_SIGN_IN_DELAY_MS = 5000;

/** A counter in the RateLimiterFlexible table whose window starts at its first point. */
export function counter(db: Db, keyPrefix: string, points: number, windowSeconds: number): RateLimiterPrisma {
  // Expired rows are deleted by startCounterSweeper, not by a timer per limiter.
  return new RateLimiterPrisma({ storeClient: db.prisma, tableName: 'rateLimiterFlexible', keyPrefix, points, duration: windowSeconds, clearExpiredByTimeout: false });
}

const accountKey = (email: string) => createHash('sha256').update(normalizeEmail(email), 'utf8').digest('base64url');

/**
 * The IP address a limit counts: IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 prefix, the
 * block one subscriber usually controls.
 */
export function ipKey(ip: string | null | undefined): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('::');
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const all = [...before, ...Array<string>(Math.max(8 - before.length - after.length, 0)).fill('0'), ...after];
  return `${all.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}

// ---------------------------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------------------------

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

export function createSignInLimits(db: Db, settings: BruteForceSettings): SignInLimits {
  const accounts = counter(db, 'sign-in:account', settings.accountMaxFailures, settings.windowSeconds);
  const ips = counter(db, 'sign-in:ip', settings.ipMaxFailures, settings.windowSeconds);

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
          await Promise.all(reached.map((scope) => (scope === 'account' ? accounts.block(keys.account, settings.lockoutSeconds) : ips.block(keys.ip, settings.lockoutSeconds))));
          return reached;
        },
        async succeeded() {
          await Promise.all([accounts.delete(keys.account), ips.reward(keys.ip)]);
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Client authentication at the engine's token, introspection, revocation, PAR and device
// authorization endpoints
// ---------------------------------------------------------------------------------------------

const CLIENT_AUTHENTICATED_ROUTES = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization']);
const CLIENT_AUTHENTICATED_ERROR_EVENTS = ['grant.error', 'introspection.error', 'revocation.error', 'pushed_authorization_request.error', 'device_authorization.error'];

export interface ClientAuthLimitDeps {
  db: Db;
  settings: BruteForceSettings;
  audit: AuditLog;
  logger: Logger;
  /**
   * How long a client's lock state, once read, is reused (0: read on every authentication). A
   * failure counted here drops it at once and a lock is kept until it ends, so only a lockout made
   * by another instance can take this long to reach this one (CLIENT_CACHE_TTL).
   */
  cacheSeconds?: number;
}

/**
 * Locks a client after `clientMaxFailures` failed authentications, whatever the method
 * (secret, client_secret_jwt, private_key_jwt). Install before the app mounts provider.callback().
 */
export function installClientAuthLimit(provider: Provider, { db, settings, audit, logger, cacheSeconds = 0 }: ClientAuthLimitDeps): void {
  const clients = counter(db, 'client-auth', settings.clientMaxFailures, settings.windowSeconds);
  /** Lock states read recently, by client_id (bounded like the client cache). */
  const lockStates = new Map<string, { locked: boolean; until: number }>();
  async function isLocked(clientId: string): Promise<boolean> {
    const known = lockStates.get(clientId);
    if (known && known.until > Date.now()) return known.locked;
    lockStates.delete(clientId);
    const state = await clients.get(clientId);
    const locked = !!state && state.consumedPoints >= settings.clientMaxFailures;
    if (cacheSeconds > 0) {
      if (lockStates.size >= 1000) lockStates.delete(lockStates.keys().next().value as string);
      const until = Date.now() + (state && locked ? state.msBeforeNext : cacheSeconds * 1000);
      lockStates.set(clientId, { locked, until });
    }
    return locked;
  }
  /** Requests whose client failed to authenticate, by the client they named. */
  const failures = new WeakMap<object, string>();

  // The engine's client authentication looks the client up by the presented client_id before it
  // checks any credential: the one place that sees every method. A lookup on these routes before
  // a client is assigned is that one (the engine keeps the request in AsyncLocalStorage).
  const find = provider.Client.find.bind(provider.Client);
  provider.Client.find = async function findClientUnlessLocked(id: string) {
    const ctx = Provider.ctx;
    if (ctx?.oidc && CLIENT_AUTHENTICATED_ROUTES.has(ctx.oidc.route ?? '') && !ctx.oidc.client && typeof id === 'string') {
      if (await isLocked(id)) {
        // Answered exactly like a wrong secret; error_detail only reaches our log.
        throw new errors.InvalidClientAuth('client is temporarily locked after too many failed authentications');
      }
    }
    return find(id);
  };

  // A failure of a known client (a refusal while locked never gets as far as assigning one).
  const listen = provider.on.bind(provider) as (name: string, listener: (ctx: KoaContextWithOIDC, error: unknown) => void) => void;
  for (const event of CLIENT_AUTHENTICATED_ERROR_EVENTS) {
    listen(event, (ctx, error) => {
      const clientId = ctx.oidc?.client?.clientId;
      if (error instanceof errors.InvalidClientAuth && clientId) failures.set(ctx, clientId);
    });
  }

  // Counted before the answer leaves, so the next request already sees it.
  provider.use(async function countClientAuthFailures(ctx, next) {
    await next();
    const clientId = failures.get(ctx);
    if (clientId === undefined) return;
    lockStates.delete(clientId);
    try {
      const { consumedPoints } = await clients.penalty(clientId);
      if (consumedPoints !== settings.clientMaxFailures) return;
      await clients.block(clientId, settings.lockoutSeconds);
      await audit.record({
        type: 'client_auth.locked',
        clientId,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || null,
        details: { failures: consumedPoints, lockoutSeconds: settings.lockoutSeconds },
      });
    } catch (error) {
      logger.error({ err: error, clientId }, 'counting a failed client authentication failed');
    } finally {
      // Again once counted, in case a request read the state while this one was counting.
      lockStates.delete(clientId);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Housekeeping
// ---------------------------------------------------------------------------------------------

/** Deletes expired counters every `intervalSeconds` (0: never); returns the stop function. */
export function startCounterSweeper(db: Db, intervalSeconds: number, onError: (error: unknown) => void): () => void {
  if (intervalSeconds <= 0) return () => {};
  const timer = setInterval(() => {
    db.prisma.rateLimiterFlexible.deleteMany({ where: { expire: { lt: new Date() } } }).catch(onError);
  }, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
