// The Device Authorization Grant (RFC 8628): the engine runs the protocol; this file gives it
// our pages for entering and confirming a user code, and adds what the engine (9.x) leaves to
// the deployment: the polling `interval` and `slow_down` answer, and a limit on guessing user
// codes at /device (RFC 8628 5.1).
import { setTimeout as sleep } from 'node:timers/promises';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { EngineHook } from '../core/engine-types.js';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/client.js';
import { counter, ipKey } from '../core/counters.js';
import { MAX_SIGN_IN_DELAY_MS } from '../people/sign-in-limits.js';
import { enginePageOf, type RenderPage } from './page-renderer.js';

type DeviceFlowFeature = NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;

/** Seconds a device should wait between polls (RFC 8628 3.2; also the RFC's default). */
const DEVICE_POLLING_INTERVAL = 5;

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// Consonants only (no vowels, so no words; no 0/O or 1/I look-alikes), 8 of them in two groups.
// The engine itself upper-cases what is typed and drops dashes and spaces before the lookup.
const CHARSET = 'base-20';
const MASK = '****-****';
/** A made-up code in the mask's shape, for the hint under the input. */
function exampleCode(mask: string, letters = 'WDJBMJHTQRSVXZ'): string {
  let next = 0;
  return mask.replace(/\*/g, () => letters[next++ % letters.length] as string);
}
const EXAMPLE_CODE = exampleCode(MASK);

/**
 * Why the code page is shown again, keyed by the engine's re-render error names (those classes
 * are not exported, so the engine's own default page matches them by name too). `key` names
 * the message in the pages' catalogues (src/http/messages/).
 */
const REENTRY_REASONS: Record<string, { status: number; kind: 'error' | 'notice'; key: string; keepInput?: boolean }> = {
  NoCodeError: { status: 400, kind: 'error', key: 'device.error.noCode' },
  NotFoundError: { status: 400, kind: 'error', key: 'device.error.notFound', keepInput: true },
  ExpiredError: { status: 400, kind: 'error', key: 'device.error.expired' },
  AlreadyUsedError: { status: 400, kind: 'error', key: 'device.error.alreadyUsed' },
  AbortedError: { status: 200, kind: 'notice', key: 'device.notice.aborted' },
};

/**
 * The engine's `form` argument carries the form's action and its hidden fields (the xsrf
 * token and, when confirming, the code). We re-render those through our template so that
 * every byte on the page is ours and escaped, with our own labelled input instead of the
 * engine's (which has an inline handler the CSP blocks and no label).
 */
const EngineForm = z.object({
  action: z.url(),
  hidden: z.array(z.tuple([z.string().regex(/^[\w-]+$/), z.string()])).refine((fields) => fields.some(([name]) => name === 'xsrf'), 'no xsrf field'),
});

const decodeEntities = (text: string) =>
  text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function parseEngineForm(form: string): z.infer<typeof EngineForm> {
  const action = /<form\b[^>]*\saction="([^"]*)"/.exec(form)?.[1];
  const hidden = [...form.matchAll(/<input\b[^>]*>/g)]
    .map(([input]) => input)
    .filter((input) => /\stype="hidden"/.test(input))
    .map((input) => [/\sname="([^"]*)"/.exec(input)?.[1] ?? '', decodeEntities(/\svalue="([^"]*)"/.exec(input)?.[1] ?? '')]);
  return EngineForm.parse({ action: action === undefined ? undefined : decodeEntities(action), hidden });
}

function describeClient(client: { clientId: string; clientName?: unknown; logoUri?: unknown } | undefined) {
  const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
  // No name: the page says "the device" in its own language.
  return { name: text(client?.clientName) ?? client?.clientId, logoUri: text(client?.logoUri) };
}

async function respond(ctx: KoaContextWithOIDC, status: number, html: Promise<string>) {
  const body = await html;
  ctx.status = status;
  ctx.type = 'html';
  // The pages carry a one-time xsrf token.
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

export function deviceFlowFeature(renderPage: RenderPage): DeviceFlowFeature {
  return {
    enabled: true,
    charset: CHARSET,
    mask: MASK,

    /** /device: the code entry page, shown again with a reason after any failed step. */
    async userCodeInputSource(ctx, form, _out, err) {
      const { action, hidden } = parseEngineForm(form);
      const reason = err ? REENTRY_REASONS[err.name] : undefined;
      let status = 200;
      let message: { kind: 'error' | 'notice'; key: string; params?: Record<string, number> } | undefined;
      if (reason) {
        status = reason.status;
        message = { kind: reason.kind, key: reason.key };
      } else if (err instanceof UserCodeLockedError) {
        status = 429;
        message = { kind: 'error', key: 'device.error.locked', params: { minutes: Math.ceil(err.retryAfterSeconds / 60) } };
        ctx.set('Retry-After', String(err.retryAfterSeconds));
      } else if (err instanceof errors.InvalidRequest) {
        // Almost always a stale xsrf token: the page sat open too long or was opened twice.
        status = 400;
        message = { kind: 'error', key: 'device.error.stale' };
      } else if (err) {
        status = ctx.status >= 400 ? ctx.status : 500;
        message = { kind: 'error', key: 'device.error.other' };
      }
      const typed = (err as { userCode?: unknown } | undefined)?.userCode;
      const value = reason?.keepInput && typeof typed === 'string' ? typed.slice(0, 64) : '';
      await respond(ctx, status, renderPage('device-input', { ...enginePageOf(ctx), action, hidden: hidden.filter(([name]) => name !== 'user_code'), value, message, example: EXAMPLE_CODE }));
    },

    /** After a valid code: which app, and the code to compare with the device. */
    async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
      const { action, hidden } = parseEngineForm(form);
      await respond(ctx, 200, renderPage('device-confirm', { ...enginePageOf(ctx), action, hidden, client: describeClient(client), userCode }));
    },

    /** After sign-in and consent. */
    async successSource(ctx) {
      await respond(ctx, 200, renderPage('device-success', { ...enginePageOf(ctx), client: describeClient(ctx.oidc.client) }));
    },
  };
}

const PollingParams = z.object({ grant_type: z.literal(DEVICE_CODE_GRANT), device_code: z.string().min(1) });
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Advertises DEVICE_POLLING_INTERVAL in device authorization responses and answers a device
 * that polls again sooner with `slow_down` instead of `authorization_pending` (RFC 8628 3.5).
 * The last poll is remembered through the engine's adapter (ReplayDetection, keyed by a hash
 * of the device code), so every instance behind a load balancer sees it. Installed by oidc/hooks.ts.
 */
export function enforceDevicePollingInterval(interval = DEVICE_POLLING_INTERVAL): EngineHook {
  return {
    after(ctx) {
      // Documented post-processing: the engine has matched the route and set the response.
      const { oidc } = ctx as Partial<KoaContextWithOIDC>;
      if (oidc?.route === 'device_authorization' && ctx.status === 200 && isRecord(ctx.body) && typeof ctx.body.device_code === 'string') {
        ctx.body = { ...ctx.body, interval };
        return;
      }
      if (oidc?.route !== 'token' || ctx.status !== 400 || !isRecord(ctx.body) || ctx.body.error !== 'authorization_pending') return;
      return slowDownEarlyPoll(ctx, oidc);
    },
  };

  async function slowDownEarlyPoll(ctx: KoaContextWithOIDC, oidc: KoaContextWithOIDC['oidc']): Promise<void> {
    const params = PollingParams.safeParse({ grant_type: oidc.params?.grant_type, device_code: oidc.params?.device_code });
    if (!params.success) return;
    // Only a poll that got an answer starts a new window; a throttled one does not extend it.
    const firstInWindow = await oidc.provider.ReplayDetection.unique('gatehouse:device-poll:', params.data.device_code, Math.floor(Date.now() / 1000) + interval);
    if (!firstInWindow) {
      ctx.body = { error: 'slow_down', error_description: `poll at most once every ${interval} seconds` };
    }
  }
}

/**
 * oidc-provider 9.13 answers a POST to /device that arrives without a saved session (no
 * device-flow page opened first, or a bad xsrf value) with an unhandled TypeError from
 * ensureSessionSave ("persist can only be called on previously persisted Sessions"), which
 * becomes a bare 500. Turn it into the 400 page it should have been.
 */
export function recoverDeviceFormWithoutSession(renderPage: RenderPage): EngineHook {
  return {
    async recover(ctx, error) {
      const { oidc } = ctx as Partial<KoaContextWithOIDC>;
      if (!(error instanceof TypeError) || oidc?.route !== 'code_verification' || ctx.method !== 'POST') return false;
      await respond(ctx, 400, renderPage('error', {
        ...enginePageOf(ctx),
        error: 'invalid_request',
        message: { key: 'error.deviceFormExpired' },
      }));
      return true;
    },
  };
}

/** Too many wrong user codes from this browser session or address: the code page says how long to wait. */
export class UserCodeLockedError extends errors.OIDCProviderError {
  override name = 'UserCodeLockedError';
  constructor(readonly retryAfterSeconds: number) {
    super(429, 'too_many_requests');
  }
}

export interface UserCodeLimitDeps {
  db: Db;
  /** BRUTE-FORCE settings, shared with sign-in: SIGN_IN_MAX_FAILURES_PER_ACCOUNT per session, SIGN_IN_MAX_FAILURES_PER_IP per address. */
  settings: Config['bruteForce'];
  audit: AuditLog;
}

/**
 * Limits guessing user codes at /device with the sign-in's brute-force counters (the
 * RateLimiterFlexible table, so every instance shares them): each code typed is counted before
 * it is looked up, per browser session (the engine's session, which the code form needs) and
 * per client IP. An attempt first waits delayStepMs for each earlier one in the window (from
 * the session or the IP, whichever has more); the wrong code that reaches a limit locks the
 * session or the IP for lockoutSeconds, and a locked attempt is refused without a lookup, with
 * a page that says how long to wait. A right code takes back only its own count, never earlier
 * failures: anyone can get a valid code of their own from /device/auth, so clearing counters on
 * success would let them reset the limit between guesses.
 *
 * The lookup is the engine's DeviceCode.findByUserCode, which only the code form calls.
 */
export function limitUserCodeGuesses(provider: Provider, { db, settings, audit }: UserCodeLimitDeps): void {
  const sessions = counter(db, 'user-code:session', settings.accountMaxFailures, settings.failureWindow);
  const ips = counter(db, 'user-code:ip', settings.ipMaxFailures, settings.failureWindow);
  const find = provider.DeviceCode.findByUserCode.bind(provider.DeviceCode);

  provider.DeviceCode.findByUserCode = async function findUserCodeWithinLimits(userCode, options) {
    const ctx = Provider.ctx;
    const sessionUid = ctx?.oidc?.route === 'code_verification' ? ctx.oidc.session?.uid : undefined;
    if (!ctx || !sessionUid) return find(userCode, options);
    // The address Express computed under TRUST_PROXY: http/app.ts hands the engine only that.
    const ip = ctx.ip;
    const keys = { session: sessionUid, ip: ipKey(ip) };
    const [session, address] = await Promise.all([sessions.penalty(keys.session), ips.penalty(keys.ip)]);
    const earlier = Math.max(Math.min(session.consumedPoints, settings.accountMaxFailures + 1), Math.min(address.consumedPoints, settings.ipMaxFailures + 1)) - 1;
    await sleep(Math.min(earlier * settings.delayStepMs, MAX_SIGN_IN_DELAY_MS));

    const locked = [...(session.consumedPoints > settings.accountMaxFailures ? [session] : []), ...(address.consumedPoints > settings.ipMaxFailures ? [address] : [])];
    const code = locked.length ? undefined : await find(userCode, options);
    if (code && !code.isExpired && !code.error && !code.accountId && !code.inFlight) {
      await Promise.all([sessions.reward(keys.session), ips.reward(keys.ip)]);
      return code;
    }
    // A wrong code, or one refused unseen. Counts are atomic increments, so exactly one attempt
    // sees each limit reached.
    const reached = [...(session.consumedPoints === settings.accountMaxFailures ? (['session'] as const) : []), ...(address.consumedPoints === settings.ipMaxFailures ? (['ip'] as const) : [])];
    for (const scope of reached) {
      await (scope === 'session' ? sessions.block(keys.session, settings.lockout) : ips.block(keys.ip, settings.lockout));
      await audit.record({ type: 'user_code.locked', ip: ip ?? null, userAgent: ctx.get('user-agent') || null, details: { scope, lockoutSeconds: settings.lockout, windowSeconds: settings.failureWindow } });
    }
    if (locked.length) throw new UserCodeLockedError(Math.max(1, Math.ceil(Math.max(...locked.map((state) => state.msBeforeNext)) / 1000)));
    return code;
  };
}
