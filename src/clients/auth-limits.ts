// Limits on guessing client credentials at the engine's token, introspection, revocation, PAR and
// device authorization endpoints: failures are counted per client_id and source address (IPv6 by
// its /64), whatever the method (secret, client_secret_jwt, private_key_jwt); the failure that
// reaches the limit locks that client *from that address*, and the engine then refuses it there
// before checking any credential. Counting per client alone would let anyone lock any client out
// by sending wrong secrets in its name; the rightful caller, elsewhere, keeps working. oidc/hooks.ts
// installs the three parts below: the replaced Client.find, the failure listener and the counting
// middleware.
import Provider, { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { counter, ipKey } from '../core/counters.js';
import type { EngineHook } from '../core/engine-types.js';
import type { Logger } from '../core/logger.js';
import type { DbHandle } from '../db/client.js';

const CLIENT_AUTHENTICATED_ROUTES = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization']);
/** The engine's error events of those routes: where a failed client authentication is reported. */
export const CLIENT_AUTHENTICATED_ERROR_EVENTS = ['grant.error', 'introspection.error', 'revocation.error', 'pushed_authorization_request.error', 'device_authorization.error'] as const;

export interface ClientAuthLimitDeps {
  db: DbHandle;
  settings: Config['bruteForce'];
  audit: AuditLog;
  logger: Logger;
  /**
   * How long a client's lock state, once read, is reused (0: read on every authentication). A
   * failure counted here drops it at once and a lock is kept until it ends, so only a lockout made
   * by another instance can take this long to reach this one (CLIENT_CACHE_TTL).
   */
  cacheSeconds?: number;
}

type FindClient = Provider['Client']['find'];

export interface ClientAuthLimit {
  /** Wraps the engine's Client.find: a locked client is refused while the engine authenticates it. */
  findClientUnlessLocked(find: FindClient): FindClient;
  /** Listener for CLIENT_AUTHENTICATED_ERROR_EVENTS: remembers which client failed to authenticate. */
  noteFailedAuthentication(ctx: KoaContextWithOIDC, error: unknown): void;
  /** Counts the failure noted for this request before the answer leaves, so the next request already sees it. */
  countClientAuthFailures: EngineHook;
}

export function createClientAuthLimit({ db, settings, audit, logger, cacheSeconds = 0 }: ClientAuthLimitDeps): ClientAuthLimit {
  const clients = counter(db, 'client-auth', settings.clientMaxFailures, settings.failureWindow);
  /** Lock states read recently, by counter key (bounded like the client cache). */
  const lockStates = new Map<string, { locked: boolean; until: number }>();
  async function isLocked(key: string): Promise<boolean> {
    const known = lockStates.get(key);
    if (known && known.until > Date.now()) return known.locked;
    lockStates.delete(key);
    const state = await clients.get(key);
    const locked = !!state && state.consumedPoints >= settings.clientMaxFailures;
    if (cacheSeconds > 0) {
      if (lockStates.size >= 1000) lockStates.delete(lockStates.keys().next().value as string);
      const until = Date.now() + (state && locked ? state.msBeforeNext : cacheSeconds * 1000);
      lockStates.set(key, { locked, until });
    }
    return locked;
  }
  /** Requests whose client failed to authenticate, and the client they named. */
  const failures = new WeakMap<object, string>();
  /** What a failure counts against: this client, from this address. */
  const keyOf = (clientId: string, ip: string | undefined) => `${clientId} ${ipKey(ip)}`;

  return {
    // The engine's client authentication looks the client up by the presented client_id before it
    // checks any credential: the one place that sees every method. A lookup on these routes before
    // a client is assigned is that one (the engine keeps the request in AsyncLocalStorage).
    findClientUnlessLocked(find) {
      return async function findClientUnlessLocked(id: string) {
        const ctx = Provider.ctx;
        if (ctx?.oidc && CLIENT_AUTHENTICATED_ROUTES.has(ctx.oidc.route ?? '') && !ctx.oidc.client && typeof id === 'string') {
          if (await isLocked(keyOf(id, ctx.ip))) {
            // Answered exactly like a wrong secret; error_detail only reaches our log.
            throw new errors.InvalidClientAuth('client is temporarily locked after too many failed authentications');
          }
        }
        return find(id);
      };
    },

    // A failure of a known client (a refusal while locked never gets as far as assigning one).
    noteFailedAuthentication(ctx, error) {
      const clientId = ctx.oidc?.client?.clientId;
      if (error instanceof errors.InvalidClientAuth && clientId) failures.set(ctx, clientId);
    },

    countClientAuthFailures: {
      // Synchronous for the requests that failed nothing (nearly all): no promise to wait for.
      after(ctx) {
        const clientId = failures.get(ctx);
        return clientId === undefined ? undefined : countFailure(ctx, clientId);
      },
    },
  };

  async function countFailure(ctx: KoaContextWithOIDC, clientId: string): Promise<void> {
    const key = keyOf(clientId, ctx.ip);
    lockStates.delete(key);
    try {
      const { consumedPoints } = await clients.penalty(key);
      if (consumedPoints !== settings.clientMaxFailures) return;
      await clients.block(key, settings.lockout);
      await audit.record({
        type: 'client_auth.locked',
        clientId,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent') || null,
        details: { failures: consumedPoints, lockoutSeconds: settings.lockout },
      });
    } catch (error) {
      logger.error({ err: error, clientId }, 'counting a failed client authentication failed');
    } finally {
      // Again once counted, in case a request read the state while this one was counting.
      lockStates.delete(key);
    }
  }
}
