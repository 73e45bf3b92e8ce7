// OpenID Connect Back-Channel Logout 1.0, delivered through the outbox without making the
// person wait, and without losing a delivery to a restart.
//
// The engine's end_session awaits every client's `backchannelLogout(sub, sid)` before it
// answers the person, sends once, and reports only through events. We replace that method
// on this provider's Client class: it issues the logout token at once (so iat is the moment
// of logout) and queues its POST in the outbox (mail/), which any instance delivers, retrying
// after each BACKCHANNEL_LOGOUT_RETRY_DELAYS_MS pause, logging every failure, and then emits
// the engine's 'backchannel.success' / 'backchannel.error' once the outcome is known. A token
// older than the engine's two-minute lifetime allows (an instance restarted meanwhile) is
// issued afresh before it is sent.
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { STATUS_CODES } from 'node:http';
import { BlockList, isIP } from 'node:net';
import Provider, { type Client } from 'oidc-provider';
import { z } from 'zod';
import type { Logger } from '../core/logger.js';
import type { DbHandle } from '../db/client.js';
import type { Outbox } from '../mail/outbox.js';

export interface BackchannelLogoutOptions {
  /** Pause before each retry, in ms: one retry per entry, so [1000, 3000] makes three attempts. */
  readonly retryDelaysMs: readonly number[];
  /** How long one attempt may take (the engine's own fetch allows 2.5 s). */
  readonly timeoutMs: number;
  /**
   * Whether a backchannel_logout_uri may point at a loopback, private or link-local address.
   * Off in production: a client's registration must not make Gatehouse call into its network.
   */
  readonly allowPrivateNetworks: boolean;
}

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** The engine issues logout tokens valid for two minutes; every retry must happen within that. */
const LOGOUT_TOKEN_LIFETIME_MS = 120_000;
/** A stored token older than this is issued again before sending, so it arrives unexpired. */
const REISSUE_AFTER_MS = 90_000;

const DEFAULTS: BackchannelLogoutOptions = { retryDelaysMs: [1000, 3000], timeoutMs: 2500, allowPrivateNetworks: false };

/** What the outbox keeps for one delivery (sealed: the token is a credential). */
const Delivery = z.object({ client_id: z.string(), uri: z.string(), sub: z.string(), sid: z.string(), token: z.string(), issued_at: z.number() });
type Delivery = z.infer<typeof Delivery>;

export function deliverBackchannelLogoutsThroughOutbox(provider: Provider, { outbox, db, logger, options = {} }: { outbox: Outbox; db: DbHandle; logger: Logger; options?: Partial<BackchannelLogoutOptions> }): void {
  const settings = { ...DEFAULTS, ...options };
  const worstCaseMs = settings.retryDelaysMs.reduce((sum, ms) => sum + ms, 0) + (settings.retryDelaysMs.length + 1) * settings.timeoutMs;
  if (worstCaseMs >= LOGOUT_TOKEN_LIFETIME_MS) throw new Error('back-channel logout: retries would outlive the two-minute logout token');

  // end_session emits these as soon as our method resolves, which is now before delivery:
  // drop the engine's and emit our own when the outcome is known, with the same arguments
  // (but no request: it is long answered, maybe by another instance).
  const emit = provider.emit.bind(provider);
  provider.emit = ((event: string, ...args: unknown[]) => (event === 'backchannel.success' || event === 'backchannel.error' ? false : emit(event, ...args))) as Provider['emit'];

  const prototype = provider.Client.prototype as Client & { backchannelLogout(sub: string, sid: string): Promise<void> };
  prototype.backchannelLogout = async function backchannelLogout(this: Client, sub: string, sid: string) {
    const ctx = Provider.ctx;
    const uri = this.backchannelLogoutUri as string;
    let token: string;
    try {
      token = await issueLogoutToken(provider, this, sub, sid);
    } catch (error) {
      logger.error({ client_id: this.clientId, uri, reason: reasonFor(error) }, 'back-channel logout: could not issue the logout token');
      emit('backchannel.error', ctx, error, this, sub, sid);
      return;
    }
    const delivery: Delivery = { client_id: this.clientId, uri, sub, sid, token, issued_at: Date.now() };
    await outbox.queue(db, { kind: 'backchannel_logout', topic: 'logout', recipient: this.clientId, payload: delivery, maxAttempts: settings.retryDelaysMs.length + 1 });
    outbox.wake();
  };

  async function tell(event: 'backchannel.success' | 'backchannel.error', delivery: Delivery, error?: unknown) {
    const client = await provider.Client.find(delivery.client_id);
    if (!client) return;
    if (event === 'backchannel.success') emit(event, undefined, client, delivery.sub, delivery.sid);
    else emit(event, undefined, error, client, delivery.sub, delivery.sid);
  }

  outbox.register('backchannel_logout', {
    async send(payload) {
      const delivery = Delivery.parse(payload);
      if (!settings.allowPrivateNetworks) await refuseSpecialUseAddresses(delivery.uri);
      let { token } = delivery;
      if (Date.now() - delivery.issued_at > REISSUE_AFTER_MS) {
        const client = await provider.Client.find(delivery.client_id);
        if (!client) throw Object.assign(new Error(`client ${delivery.client_id} no longer exists`), { permanent: true });
        token = await issueLogoutToken(provider, client, delivery.sub, delivery.sid);
      }
      await post(delivery.uri, token, settings.timeoutMs);
    },
    retryDelayMs: (attempt) => settings.retryDelaysMs[attempt - 1] ?? 0,
    describe: (payload) => {
      const { client_id, uri } = payload as Partial<Delivery>;
      return { client_id, uri };
    },
    settled(payload, outcome) {
      const delivery = Delivery.parse(payload);
      // A throwing listener must not count as a failed delivery.
      return tell(outcome.sent ? 'backchannel.success' : 'backchannel.error', delivery, outcome.sent ? undefined : outcome.error).catch((error: unknown) =>
        logger.error({ client_id: delivery.client_id, reason: reasonFor(error) }, 'back-channel logout: an event listener failed'),
      );
    },
  });
}

/** The token the engine would send (sub, and sid when the client asked for it), signed with the provider's keys. */
async function issueLogoutToken(provider: Provider, client: Client, sub: string, sid: string): Promise<string> {
  const token = new provider.IdToken({ sub }, { client });
  // As the engine does: asking for `sub` alone also gives pairwise clients their own subject.
  Object.assign(token, { mask: { sub: null } });
  token.set('events', { [LOGOUT_EVENT]: {} });
  token.set('jti', randomUUID());
  if (client.backchannelLogoutSessionRequired) token.set('sid', sid);
  return token.issue({ use: 'logout' });
}

/** An answer from the relying party other than 200 or 204. */
class Refused extends Error {
  /** `status` 0: refused before any request was made. */
  constructor(
    readonly status: number,
    message = `HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trim(),
  ) {
    super(message);
  }

  /** The same token would be refused again, unless the RP was overloaded or broken (status 0: refused before asking). */
  get permanent(): boolean {
    return !(this.status >= 500 || this.status === 408 || this.status === 429);
  }
}

async function post(uri: string, token: string, timeoutMs: number): Promise<void> {
  const response = await fetch(uri, {
    method: 'POST',
    // A redirect is a wrong URI, not somewhere to send the token.
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body?.cancel();
  if (response.status !== 200 && response.status !== 204) throw new Refused(response.status);
}

const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) {
  SPECIAL_USE.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv6');

/**
 * Refuses a URI whose host resolves to a loopback, private or link-local address (as the
 * engine's own requests do). Checked before each attempt; a DNS answer that changes between
 * this check and the connection is not caught, which is why production keeps it on and
 * registration of back-channel URIs stays with admins and initial-access-token holders.
 */
async function refuseSpecialUseAddresses(uri: string): Promise<void> {
  const host = new URL(uri).hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
  for (const { address, family } of addresses) {
    const mapped = family === 6 && address.startsWith('::ffff:') && isIP(address.slice(7)) === 4;
    const [ip, type] = mapped ? [address.slice(7), 'ipv4' as const] : [address, family === 6 ? ('ipv6' as const) : ('ipv4' as const)];
    if (SPECIAL_USE.check(ip, type)) throw new Refused(0, `${host} resolves to a special-use address (${address})`);
  }
}

/** Why an attempt failed, in one line: fetch hides the network error in `cause`. */
function reasonFor(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message}` : '';
  return `${error.message}${cause}`;
}
