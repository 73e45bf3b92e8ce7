// Every change Gatehouse makes to the engine beyond its configuration (provider.ts), in one
// list and in the order it runs. The logic lives with its noun (clients/, audit/, people/ ...) or
// beside provider.ts; this file only installs it. Read top to bottom, it tells what a request
// to /authorize, /token or /userinfo passes through:
//
// 1. storage: adapterWithHooks() wraps the adapter (adapter.ts), so policies apply on the way in;
// 2. replaced engine methods: client secret checks, the client lockout, back-channel delivery (through the outbox);
// 3. hooks around every request (one provider.use middleware, hook-runner.ts), each before the
//    engine's route on the way in and after it, in reverse order, on the way out;
// 4. event listeners: logs, the audit trail, failed client authentications, metrics.
import type { IncomingMessage } from 'node:http';
import Provider, { errors, type Adapter, type AdapterPayload, type KoaContextWithOIDC } from 'oidc-provider';
import { onlyLastSeenMoved, SESSION_SEEN_KEY, type SessionSeen } from '../artifacts/session-seen.js';
import { createEngineAudit } from '../audit/hooks.js';
import type { AuditLog } from '../audit/log.js';
import { CLIENT_AUTHENTICATED_ERROR_EVENTS, createClientAuthLimit } from '../clients/auth-limits.js';
import { compareClientSecretAtRest, hideSecretPlaceholders } from '../clients/hooks.js';
import type { Config } from '../config/index.js';
import type { EngineHook, EngineListener } from '../core/engine-types.js';
import { requestIdOf, type Logger } from '../core/logger.js';
import type { Db } from '../db/client.js';
import type { Outbox } from '../mail/outbox.js';
import type { Clock } from './adapter.js';
import { ALLOWED_GROUPS } from '../groups/claims.js';
import { REQUIRE_MFA_METADATA } from './provider.js';
import { ADMIN_SCOPE, refuseAdminScope, refuseUnregisteredAdminScope, scopeOfRequestObject } from './admin-access.js';
import { answerAfterWrites } from './answer-after-writes.js';
import { deliverBackchannelLogoutsThroughOutbox } from './backchannel-logout.js';
import { enforceDevicePollingInterval, limitUserCodeGuesses, recoverDeviceFormWithoutSession } from './device-flow.js';
import { renderFormPostPages } from './form-post.js';
import { runEngineHooks } from './hook-runner.js';
import { timeAdapterCalls, type AdapterObserver } from './instrumentation.js';
import type { RenderPage } from './page-renderer.js';
import { correctTokenEndpointErrors } from './token-errors.js';

export type AdapterFactory = (model: string) => Adapter;

// ---------------------------------------------------------------------------------------------
// 1. Storage
// ---------------------------------------------------------------------------------------------

/**
 * The engine's storage with Gatehouse's policies on the way in, per model:
 * - Client (dynamic registration only: the admin API and the seed write clients themselves):
 *   `admin` is given by an administrator, never self-registered;
 * - PushedAuthorizationRequest and DeviceCode: a request naming `admin` is refused at /par and
 *   /device/auth at once, not only later when it is used (admin-access.ts);
 * - Session: each save records where and when the session was used, and a save that would only
 *   move its expiry and last-seen time by less than a minute is skipped (artifacts/session-seen.ts);
 * and, outermost, the time every call takes when `observe` is given (metrics).
 */
export function adapterWithHooks(storage: AdapterFactory, { now, observe }: { now: Clock; observe?: AdapterObserver }): AdapterFactory {
  const hooked = new Map<string, Adapter>();
  const withPolicies: AdapterFactory = (model) => {
    let adapter = hooked.get(model);
    if (!adapter) {
      const stored = storage(model);
      adapter = { ...stored, ...POLICIES[model]?.(stored, now) };
      hooked.set(model, adapter);
    }
    return adapter;
  };
  return observe ? timeAdapterCalls(withPolicies, observe) : withPolicies;
}

const POLICIES: Record<string, (stored: Adapter, now: Clock) => Partial<Adapter>> = {
  // The engine writes clients only for dynamic registration (RFC 7591) and its updates (RFC 7592);
  // administrators write them through clients/store.ts.
  Client: (stored) => ({
    upsert: async function guardRegisteredMetadata(id, payload, expiresIn) {
      if (typeof payload.scope === 'string' && payload.scope.split(' ').includes(ADMIN_SCOPE)) {
        throw new errors.InvalidClientMetadata(`the ${ADMIN_SCOPE} scope cannot be registered dynamically`);
      }
      // A client may narrow what it sees or ask for more checks, never undo an administrator's:
      // an update keeps the stored allowed_groups and a required second factor.
      const before = await stored.find(id);
      if (before?.[ALLOWED_GROUPS] !== undefined) payload[ALLOWED_GROUPS] = before[ALLOWED_GROUPS];
      if (before?.[REQUIRE_MFA_METADATA] === true) payload[REQUIRE_MFA_METADATA] = true;
      return stored.upsert(id, payload, expiresIn);
    },
  }),
  PushedAuthorizationRequest: (stored) => ({
    upsert: async function refuseAdminScopeInPushedRequest(id, payload, expiresIn) {
      refuseAdminScope(scopeOfRequestObject(payload.request));
      return stored.upsert(id, payload, expiresIn);
    },
  }),
  DeviceCode: (stored) => ({
    upsert: async function refuseAdminScopeInDeviceCode(id, payload, expiresIn) {
      refuseAdminScope((payload.params as { scope?: unknown } | undefined)?.scope);
      return stored.upsert(id, payload, expiresIn);
    },
  }),
  Session: (stored, now) => ({
    find: async function rememberSessionRead(id) {
      const payload = await stored.find(id);
      if (payload) rememberReadInThisRequest(id, payload);
      return payload;
    },
    upsert: async function recordWhereSessionIsUsed(id, payload, expiresIn) {
      const seen = seenInThisRequest(now());
      if (seen && onlyLastSeenMoved(readInThisRequest(id), payload, seen)) return;
      // Saved outside an engine request (rare): keep what was recorded before.
      const recorded = seen ?? ((await stored.find(id)) as AdapterPayload | undefined)?.[SESSION_SEEN_KEY];
      return stored.upsert(id, recorded ? { ...payload, [SESSION_SEEN_KEY]: recorded } : payload, expiresIn);
    },
  }),
};

/** The sessions the engine's request being served read, by id: what a save in the same request is compared with. Nothing outlives the request. */
const sessionsRead = new WeakMap<object, Map<string, AdapterPayload>>();

function rememberReadInThisRequest(id: string, payload: AdapterPayload): void {
  const ctx = Provider.ctx;
  if (!ctx) return;
  let read = sessionsRead.get(ctx);
  if (!read) sessionsRead.set(ctx, (read = new Map()));
  read.set(id, payload);
}

const readInThisRequest = (id: string): AdapterPayload | undefined => {
  const ctx = Provider.ctx;
  return ctx ? sessionsRead.get(ctx)?.get(id) : undefined;
};

/** Where the engine's request being served comes from (the engine keeps it in AsyncLocalStorage), if any. */
function seenInThisRequest(now: Date): SessionSeen | undefined {
  const ctx = Provider.ctx;
  if (!ctx) return undefined;
  return { ip: ctx.ip || null, user_agent: ctx.get('user-agent').slice(0, 512) || null, at: Math.floor(now.getTime() / 1000) };
}

// ---------------------------------------------------------------------------------------------
// 2–4. The running engine
// ---------------------------------------------------------------------------------------------

/** What the metrics (http/metrics.ts) watch in the engine. */
export interface EngineObserver {
  readonly nameEngineRoute: EngineHook;
  readonly countTokensIssued: EngineListener;
}

export interface EngineHookDeps {
  config: Config;
  db: Db;
  logger: Logger;
  audit: AuditLog;
  renderPage: RenderPage;
  /** Where back-channel logouts are queued (mail/outbox.ts). */
  outbox: Outbox;
  observer?: EngineObserver;
}

export interface EngineHooks {
  /** Resolves once every audit event the engine caused so far is written (before closing the database). */
  settle(): Promise<void>;
}

/** The engine's errors that refuse a protocol request; logged with the reason only the log gets (error_detail). */
const REFUSAL_EVENTS = ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'end_session.error', 'pushed_authorization_request.error'];

/** Install once, before `provider.callback()` is taken (http/app.ts mounts the engine). */
export function installEngineHooks(provider: Provider, { config, db, logger, audit, renderPage, outbox, observer }: EngineHookDeps): EngineHooks {
  const { features } = config;
  const clientAuthLimit = createClientAuthLimit({ db, settings: config.bruteForce, audit, logger, cacheSeconds: config.clientCache });
  const engineAudit = createEngineAudit(audit);

  // 2. Replaced engine methods
  provider.Client.prototype.compareClientSecret = compareClientSecretAtRest({ secrets: config.secrets, db, logger });
  provider.Client.find = clientAuthLimit.findClientUnlessLocked(provider.Client.find.bind(provider.Client));
  // ClientCredentials#save: `admin` only for a client whose registered scope names it.
  refuseUnregisteredAdminScope(provider);
  // DeviceCode.findByUserCode: codes typed at /device are limited per session and address.
  if (features.deviceFlow) limitUserCodeGuesses(provider, { db, settings: config.bruteForce, audit });
  // Client#backchannelLogout queues the delivery in the outbox; the engine's backchannel.* events are re-emitted when it ends.
  if (features.backchannelLogout) deliverBackchannelLogoutsThroughOutbox(provider, { outbox, db, logger, options: config.backchannelLogout });

  // 3. Hooks around every request, outermost first
  const hooks: (EngineHook | false | undefined)[] = [
    hideSecretPlaceholders,
    correctTokenEndpointErrors(provider),
    renderFormPostPages(renderPage),
    features.deviceFlow && enforceDevicePollingInterval(),
    features.deviceFlow && recoverDeviceFormWithoutSession(renderPage),
    engineAudit.awaitAuditEvents,
    // Inside the audit's hook: the kept writes start in the same turn as the request's audit events, and join their group commit.
    answerAfterWrites(db.deferred, logger, renderPage),
    clientAuthLimit.countClientAuthFailures,
    observer?.nameEngineRoute,
    handBackUnmatchedRequests,
  ];
  provider.use(runEngineHooks(hooks.filter((hook): hook is EngineHook => !!hook)));

  // 4. Event listeners
  const on = provider.on.bind(provider) as (event: string, listener: EngineListener) => void;
  on('server_error', function logServerError(ctx: KoaContextWithOIDC, error: Error) {
    logger.error({ err: error, request_id: requestIdOf(ctx.res) }, 'engine server error');
  });
  for (const event of REFUSAL_EVENTS) {
    on(event, function logRefusedRequest(ctx: KoaContextWithOIDC, error: errors.OIDCProviderError) {
      const { route, client } = ctx.oidc ?? {};
      logger.info(
        { event, request_id: requestIdOf(ctx.res), route, client_id: client?.clientId, error: error.error, error_description: error.error_description, error_detail: error.error_detail },
        'request refused',
      );
    });
  }
  for (const [event, listener] of engineAudit.listeners) on(event, listener);
  for (const event of CLIENT_AUTHENTICATED_ERROR_EVENTS) on(event, clientAuthLimit.noteFailedAuthentication);
  if (observer) on('grant.success', observer.countTokensIssued);

  return { settle: () => engineAudit.settle() };
}

// ---------------------------------------------------------------------------------------------
// Handing requests back to Express
// ---------------------------------------------------------------------------------------------

const expressNext = new WeakMap<IncomingMessage, () => void>();

/** http/app.ts: where a request that no engine route matches goes instead (Express's next). */
export function whenUnmatched(req: IncomingMessage, next: () => void): void {
  expressNext.set(req, next);
}

/** The engine (a Koa app) answers its own routes; anything else goes back to Express, for our 404 page or JSON. */
const handBackUnmatchedRequests: EngineHook = {
  after(ctx) {
    // Koa's untouched default: no engine route matched this request.
    if (ctx.status === 404 && ctx.body == null) {
      ctx.respond = false;
      expressNext.get(ctx.req)?.();
    }
  },
};
