// The engine's events, recorded in the audit trail: tokens issued and revoked, grants (consent)
// revoked, logouts and dynamic client registrations. Each event names the account, the client
// and where the request came from (ctx.ip: the address Express computed under TRUST_PROXY,
// http/app.ts); it never carries a token, code or secret, only which kinds were issued or revoked.
//
// Writes started by a request are awaited before its response goes out, so whoever holds a
// token can already find the event that issued it; a failed write is logged by the AuditLog
// and never fails the request.
import Provider, { type AccessToken, type ClientCredentials, type KoaContextWithOIDC, type RefreshToken } from 'oidc-provider';
import type { EngineHook, EngineListener } from '../core/engine-types.js';
import type { AuditEventInput } from './store.js';
import type { AuditLog } from './log.js';

export interface EngineAudit {
  /** Around each engine request: its audit writes are awaited before the answer leaves. */
  awaitAuditEvents: EngineHook;
  /** The engine events recorded, and what records each (oidc/hooks.ts installs them). */
  listeners: ReadonlyArray<readonly [event: string, listener: EngineListener]>;
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

export function createEngineAudit(audit: AuditLog): EngineAudit {
  const writesByRequest = new WeakMap<KoaContextWithOIDC, Promise<void>[]>();
  const pending = new Set<Promise<void>>();

  function record(ctx: KoaContextWithOIDC, event: AuditEventInput): void {
    const write = audit.record({ ...originOf(ctx), ...event });
    pending.add(write);
    void write.finally(() => pending.delete(write));
    writesByRequest.get(ctx)?.push(write);
  }

  const awaitAuditEvents: EngineHook = {
    before(ctx) {
      writesByRequest.set(ctx, []);
    },
    settle(ctx) {
      const writes = writesByRequest.get(ctx);
      if (writes?.length) return Promise.all(writes).then(() => undefined);
    },
  };

  function recordTokenIssued(ctx: KoaContextWithOIDC) {
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
  }

  // The engine emits no success event for revocation; a token destroyed while the revocation
  // endpoint answers is one it revoked (its allowedPolicy passed). The request is the engine's
  // own (it keeps it in AsyncLocalStorage while a route runs): no second context of our own,
  // which every promise of every request would pay for.
  function recordTokenRevoked(token: AccessToken | RefreshToken | ClientCredentials) {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (ctx?.oidc?.route !== 'revocation') return;
    record(ctx, {
      type: 'token.revoked',
      accountId: 'accountId' in token ? token.accountId : undefined,
      clientId: ctx.oidc.client?.clientId ?? token.clientId,
      details: { token_type: token.kind, grant_id: ('grantId' in token ? token.grantId : undefined) ?? null },
    });
  }

  // A grant ends on revocation of a refresh token, on logout, and when the engine detects a
  // replayed code or reused refresh token (route: token).
  function recordConsentRevoked(ctx: KoaContextWithOIDC, grantId: string) {
    record(ctx, {
      type: 'consent.revoked',
      accountId: accountOf(ctx),
      clientId: clientOfGrant(ctx, grantId),
      details: { grant_id: grantId, route: ctx.oidc.route ?? null },
    });
  }

  function recordLogout(ctx: KoaContextWithOIDC) {
    const params = ctx.oidc.params as { logout?: unknown } | undefined;
    record(ctx, {
      type: 'logout',
      accountId: ctx.oidc.session?.accountId,
      clientId: ctx.oidc.client?.clientId,
      details: { all_clients: Boolean(params?.logout) },
    });
  }

  const registration = (type: 'client.created' | 'client.updated' | 'client.deleted') => (ctx: KoaContextWithOIDC, client: { clientId: string; clientName?: string | undefined }) =>
    record(ctx, { type, clientId: client.clientId, details: { source: 'registration', client_name: client.clientName ?? null } });

  return {
    awaitAuditEvents,
    listeners: [
      ['grant.success', recordTokenIssued],
      ['access_token.destroyed', recordTokenRevoked],
      ['refresh_token.destroyed', recordTokenRevoked],
      ['client_credentials.destroyed', recordTokenRevoked],
      ['grant.revoked', recordConsentRevoked],
      ['end_session.success', recordLogout],
      ['registration_create.success', registration('client.created')],
      ['registration_update.success', registration('client.updated')],
      ['registration_delete.success', registration('client.deleted')],
    ] as ReadonlyArray<readonly [string, EngineListener]>,
    async settle() {
      await Promise.all([...pending]);
    },
  };
}
