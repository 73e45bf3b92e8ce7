// Prometheus metrics, one Registry per app (so several Gatehouses in one process never clash):
// HTTP requests and latency by route, sign-ins by outcome, federated sign-ins by provider and
// outcome, tokens by grant type, storage call latency, and the process's own metrics (event-loop
// lag, memory, CPU, GC).
//
// Route labels are route names, never URLs: Express's matched route (/interaction/:uid/login),
// the engine's route name (authorization, token, userinfo, …), "/assets", or "unmatched".
// Paths carry ids and queries carry codes; labels stay few and free of secrets.
import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler } from 'express';
import type { ClosedListener } from './front.js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { Tallies, TalliedCounter, TalliedHistogram } from './metric-tallies.js';
import type { AuditLog } from '../audit/log.js';
import type { EngineHook, EngineListener } from '../core/engine-types.js';
import type { AdapterObserver } from '../oidc/instrumentation.js';
import type { FederatedSignInObserver } from '../federation/sign-in.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const SIGN_IN_OUTCOMES = ['success', 'failure', 'locked'] as const;
/** The provider label of a federated sign-in that named no configured provider (no provider id can start with `_`). */
const UNKNOWN_PROVIDER = '_unknown';

export interface Metrics {
  readonly registry: Registry;
  /** Counts and times every request once its response has closed (a listener of the front, front.ts). */
  readonly recordRequest: ClosedListener;
  /** Serves the registry in Prometheus's text format. */
  readonly serveMetrics: RequestHandler;
  /** Engine hook: labels engine requests with their route name (installed by oidc/hooks.ts). */
  readonly nameEngineRoute: EngineHook;
  /** Listener for the engine's grant.success: counts issued tokens by grant type. */
  readonly countTokensIssued: EngineListener;
  /** The same audit log, counting sign_in.* events on the way. */
  countSignIns(audit: AuditLog): AuditLog;
  /** Counts a sign-in through an upstream identity provider (federation/sign-in.ts). */
  readonly countFederatedSignIn: FederatedSignInObserver;
  readonly observeAdapter: AdapterObserver;
  /** The outbox worker's outcomes (mail/worker.ts): sent, retry, failed, by kind. */
  countOutboxOutcome(kind: string, outcome: string): void;
  /** Reports the outbox's messages by state at each scrape (the database's count, the same from every instance). */
  watchOutbox(count: () => Promise<Record<string, number>>): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Requests, storage calls and tokens are tallied (metric-tallies.ts): they are on every request's path.
  const requests = new Tallies(['method', 'route', 'status'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  new TalliedCounter('gatehouse_http_requests_total', 'HTTP requests answered, by method, route and status.', requests, registry);
  new TalliedHistogram('gatehouse_http_request_duration_seconds', 'Time from receiving a request to finishing its response, by method, route and status.', requests, registry);
  const signIns = new Counter({ name: 'gatehouse_sign_ins_total', help: 'Password sign-in attempts, by outcome (success, failure, locked).', labelNames: ['outcome'], registers: [registry] });
  for (const outcome of SIGN_IN_OUTCOMES) signIns.inc({ outcome }, 0);
  const federatedSignIns = new Counter({
    name: 'gatehouse_federated_sign_ins_total',
    help: `Sign-ins through upstream identity providers, by provider (a configured provider's id, or ${UNKNOWN_PROVIDER} when the request named none) and outcome (success, failure, link_offered).`,
    labelNames: ['provider', 'outcome'],
    registers: [registry],
  });
  const tokensIssued = new Tallies(['grant_type']);
  new TalliedCounter('gatehouse_tokens_issued_total', 'Successful token endpoint responses, by grant type.', tokensIssued, registry);
  const adapterCalls = new Tallies(['model', 'method'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]);
  new TalliedHistogram('gatehouse_adapter_duration_seconds', "Duration of the engine's storage calls, by model and method.", adapterCalls, registry);

  const outboxOutcomes = new Counter({ name: 'gatehouse_outbox_deliveries_total', help: 'Outbox delivery attempts by this process, by kind (mail, backchannel_logout) and outcome (sent, retry, failed).', labelNames: ['kind', 'outcome'], registers: [registry] });
  for (const kind of ['mail', 'backchannel_logout']) for (const outcome of ['sent', 'retry', 'failed']) outboxOutcomes.inc({ kind, outcome }, 0);

  const engineRoutes = new WeakMap<IncomingMessage, string>();
  /** `url`: as the request arrived. Express, when it handled the request, left its matched route on it. */
  const routeOf = (req: IncomingMessage & Partial<Pick<Request, 'route' | 'baseUrl'>>, url: string): string => {
    const engineRoute = engineRoutes.get(req);
    if (engineRoute) return engineRoute;
    const path = (req.route as { path?: unknown } | undefined)?.path;
    if (path !== undefined) return `${req.baseUrl ?? ''}${String(path)}`;
    if (url.startsWith('/assets/')) return '/assets';
    return 'unmatched';
  };

  return {
    registry,
    recordRequest(req, res, url, seconds) {
      const method = req.method ?? 'OTHER';
      requests.observe([METHODS.has(method) ? method : 'OTHER', routeOf(req, url), String(res.statusCode)], seconds);
    },
    async serveMetrics(_req, res) {
      res.type(registry.contentType).send(await registry.metrics());
    },
    nameEngineRoute: {
      after(ctx) {
        if (ctx.oidc?.route) engineRoutes.set(ctx.req, ctx.oidc.route);
      },
    },
    countTokensIssued(ctx) {
      const grantType = (ctx.oidc.params as { grant_type?: unknown } | undefined)?.grant_type;
      tokensIssued.observe([typeof grantType === 'string' ? grantType : 'unknown']);
    },
    countSignIns(audit) {
      return {
        async record(event) {
          const outcome = event.type.startsWith('sign_in.') ? event.type.slice('sign_in.'.length) : undefined;
          if (outcome) signIns.inc({ outcome });
          return audit.record(event);
        },
      };
    },
    countFederatedSignIn(outcome, provider) {
      federatedSignIns.inc({ provider: provider ?? UNKNOWN_PROVIDER, outcome });
    },
    observeAdapter(model, method, seconds) {
      adapterCalls.observe([model, method], seconds);
    },
    countOutboxOutcome(kind, outcome) {
      outboxOutcomes.inc({ kind, outcome });
    },
    watchOutbox(count) {
      new Gauge({
        name: 'gatehouse_outbox_messages',
        help: 'Messages in the outbox by state (pending, sent, failed), counted in the database at each scrape; failed ones need a look (`gatehouse mail list --state failed`).',
        labelNames: ['state'],
        registers: [registry],
        // Every worker counts the same rows: the cluster's answer is one count, not their sum.
        aggregator: 'max',
        async collect() {
          for (const [state, n] of Object.entries(await count())) this.set({ state }, n);
        },
      });
    },
  };
}
