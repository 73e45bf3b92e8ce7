// The engine's events, recorded in the audit trail: tokens issued and revoked, grants (consent)
// revoked, logouts and dynamic client registrations. Each event names the account, the client
// and where the request came from (ctx.ip honours provider.proxy); it never carries a token,
// code or secret, only which kinds were issued or revoked.
//
// Writes started by a request are awaited before its response goes out, so whoever holds a
// token can already find the event that issued it; a failed write is logged by the AuditLog
// and never fails the request.
import { AsyncLocalStorage } from 'node:async_hooks';
import type Provider from 'oidc-provider';
import type { AccessToken, ClientCredentials, KoaContextWithOIDC, RefreshToken } from 'oidc-provider';
import type { AuditEventInput } from './store.js';
import type { AuditLog } from './log.js';

export interface EngineAudit {
  /** Resolves once every event recorded so far is written (call before closing the database). */
  settle(): Promise<void>;
}

function originOf(ctx: KoaContextWithOIDC) {
  return { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null };
}

/** The account a request acts for, from whichever of the engine's entities knows it. */
function accountOf(ctx: KoaContextWithOIDC): string | undefined {
  const { oidc } = ctx;
  return (
    oidc.account?.accountId ??
    oidc.session?.accountId ??
    oidc.entities.RefreshToken?.accountId ??
    oidc.entities.AccessToken?.accountId ??
    oidc.entities.AuthorizationCode?.accountId ??
    oidc.entities.DeviceCode?.accountId ??
    undefined
  );
}

/** The client a revoked grant belonged to: logout revokes every client's grant in the session. */
function clientOfGrant(ctx: KoaContextWithOIDC, grantId: string): string | undefined {
  const authorizations = ctx.oidc.session?.authorizations ?? {};
  const entry = Object.entries(authorizations).find(([, authorization]) => authorization.grantId === grantId);
  return entry?.[0] ?? ctx.oidc.client?.clientId;
}

/** The names (never the values) of the tokens in a token endpoint response. */
function issuedTokenTypes(body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  return Object.keys(body).filter((key) => key.endsWith('_token'));
}

export function recordEngineEvents(provider: Provider, audit: AuditLog): EngineAudit {
  const requests = new AsyncLocalStorage<KoaContextWithOIDC>();
  const writesByRequest = new WeakMap<KoaContextWithOIDC, Promise<void>[]>();
  const pending = new Set<Promise<void>>();

  function record(ctx: KoaContextWithOIDC, event: AuditEventInput): void {
    const write = audit.record({ ...originOf(ctx), ...event });
    pending.add(write);
    void write.finally(() => pending.delete(write));
    writesByRequest.get(ctx)?.push(write);
  }

  provider.use(async function awaitAuditEvents(ctx, next) {
    const writes: Promise<void>[] = [];
    writesByRequest.set(ctx as KoaContextWithOIDC, writes);
    try {
      await requests.run(ctx as KoaContextWithOIDC, next);
    } finally {
      await Promise.all(writes);
    }
  });

  provider.on('grant.success', (ctx) => {
    const params = ctx.oidc.params as { grant_type?: unknown } | undefined;
    const body = ctx.body as { scope?: unknown } | undefined;
    record(ctx, {
      type: 'token.issued',
      accountId: accountOf(ctx),
      clientId: ctx.oidc.client?.clientId,
      details: {
        grant_type: typeof params?.grant_type === 'string' ? params.grant_type : null,
        issued: issuedTokenTypes(body),
        scope: typeof body?.scope === 'string' ? body.scope : null,
      },
    });
  });

  // The engine emits no success event for revocation; a token destroyed while the revocation
  // endpoint answers is one it revoked (its allowedPolicy passed).
  const revoked = (token: AccessToken | RefreshToken | ClientCredentials) => {
    const ctx = requests.getStore();
    if (ctx?.oidc?.route !== 'revocation') return;
    record(ctx, {
      type: 'token.revoked',
      accountId: 'accountId' in token ? token.accountId : undefined,
      clientId: ctx.oidc.client?.clientId ?? token.clientId,
      details: { token_type: token.kind, grant_id: ('grantId' in token ? token.grantId : undefined) ?? null },
    });
  };
  provider.on('access_token.destroyed', revoked);
  provider.on('refresh_token.destroyed', revoked);
  provider.on('client_credentials.destroyed', revoked);

  // A grant ends on revocation of a refresh token, on logout, and when the engine detects a
  // replayed code or reused refresh token (route: token).
  provider.on('grant.revoked', (ctx, grantId) => {
    record(ctx, {
      type: 'consent.revoked',
      accountId: accountOf(ctx),
      clientId: clientOfGrant(ctx, grantId),
      details: { grant_id: grantId, route: ctx.oidc.route ?? null },
    });
  });

  provider.on('end_session.success', (ctx) => {
    const params = ctx.oidc.params as { logout?: unknown } | undefined;
    record(ctx, {
      type: 'logout',
      accountId: ctx.oidc.session?.accountId,
      clientId: ctx.oidc.client?.clientId,
      details: { all_clients: Boolean(params?.logout) },
    });
  });

  const registration = (type: 'client.created' | 'client.updated' | 'client.deleted') => (ctx: KoaContextWithOIDC, client: { clientId: string; clientName?: string | undefined }) =>
    record(ctx, { type, clientId: client.clientId, details: { source: 'registration', client_name: client.clientName ?? null } });
  provider.on('registration_create.success', registration('client.created'));
  provider.on('registration_update.success', registration('client.updated'));
  provider.on('registration_delete.success', registration('client.deleted'));

  return {
    async settle() {
      await Promise.all([...pending]);
    },
  };
}
