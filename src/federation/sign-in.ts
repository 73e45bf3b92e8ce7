// Signing in (and linking an account) through an upstream identity provider: starting the
// upstream flow, checking its return, and deciding which person it is. The pages
// (http/federation.ts) call these; the interaction steps (oidc/interactions.ts) then finish the
// login with the local policy (disabled people, MFA).
//
// A person is found by (provider, upstream subject), never by email alone. A first sign-in with
// an identity not linked yet: linked to the person whose email matches only when the provider
// allows `link_by_verified_email` and the upstream says the email is verified; otherwise, when
// the email belongs to someone with a password, a pending link is offered: the identity
// (provider, subject, email) is kept server-side in the interaction (oidc/interactions.ts) and
// linked once that same person signs in there with their password (and second factor when
// owed); otherwise a person is created when `create_accounts` allows; otherwise refused.
// Every failure is recorded in the audit trail and stores nothing.
//
// What the callback is checked against (state, nonce, PKCE verifier) travels in a short-lived
// cookie encrypted and authenticated with SECRETS and bound to the interaction (or the account
// page's session) that started it.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AuditLog, RequestOrigin } from '../audit/log.js';
import type { Config } from '../config/index.js';
import { decrypt, DecryptionError, encrypt } from '../core/secrets.js';
import type { Db } from '../db/client.js';
import { registrationCache } from '../db/registration-cache.js';
import { createUserStore, hasPassword, profileColumnsOf } from '../people/store.js';
import { federationCallbackUrl, type ResolvedIdp } from './schema.js';
import { createFederationStore, openIdpSecret, resolvedOf } from './store.js';
import { createUpstreams, UpstreamFailure, upstreamShowsMfa, type Upstreams, type UpstreamFailureReason, type UpstreamIdentity } from './upstream.js';

/** Refusals that are about the identity, not the upstream's answer. */
export const IDENTITY_REFUSALS = [
  'unknown_provider',
  'email_domain_not_allowed',
  'email_in_use',
  'no_account',
  'account_disabled',
  'identity_linked_elsewhere',
  'provider_already_linked',
  'link_account_mismatch',
  'link_expired',
] as const;
export type FederationRefusalReason = UpstreamFailureReason | (typeof IDENTITY_REFUSALS)[number];

/** A federated sign-in or link that did not happen; already recorded in the audit trail. */
export class FederationRefused extends Error {
  override name = 'FederationRefused';
  constructor(
    readonly reason: FederationRefusalReason,
    readonly provider: { id: string; displayName: string } | undefined,
  ) {
    super(`federated sign-in refused: ${reason}`);
  }
}

const FLOW_TTL_MS = 10 * 60 * 1000;
/** How long a pending link waits for the local sign-in that confirms it. */
const PENDING_LINK_TTL_MS = 10 * 60 * 1000;

/**
 * An upstream identity whose email belongs to someone here, waiting for that person's local
 * sign-in in the same interaction to be linked to them. Kept only in the engine's Interaction
 * (server-side), so it lives no longer than the interaction, and at most PENDING_LINK_TTL_MS.
 */
export const PendingLinkSchema = z.object({
  provider: z.string().min(1),
  /** For the page only. */
  providerName: z.string(),
  subject: z.string().min(1),
  /** Lower-cased: the email of the account that must sign in. */
  email: z.string().min(1),
  exp: z.number(),
});
export type PendingLink = z.infer<typeof PendingLinkSchema>;

const FlowSchema = z.object({
  purpose: z.enum(['login', 'link']),
  provider: z.string(),
  /** login: the interaction it belongs to. link: the account page's session (its uid). */
  binding: z.string(),
  state: z.string(),
  nonce: z.string().optional(),
  codeVerifier: z.string(),
  exp: z.number(),
});
export type Flow = z.infer<typeof FlowSchema>;

export interface ProviderButton {
  id: string;
  displayName: string;
  iconUri: string | undefined;
}

export interface LinkedProvider {
  providerId: string;
  displayName: string;
  email: string | null;
  linkedAt: Date;
  lastUsedAt: Date | null;
}

export interface FederatedSignIn {
  kind: 'signed_in';
  accountId: string;
  /** A trusted provider's amr/acr showed multi-factor authentication (then no local second factor is asked). */
  upstreamMfa: boolean;
  provider: { id: string; displayName: string };
}

/** The identity's email belongs to someone with a password: they may sign in here to link it. */
export interface LinkOffered {
  kind: 'link_offered';
  link: PendingLink;
}

/**
 * Told the outcome of each federated sign-in (the metrics count them). `provider` is the id of a
 * configured provider, or undefined when the request named none: never a value taken from the URL.
 */
export type FederatedSignInObserver = (outcome: 'success' | 'failure' | 'link_offered', provider: string | undefined) => void;

export interface FederationDeps {
  db: Db;
  /** `clientCache`: how long the sign-in page's buttons are reused (CLIENT_CACHE_TTL, as clients are). */
  config: Pick<Config, 'issuer' | 'secrets' | 'nodeEnv' | 'clientCache'>;
  audit: AuditLog;
  upstreams?: Upstreams;
  now?: () => Date;
  observe?: FederatedSignInObserver;
}

export function createFederation({ db, config, audit, upstreams = createUpstreams({ production: config.nodeEnv === 'production' }), now = () => new Date(), observe = () => {} }: FederationDeps) {
  const store = createFederationStore(db);
  const users = createUserStore(db);
  const redirectUri = (id: string) => federationCallbackUrl(config.issuer, id);
  const named = (idp: ResolvedIdp) => ({ id: idp.id, displayName: idp.displayName });

  async function enabledProvider(id: string): Promise<{ idp: ResolvedIdp; secret: string } | null> {
    const row = await store.findProvider(id);
    if (!row || !row.enabled) return null;
    return { idp: resolvedOf(row), secret: openIdpSecret(row, config.secrets) };
  }

  /** The provider a request names, when it is configured (enabled or not). */
  async function configured(id: string): Promise<ResolvedIdp | undefined> {
    const row = await store.findProvider(id);
    return row ? resolvedOf(row) : undefined;
  }

  /** Records the failure (counted as a failed sign-in unless it was a link), then throws it. */
  async function refuse(reason: FederationRefusalReason, idp: ResolvedIdp | undefined, origin: RequestOrigin, details: Record<string, unknown>, accountId?: string): Promise<never> {
    await audit.record({ type: 'federation.failure', accountId: accountId ?? null, ...origin, details: { provider: idp?.id, ...details, reason } });
    if (details.purpose === undefined || details.purpose === 'login') observe('failure', idp?.id);
    throw new FederationRefused(reason, idp && named(idp));
  }

  async function upstreamStep<T>(step: () => Promise<T>, idp: ResolvedIdp, origin: RequestOrigin, details: Record<string, unknown>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      return refuse(error.reason, idp, origin, { ...details, detail: error.message.slice(0, 300) });
    }
  }

  function allowedDomain(idp: ResolvedIdp, identity: UpstreamIdentity): boolean {
    if (!idp.emailDomains) return true;
    const domain = identity.email?.split('@').pop();
    return !!domain && idp.emailDomains.includes(domain);
  }

  /** Checks the return and redeems the code: the upstream identity, or a refusal recorded. */
  async function upstreamIdentity(flow: Flow, query: URLSearchParams, origin: RequestOrigin): Promise<{ idp: ResolvedIdp; identity: UpstreamIdentity }> {
    const found = await enabledProvider(flow.provider);
    if (!found) return refuse('unknown_provider', undefined, origin, { provider: flow.provider, purpose: flow.purpose });
    const { idp, secret } = found;
    const details = { purpose: flow.purpose };
    const identity = await upstreamStep(() => upstreams.complete(idp, secret, redirectUri(idp.id), query, flow), idp, origin, details);
    if (!allowedDomain(idp, identity)) return refuse('email_domain_not_allowed', idp, origin, { ...details, subject: identity.subject });
    return { idp, identity };
  }

  /** A new person for this identity, linked to it, in one transaction; null when the email was taken meanwhile. */
  async function createPerson(idp: ResolvedIdp, identity: UpstreamIdentity & { email: string }): Promise<string | null> {
    try {
      return await db.prisma.$transaction(async (tx) => {
        const handle = { prisma: tx as unknown as Db['prisma'], flavour: db.flavour };
        const profile = { email: identity.email, emailVerified: identity.emailVerified, ...profileColumnsOf(identity.profile) };
        const user = await createUserStore(handle).create(randomUUID(), profile, null);
        await createFederationStore(handle).link(idp.id, identity.subject, user.id, identity.email, now());
        return user.id;
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') return null;
      throw error;
    }
  }

  /** Links the identity to this person; a refusal when it or this provider is linked already. */
  async function link(idp: ResolvedIdp, identity: Pick<UpstreamIdentity, 'subject' | 'email'>, accountId: string, origin: RequestOrigin, via: 'sign_in' | 'account' | 'local_sign_in'): Promise<void> {
    try {
      await store.link(idp.id, identity.subject, accountId, identity.email, now());
    } catch (error) {
      if ((error as { code?: string }).code !== 'P2002') throw error;
      const existing = await store.findLink(idp.id, identity.subject);
      return refuse(existing && existing.userId !== accountId ? 'identity_linked_elsewhere' : 'provider_already_linked', idp, origin, { purpose: via === 'account' ? 'link' : via === 'local_sign_in' ? 'link_on_sign_in' : 'login' }, accountId);
    }
    await audit.record({ type: 'federation.linked', accountId, ...origin, details: { provider: idp.id, via } });
  }

  /**
   * The buttons as last read, shared by the pages rendered meanwhile, for CLIENT_CACHE_TTL: every
   * sign-in page shows them, and on PostgreSQL each read is a round trip. Dropped at once when this
   * process writes a provider (Db.identityProviderWrites); another instance's edit shows once it
   * expires. Only what the page shows: starting a sign-in reads its provider afresh (begin).
   */
  const buttons = registrationCache<'enabled', ProviderButton[]>({
    seconds: config.clientCache,
    writes: db.identityProviderWrites,
    maxEntries: 1,
    read: async () => ({
      value: (await store.listEnabled()).map((row) => ({ id: row.id, displayName: row.displayName, iconUri: row.settings.icon_uri })),
      keep: true,
    }),
  });

  return {
    /** The buttons of the sign-in page: every enabled provider. */
    enabledProviders: () => buttons('enabled'),

    /**
     * Starts the upstream flow: where to send the browser, and the sealed cookie holding what
     * its return is checked against. `binding` is the interaction's uid (login) or the account
     * page session's uid (link).
     */
    async begin(providerId: string, purpose: Flow['purpose'], binding: string, origin: RequestOrigin): Promise<{ url: URL; cookie: string; maxAgeMs: number }> {
      const found = await enabledProvider(providerId);
      if (!found) return refuse('unknown_provider', undefined, origin, { provider: providerId, purpose });
      const { idp, secret } = found;
      const { url, checks } = await upstreamStep(() => upstreams.authorizationUrl(idp, secret, redirectUri(idp.id)), idp, origin, { purpose });
      const flow: Flow = { purpose, provider: idp.id, binding, ...checks, exp: now().getTime() + FLOW_TTL_MS };
      return { url, cookie: encrypt(JSON.stringify(flow), config.secrets, `federation-flow:${idp.id}`), maxAgeMs: FLOW_TTL_MS };
    },

    /** The flow a cookie holds for this provider, or null (absent, altered, for another provider, expired). */
    openFlow(cookie: string | undefined, providerId: string): Flow | null {
      if (!cookie) return null;
      try {
        const flow = FlowSchema.parse(JSON.parse(decrypt(cookie, config.secrets, `federation-flow:${providerId}`).plaintext));
        return flow.provider === providerId && flow.exp > now().getTime() ? flow : null;
      } catch (error) {
        if (error instanceof DecryptionError || error instanceof SyntaxError || error instanceof z.ZodError) return null;
        throw error;
      }
    },

    /** Records a return whose interaction has ended (expired while the person was upstream): nothing is checked or stored. */
    async recordExpiredInteraction(providerId: string, flow: Flow | null, origin: RequestOrigin): Promise<void> {
      await audit.record({ type: 'federation.failure', accountId: null, ...origin, details: { provider: providerId, purpose: 'login', flow: flow !== null, reason: 'interaction_expired' } });
      observe('failure', (await configured(providerId))?.id);
    },

    /** Records a return that has no (valid) flow cookie for it: nothing to check it against. */
    refuseWithoutFlow: async (providerId: string, origin: RequestOrigin) =>
      refuse('state_mismatch', await configured(providerId), origin, { provider: providerId, detail: 'no sign-in was started for this provider in this browser (or it expired)' }),

    /**
     * The person this upstream sign-in is, linking or creating them as the provider allows; or,
     * when the email belongs to someone with a password, the link to offer them.
     */
    async completeSignIn(flow: Flow, query: URLSearchParams, origin: RequestOrigin): Promise<FederatedSignIn | LinkOffered> {
      const { idp, identity } = await upstreamIdentity(flow, query, origin);
      const base = { purpose: 'login', subject: identity.subject };
      let accountId: string;
      let how: 'linked' | 'linked_by_email' | 'created';
      const existing = await store.findLink(idp.id, identity.subject);
      if (existing) {
        accountId = existing.userId;
        how = 'linked';
      } else {
        const owner = identity.email ? await users.findByEmail(identity.email) : null;
        if (owner && identity.emailVerified && idp.linkByVerifiedEmail) {
          if (owner.disabled) return refuse('account_disabled', idp, origin, base, owner.id);
          await link(idp, identity, owner.id, origin, 'sign_in');
          accountId = owner.id;
          how = 'linked_by_email';
        } else if (owner && hasPassword(owner) && identity.email) {
          // Recorded as the refusal it is; the link waits for the owner's own sign-in.
          await audit.record({ type: 'federation.failure', accountId: owner.id, ...origin, details: { provider: idp.id, ...base, email_verified: identity.emailVerified, link_offered: true, reason: 'email_in_use' } });
          observe('link_offered', idp.id);
          return { kind: 'link_offered', link: { provider: idp.id, providerName: idp.displayName, subject: identity.subject, email: identity.email, exp: now().getTime() + PENDING_LINK_TTL_MS } };
        } else if (owner) {
          return refuse('email_in_use', idp, origin, { ...base, email_verified: identity.emailVerified }, owner.id);
        } else if (idp.createAccounts && identity.email) {
          const created = await createPerson(idp, { ...identity, email: identity.email });
          if (!created) return refuse('email_in_use', idp, origin, base);
          await audit.record({ type: 'federation.account_created', accountId: created, ...origin, details: { provider: idp.id } });
          accountId = created;
          how = 'created';
        } else {
          return refuse('no_account', idp, origin, { ...base, email_given: identity.email !== null });
        }
      }
      const user = await users.findById(accountId);
      if (!user || user.disabled) return refuse('account_disabled', idp, origin, base, accountId);
      await store.touchLink(idp.id, identity.subject, now());
      const upstreamMfa = upstreamShowsMfa(idp, identity);
      await audit.record({ type: 'federation.sign_in', accountId, ...origin, details: { provider: idp.id, how, upstream_mfa: upstreamMfa } });
      observe('success', idp.id);
      return { kind: 'signed_in', accountId, upstreamMfa, provider: named(idp) };
    },

    /**
     * After a local password sign-in in an interaction holding a pending link: null when the link
     * may go on (this is the person whose email the identity showed, and the link is still
     * fresh); otherwise why not, recorded (the caller then forgets the link: nothing is linked).
     */
    async acceptPendingLink(accountId: string, pending: PendingLink, origin: RequestOrigin): Promise<null | 'link_account_mismatch' | 'link_expired'> {
      const details = { provider: pending.provider, purpose: 'link_on_sign_in', subject: pending.subject };
      const reason = pending.exp <= now().getTime() ? 'link_expired' : (await users.findById(accountId))?.email !== pending.email ? 'link_account_mismatch' : null;
      if (reason) await audit.record({ type: 'federation.failure', accountId, ...origin, details: { ...details, reason } });
      return reason;
    },

    /** Links a pending identity to the person who signed in for it (acceptPendingLink said yes); a refusal, recorded, otherwise. */
    async completePendingLink(accountId: string, pending: PendingLink, origin: RequestOrigin): Promise<void> {
      const found = await enabledProvider(pending.provider);
      if (!found) return refuse('unknown_provider', undefined, origin, { provider: pending.provider, purpose: 'link_on_sign_in' }, accountId);
      await link(found.idp, { subject: pending.subject, email: pending.email }, accountId, origin, 'local_sign_in');
    },

    /** Links the upstream identity to the signed-in person (the account page). */
    async completeLink(flow: Flow, query: URLSearchParams, accountId: string, origin: RequestOrigin): Promise<{ id: string; displayName: string }> {
      const { idp, identity } = await upstreamIdentity(flow, query, origin);
      await link(idp, identity, accountId, origin, 'account');
      return named(idp);
    },

    /** The providers this person is linked to, and the enabled ones they could link. */
    async linksOf(accountId: string): Promise<{ linked: LinkedProvider[]; available: ProviderButton[] }> {
      const [links, rows] = await Promise.all([store.listLinks(accountId), store.listProviders()]);
      const byId = new Map(rows.map((row) => [row.id, row]));
      const linked = links.map((l) => ({ providerId: l.providerId, displayName: byId.get(l.providerId)?.displayName ?? l.providerId, email: l.email, linkedAt: l.createdAt, lastUsedAt: l.lastUsedAt }));
      const linkedIds = new Set(links.map((l) => l.providerId));
      const available = rows.filter((row) => row.enabled && !linkedIds.has(row.id)).map((row) => ({ id: row.id, displayName: row.displayName, iconUri: (row.settings as { icon_uri?: string }).icon_uri }));
      return { linked, available };
    },

    /** Unlinks one provider, refusing to remove the person's last way to sign in (store.ts: race-free). */
    async unlink(accountId: string, providerId: string, origin: RequestOrigin): Promise<'unlinked' | 'not_linked' | 'last_way'> {
      const outcome = await store.unlinkUnlessLast(accountId, providerId);
      if (outcome === 'unlinked') await audit.record({ type: 'federation.unlinked', accountId, ...origin, details: { provider: providerId, via: 'account' } });
      return outcome;
    },
  };
}

export type Federation = ReturnType<typeof createFederation>;
